"""Soft labels in training: pseudo-labelled windows (precomputed by ``birdcall pseudo-label``) and an online teacher.

Two sources, which a recipe may combine (``TrainConfig.pseudo`` and ``TrainConfig.distill``):

- **Precomputed** (:class:`PseudoWindows`): windows of unlabelled recordings with a teacher's probabilities,
  read from the ``pseudo-label`` Parquet file (its one owner is :mod:`birdcall.infer.pseudo_labels`). The
  window is fixed (the teacher saw exactly it), so the only augmentations applied are those that keep its
  content: background noise and the waveform stage, plus in-batch sum-mixing with other pseudo-labelled
  windows (union of the soft labels); with ``pseudo.augment: false``, none of them. Cheap: the teacher ran once.
- **Online** (:class:`OnlineTeacher`): a teacher in memory scores every batch of labelled items *after* their
  augmentations (soundscape mixing, random crops, sum-mix), so the targets match what the student sees. It
  costs one teacher forward pass per batch.

:class:`PseudoBatchSampler` builds batches of ``batch_size - k`` labelled items followed by ``k`` pseudo-labelled
windows, so the training loop knows which rows are which without any per-item flag.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.labels import LabelSet
from ..errors import AudioLoadError, ParameterError
from ..features import FeatureConfig
from ..features.crop import crop_or_pad
from .config import PseudoLabelConfig

__all__ = ["OnlineTeacher", "PseudoBatchSampler", "PseudoWindows", "fold_path", "load_pseudo_windows", "pseudo_per_batch", "transform_soft_labels"]


def fold_path(template: str, fold: int | None) -> str:
    """``template`` with ``{fold}`` replaced by the fold number (K-fold runs); unchanged without the placeholder."""
    if "{fold}" not in template:
        return template
    if fold is None:
        raise ParameterError(f"{template}: has '{{fold}}' but this is not a K-fold run")
    return template.replace("{fold}", str(int(fold)))


def transform_soft_labels(probs: np.ndarray, *, power: float = 1.0, threshold: float = 0.0) -> np.ndarray:
    """A teacher's probabilities as training targets: ``p ** power``, then values below ``threshold`` set to 0."""
    p = np.clip(np.asarray(probs, dtype=np.float32), 0.0, 1.0)
    if power != 1.0:
        p = p**power
    if threshold > 0:
        p = np.where(p < threshold, np.float32(0.0), p)
    return p.astype(np.float32, copy=False)


def pseudo_per_batch(config: PseudoLabelConfig, batch_size: int) -> int:
    """Pseudo-labelled windows per batch: ``round(ratio * batch_size)``, at least 1 and leaving 1 labelled item."""
    if batch_size < 2:
        raise ParameterError(f"pseudo.labels needs batch_size >= 2 (a labelled item and a pseudo-labelled window), got {batch_size}")
    return int(min(max(round(config.ratio * batch_size), 1), batch_size - 1))


@dataclass(frozen=True)
class PseudoSource:
    """What :func:`load_pseudo_windows` read: the file, its teachers (for the student's metadata) and counts."""

    path: str
    teachers: tuple[dict, ...]
    note: str | None
    windows: int
    dropped: int  # below min_confidence or min_seconds
    short: int = 0  # of which below min_seconds


def load_pseudo_windows(config: PseudoLabelConfig, labels: LabelSet, features: FeatureConfig, *, fold: int | None = None,
                        read: Callable[[Path], np.ndarray], augment=None, seed: int = 0) -> tuple[PseudoWindows, PseudoSource]:  # fmt: skip
    """Read ``config.labels`` (``{fold}`` filled in) and build the dataset of its windows for a run on ``labels``.

    Species columns are aligned to the run's species order; teacher species the run does not train are
    dropped. A run species the teacher does not score has no soft label to learn from: refused.

    Raises:
        ParameterError: the teacher misses run species, no window is left after ``min_confidence``, or windows
            of another length than the student's clip.
        DataError/ParameterError: from :func:`birdcall.infer.pseudo_labels.read_pseudo_labels` (file, names, values).
    """
    from ..infer.pseudo_labels import read_pseudo_labels

    path = fold_path(config.labels, fold)
    table = read_pseudo_labels(path, audio_root=config.audio)
    teacher_codes = list(table.labels.codes)
    missing = [c for c in labels.codes if c not in teacher_codes]
    if missing:
        shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise ParameterError(f"{path}: the teacher scores no {len(missing)} of the run's species ({shown}): pseudo-label with a teacher trained on them")
    columns = [teacher_codes.index(c) for c in labels.codes]
    probs = table.probs[:, columns]
    keep = np.ones(len(probs), dtype=bool)
    if config.min_confidence > 0:
        keep = table.probs.max(axis=1) >= config.min_confidence
    if not keep.any():
        raise ParameterError(f"{path}: no window has a teacher probability >= pseudo.min_confidence={config.min_confidence}")
    short = np.zeros(len(probs), dtype=bool)
    if config.min_seconds > 0:  # recording tails: a window holding a few ms of audio, the rest padding
        durations = _durations(table.files)
        short = np.array([durations[f] - s < config.min_seconds for f, s in zip(table.files, table.start)]) & keep
        keep &= ~short
    if not keep.any():
        raise ParameterError(f"{path}: no window holds pseudo.min_seconds={config.min_seconds} s of audio")
    lengths = np.round((table.end - table.start) * features.sample_rate).astype(np.int64)
    if np.any(np.abs(lengths - features.clip_samples) > 1):
        raise ParameterError(f"{path}: windows of {float(np.median(table.end - table.start)):.3f} s, the student's clips are {features.clip_duration} s")
    targets = transform_soft_labels(probs[keep], power=config.power, threshold=config.threshold)
    files = [f for f, k in zip(table.files, keep) if k]
    dataset = PseudoWindows(files, table.start[keep], targets, features, read=read, augment=augment, seed=seed)
    meta = table.metadata
    source = PseudoSource(path=str(path), teachers=tuple(meta.get("teachers") or ()), note=meta.get("note"), windows=int(keep.sum()),
                          dropped=int((~keep).sum()), short=int(short.sum()))  # fmt: skip
    return dataset, source


def _durations(files) -> dict:
    """Seconds of audio of each distinct file, from its header (:func:`birdcall.audio.info`; a file that cannot be
    read is reported with its name and reason)."""
    from ..audio import info
    from ..errors import DataError

    out = {}
    for f in dict.fromkeys(files):
        try:
            out[f] = info(f).duration
        except AudioLoadError as err:
            raise DataError(str(f), f"pseudo-labelled recording cannot be read ({err.cause})") from None
    return out


class PseudoWindows:
    """Map-style dataset of pseudo-labelled windows: ``(waveform (clip_samples,), soft target (num_classes,))``.

    Window ``i`` is ``files[i]`` from ``starts[i]`` for one clip, padded as the student pads (``features.pad``)
    when the recording ends inside it: what the teacher scored. ``augment`` (background noise, gain...) runs on
    it with a generator seeded by ``(seed, epoch, index)``.
    """

    def __init__(self, files: Sequence[Path], starts: np.ndarray, targets: np.ndarray, features: FeatureConfig, *,
                 read: Callable[[Path], np.ndarray], augment=None, seed: int = 0):  # fmt: skip
        if not (len(files) == len(starts) == len(targets)):
            raise ParameterError(f"PseudoWindows: {len(files)} files, {len(starts)} starts, {len(targets)} targets")
        self.files = list(files)
        self.starts = np.asarray(starts, dtype=np.float64)
        self.targets = np.asarray(targets, dtype=np.float32)
        self.features, self.read, self.augment, self.seed = features, read, augment, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.files)

    def window(self, index: int) -> np.ndarray:
        """The window as the teacher saw it, before augmentation."""
        y = self.read(self.files[index])
        first = int(round(self.starts[index] * self.features.sample_rate))
        return crop_or_pad(y[first : first + self.features.clip_samples], num_samples=self.features.clip_samples, mode="start",
                           pad=self.features.pad)  # fmt: skip

    def __getitem__(self, index: int):
        from ..data.dataset import _READ_FAILED, ClipReadError

        rng = np.random.default_rng([self.seed, self.epoch, index, 1])  # 1: not the draws of labelled item `index`
        try:
            y = self.window(index)
            if self.augment is not None:
                y = self.augment(y, sample_rate=self.features.sample_rate, rng=rng)
        except AudioLoadError as err:
            raise ClipReadError(err.path, f"{_READ_FAILED} ({err.cause})") from None
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)), torch.from_numpy(self.targets[index])


class PseudoBatchSampler:
    """Batches of ``batch_size - per_batch`` labelled items then ``per_batch`` pseudo-labelled windows.

    Indices address ``ConcatDataset([labelled, pseudo])``: labelled items are ``0 .. n_labelled - 1``, pseudo-
    labelled windows follow. An epoch is one pass over the labelled items (shuffled, or drawn with
    ``labelled_weights`` when given: class-balanced sampling) in full batches; pseudo-labelled windows come from a
    shuffled order that continues across epochs, so every window is used once before any repeats. With
    ``world > 1`` (DistributedDataParallel), rank ``rank`` takes every ``world``-th batch. Every draw comes from
    ``generator`` (reseeded per epoch by the loop) and from the epoch number, so a resumed run draws the same.
    """

    def __init__(self, n_labelled: int, n_pseudo: int, *, batch_size: int, per_batch: int, generator: torch.Generator,
                 labelled_weights: np.ndarray | None = None, rank: int = 0, world: int = 1, seed: int = 0):  # fmt: skip
        if not 0 < per_batch < batch_size:
            raise ParameterError(f"PseudoBatchSampler: per_batch must be in 1..batch_size-1, got {per_batch} of {batch_size}")
        if n_labelled < 1 or n_pseudo < 1:
            raise ParameterError(f"PseudoBatchSampler: needs labelled items and pseudo-labelled windows, got {n_labelled} and {n_pseudo}")
        self.n_labelled, self.n_pseudo = n_labelled, n_pseudo
        self.batch_size, self.per_batch = batch_size, per_batch
        self.generator, self.rank, self.world, self.seed = generator, rank, world, seed
        self.labelled_weights = None if labelled_weights is None else torch.as_tensor(labelled_weights, dtype=torch.double)
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def labelled_per_batch(self) -> int:
        return self.batch_size - self.per_batch

    def _batches(self) -> int:
        return max(self.n_labelled // self.labelled_per_batch, 1)

    def __len__(self) -> int:
        return math.ceil(self._batches() / self.world) if self.world > 1 else self._batches()

    def _pseudo_order(self, count: int) -> np.ndarray:
        """Pseudo-labelled windows for this epoch: positions ``(epoch - 1) * count ...`` of an endless sequence of
        seeded permutations, so consecutive epochs continue where the last stopped."""
        first = (self.epoch - 1) * count
        out, cycle = [], first // self.n_pseudo
        offset = first % self.n_pseudo
        while sum(len(o) for o in out) < count:
            perm = np.random.default_rng([self.seed, 7919, cycle]).permutation(self.n_pseudo)
            out.append(perm[offset:])
            cycle, offset = cycle + 1, 0
        return np.concatenate(out)[:count]

    def __iter__(self) -> Iterator[list[int]]:
        n_batches, k = self._batches(), self.labelled_per_batch
        if self.labelled_weights is not None:
            labelled = torch.multinomial(self.labelled_weights, n_batches * k, replacement=True, generator=self.generator).numpy()
        else:
            labelled = torch.randperm(self.n_labelled, generator=self.generator).numpy()
            if len(labelled) < n_batches * k:  # fewer labelled items than one batch: repeat them
                labelled = np.resize(labelled, n_batches * k)
        pseudo = self._pseudo_order(n_batches * self.per_batch) + self.n_labelled
        for b in range(self.rank, n_batches, self.world):
            yield [int(i) for i in labelled[b * k : (b + 1) * k]] + [int(i) for i in pseudo[b * self.per_batch : (b + 1) * self.per_batch]]


def _logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


class OnlineTeacher:
    """A teacher kept in memory for distillation: any model ``birdcall predict`` opens (checkpoint, run folder,
    ONNX/OpenVINO export, or a Scorer object), scoring the student's training batches.

    Its species are aligned to the student's (a student species it does not score is refused). A teacher at
    another sample rate gets each batch resampled with soxr (BirdNET-based teachers run at 48 kHz, CNN students
    at 32 kHz); its clip duration must equal the student's.
    """

    def __init__(self, model, labels: LabelSet, features: FeatureConfig, *, threads: int | None = None):
        from ..infer.models import open_model

        self.scorer = open_model(model, threads=threads)
        self.source = model if isinstance(model, (str, Path)) else type(model).__name__
        codes = list(self.scorer.labels.codes)
        missing = [c for c in labels.codes if c not in codes]
        if missing:
            raise ParameterError(f"distill.teacher {self.source}: scores none of {len(missing)} student species ({', '.join(missing[:8])})")
        self.columns = np.asarray([codes.index(c) for c in labels.codes])
        teacher = self.scorer.features
        if abs(teacher.clip_duration - features.clip_duration) > 1e-6:
            raise ParameterError(f"distill.teacher {self.source}: clips of {teacher.clip_duration} s, the student's are {features.clip_duration} s")
        self.in_rate, self.rate, self.samples = features.sample_rate, teacher.sample_rate, teacher.clip_samples

    def probabilities(self, waveforms: torch.Tensor) -> np.ndarray:
        """``(B, N)`` student-rate windows -> ``(B, C)`` teacher probabilities in the student's species order."""
        x = waveforms.detach().float().cpu().numpy()
        if self.rate != self.in_rate:
            import soxr

            x = np.stack([crop_or_pad(soxr.resample(row, self.in_rate, self.rate, quality="HQ"), num_samples=self.samples, mode="start")
                          for row in x]).astype(np.float32)  # fmt: skip
        return np.asarray(self.scorer(x), dtype=np.float32)[:, self.columns]

    @torch.no_grad()
    def __call__(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Teacher logits ``log(p / (1 - p))`` of the batch (probabilities clipped to [1e-6, 1 - 1e-6])."""
        return torch.from_numpy(_logit(self.probabilities(waveforms)).astype(np.float32))

    def describe(self) -> dict:
        """The teacher entry of the student's metadata (name, digest, licence)."""
        from ..infer.pseudo_labels import teacher_entry

        return teacher_entry(self.source)

