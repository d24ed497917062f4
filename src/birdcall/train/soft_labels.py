"""Soft labels in training: pseudo-labelled windows (precomputed by ``birdcall pseudo-label``) and an online teacher.

Two sources, which a recipe may combine (``TrainConfig.pseudo`` and ``TrainConfig.distill``):

- **Precomputed** (:class:`PseudoWindows`): windows of unlabelled recordings with a teacher's probabilities,
  read from the ``pseudo-label`` Parquet file (its one owner is :mod:`birdcall.infer.pseudo_labels`). The
  window is fixed (the teacher saw exactly it), so the only augmentations applied are those that keep its
  content: background noise and the waveform stage, plus in-batch sum-mixing with other pseudo-labelled
  windows (union of the soft labels); with ``pseudo.augment: false``, none of them. Cheap: the teacher ran once.
- **Embeddings** (:func:`embedding_targets`, :class:`EmbeddingDistiller`, ``distill.embedding_weight``): BirdNET's
  embeddings of each pseudo-labelled window, regressed from the student's pooled features through a linear map,
  a far richer target per window (2048 values) than the teacher's species probabilities.
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
from torch import nn

from ..data.labels import LabelSet
from ..errors import AudioLoadError, CheckpointError, ParameterError
from ..features import FeatureConfig
from ..features.crop import crop_or_pad
from .config import PseudoLabelConfig

__all__ = ["EmbeddingDistiller", "OnlineTeacher", "PseudoBatchSampler", "PseudoWindows", "collate_soft", "embedding_distiller", "embedding_targets", "fold_path",
           "load_pseudo_windows", "pseudo_per_batch", "transform_soft_labels"]


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
    it with a generator seeded by ``(seed, epoch, index)``. With ``embeddings`` set (an ``(n, D)`` array,
    :func:`embedding_targets`) an item is ``(waveform, soft target, embedding)``.
    """

    embeddings: np.ndarray | None = None

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
        item = (torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)), torch.from_numpy(self.targets[index]))
        return item if self.embeddings is None else (*item, torch.from_numpy(self.embeddings[index]))


def collate_soft(batch: Sequence[tuple]) -> tuple:
    """Collate labelled items ``(waveform, target)`` and pseudo-labelled windows that may carry an embedding
    target ``(waveform, target, embedding)``: ``(waveforms, targets)``, plus ``(k, D)`` embeddings of the last
    ``k`` rows when they carry one (:class:`PseudoBatchSampler` puts the pseudo-labelled windows last)."""
    waveforms = torch.stack([item[0] for item in batch])
    targets = torch.stack([item[1] for item in batch])
    extra = [item[2] for item in batch if len(item) > 2]
    if not extra:
        return waveforms, targets
    if any(len(item) > 2 for item in batch[: len(batch) - len(extra)]):
        raise ParameterError("collate_soft: items with an embedding target must come last in the batch")
    return waveforms, targets, torch.stack(extra)


def embedding_targets(windows: PseudoWindows, *, model=None, batch_size: int = 32) -> np.ndarray:
    """BirdNET's features of every window of ``windows`` as regression targets, ``(n, 2 * embedding_dim)`` float32.

    Each window as the student gets it (:meth:`PseudoWindows.window`, unaugmented) goes through
    :func:`birdcall.birdnet.window_features` (sub-windows of BirdNET's segment length, 1 s apart; mean and max
    of their embeddings), then every dimension is standardised over the windows (a dimension that does not
    vary becomes 0), so the squared error weighs dimensions alike.

    Args:
        windows: the pseudo-labelled windows.
        model: BirdNET or anything with its call signature; None: :func:`birdcall.birdnet.shared_model`.
        batch_size: windows per BirdNET call.

    Raises:
        MissingExtraError: BirdNET is not installed (one line naming ``make birdnet``).
        ParameterError: BirdNET's segment is longer than the student's window.
    """
    from ..birdnet import BirdNetFeatureConfig, shared_model, window_features

    model = model if model is not None else shared_model()
    window = windows.features.clip_duration
    segment = float(model.segment_samples) / float(model.sample_rate)
    if segment > window + 1e-9:
        raise ParameterError(f"distill.embedding_weight: BirdNET's segments are {segment:g} s, longer than the student's {window:g}-s windows")
    config = BirdNetFeatureConfig(window=window, segment=min(segment, window), step=1.0, pool="meanmax")
    rate = windows.features.sample_rate
    chunks = []
    for first in range(0, len(windows), batch_size):
        batch = np.stack([windows.window(i) for i in range(first, min(first + batch_size, len(windows)))])
        chunks.append(window_features(batch, sample_rate=rate, model=model, config=config))
    x = np.concatenate(chunks).astype(np.float64)
    scale = x.std(axis=0)
    return np.where(scale > 1e-8, (x - x.mean(axis=0)) / np.where(scale > 1e-8, scale, 1.0), 0.0).astype(np.float32)


class EmbeddingDistiller(nn.Module):
    """The embedding-distillation term of ``distill.embedding_weight``: a linear map from the student's pooled
    features to the embedding targets, trained with the student and left out of its model file.

    :meth:`forward` runs the student once and gives both its logits and its pooled features (the input of its
    classifier, before dropout), so the term costs one matrix product per batch.

    Args:
        model: a ``cnn``-family student (``forward_head(x, pre_logits=True)``, ``drop``, ``classifier``).
        dim: width of the targets.
        weight: the term's weight.

    Raises:
        ParameterError: a student of another family.
    """

    def __init__(self, model: nn.Module, dim: int, *, weight: float):
        super().__init__()
        if not all(hasattr(model, name) for name in ("forward_features", "forward_head", "drop", "classifier", "num_features")):
            raise ParameterError(f"distill.embedding_weight needs a cnn-family student, got {type(model).__name__}")
        self.proj = nn.Linear(int(model.num_features), int(dim))
        self.weight = float(weight)

    def forward(self, model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, pooled features)`` of ``inputs`` (waveforms or front-end features); the logits are what
        ``model(inputs)`` gives."""
        pooled = model.forward_head(model.forward_features(inputs), pre_logits=True)
        return model.classifier(model.drop(pooled)), pooled

    def resume(self, state: dict, path: Path) -> None:
        """Load the map's weights from a training state (``path``: the file, for the error).

        Raises:
            CheckpointError: the state holds no weights of the map.
        """
        if not isinstance(state.get("distiller"), dict):
            raise CheckpointError(path, "no state of the embedding-distillation map to resume from")
        self.load_state_dict(state["distiller"])

    @staticmethod
    def describe() -> dict:
        """The entry naming BirdNET, whose embeddings taught the student, in the student's metadata (as a teacher)."""
        from ..birdnet import BIRDNET_LICENSE, BIRDNET_SAMPLE_RATE, BIRDNET_VERSION, NON_COMMERCIAL_NOTE

        return {"path": f"BirdNET V{BIRDNET_VERSION}", "digest": None, "model": "birdnet", "sample_rate": BIRDNET_SAMPLE_RATE, "license": BIRDNET_LICENSE,
                "note": NON_COMMERCIAL_NOTE, "use": "embedding distillation"}  # fmt: skip

    def loss(self, pooled: torch.Tensor, targets: torch.Tensor, *, rows: int) -> torch.Tensor:
        """``weight * share * mean((proj(pooled[-k:]) - targets) ** 2)`` for the ``k = len(targets)`` last rows of
        a batch of ``rows``, ``share = k / rows`` (as pseudo-labelled rows count in the batch's mean loss)."""
        k = len(targets)
        error = torch.mean((self.proj(pooled[rows - k :].float()) - targets.float()) ** 2)
        return self.weight * (k / rows) * error


class PseudoBatchSampler:
    """Batches of ``batch_size - per_batch`` labelled items then ``per_batch`` pseudo-labelled windows.

    Indices address ``ConcatDataset([labelled, pseudo])``: labelled items are ``0 .. n_labelled - 1``, pseudo-
    labelled windows follow. An epoch is one pass over the labelled items (shuffled, or drawn with
    ``labelled_weights`` when given: class-balanced sampling) in full batches; pseudo-labelled windows come from a
    shuffled order that continues across epochs, so every window is used once before any repeats, or, with
    ``pseudo_weights``, are drawn with replacement in proportion to them (``pseudo.balance``). With
    ``world > 1`` (DistributedDataParallel), rank ``rank`` takes every ``world``-th batch. Every draw comes from
    ``generator`` (reseeded per epoch by the loop) and from the epoch number, so a resumed run draws the same.
    """

    def __init__(self, n_labelled: int, n_pseudo: int, *, batch_size: int, per_batch: int, generator: torch.Generator,
                 labelled_weights: np.ndarray | None = None, pseudo_weights: np.ndarray | None = None, rank: int = 0, world: int = 1,
                 seed: int = 0):  # fmt: skip
        if not 0 < per_batch < batch_size:
            raise ParameterError(f"PseudoBatchSampler: per_batch must be in 1..batch_size-1, got {per_batch} of {batch_size}")
        if n_labelled < 1 or n_pseudo < 1:
            raise ParameterError(f"PseudoBatchSampler: needs labelled items and pseudo-labelled windows, got {n_labelled} and {n_pseudo}")
        self.n_labelled, self.n_pseudo = n_labelled, n_pseudo
        self.batch_size, self.per_batch = batch_size, per_batch
        self.generator, self.rank, self.world, self.seed = generator, rank, world, seed
        self.labelled_weights = None if labelled_weights is None else torch.as_tensor(labelled_weights, dtype=torch.double)
        self.pseudo_weights = None
        if pseudo_weights is not None:
            w = np.asarray(pseudo_weights, dtype=np.float64)
            if w.shape != (n_pseudo,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ParameterError(f"PseudoBatchSampler: pseudo_weights must be {n_pseudo} finite values >= 0, not all 0")
            self.pseudo_weights = w / w.sum()
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
        seeded permutations, so consecutive epochs continue where the last stopped; with ``pseudo_weights``,
        ``count`` weighted draws seeded by the epoch."""
        if self.pseudo_weights is not None:  # weighted draws, with replacement, seeded by the epoch
            return np.random.default_rng([self.seed, 7919, self.epoch, 1]).choice(self.n_pseudo, size=count, p=self.pseudo_weights)
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


def pseudo_batches(config: PseudoLabelConfig, labelled_targets: np.ndarray, pseudo: PseudoWindows, *, batch_size: int, generator: torch.Generator,
                   balanced: bool = False, rank: int = 0, world: int = 1, seed: int = 0) -> PseudoBatchSampler:  # fmt: skip
    """The :class:`PseudoBatchSampler` of a run: labelled items class-balanced when ``balanced``
    (``data.balanced_sampling``); pseudo-labelled windows weighted by ``config.balance`` when it is > 0.

    ``pseudo.balance`` is the power of :func:`birdcall.data.sampling.class_balanced_weights` over the species the
    teacher hears in each window (transformed target >= 0.5; windows without any form one more class), so windows
    of the species the teacher rarely heard come round more often.
    """
    from ..data.sampling import class_balanced_weights

    labelled_weights = class_balanced_weights(labelled_targets) if balanced else None
    pseudo_weights = class_balanced_weights(pseudo.targets >= 0.5, power=config.balance) if config.balance > 0 else None
    return PseudoBatchSampler(len(labelled_targets), len(pseudo), batch_size=batch_size, per_batch=pseudo_per_batch(config, batch_size), generator=generator,
                              labelled_weights=labelled_weights, pseudo_weights=pseudo_weights, rank=rank, world=world, seed=seed)  # fmt: skip


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


def embedding_distiller(windows: PseudoWindows, model: nn.Module, *, weight: float, log: Callable[[str], object] | None = None) -> EmbeddingDistiller:
    """Set ``windows.embeddings`` (:func:`embedding_targets`, BirdNET run once) and return the
    :class:`EmbeddingDistiller` of ``model`` for them; ``log`` gets one line with the time it took."""
    import time

    started = time.perf_counter()
    windows.embeddings = embedding_targets(windows)
    if log is not None:
        log(f"embedding targets: {windows.embeddings.shape[1]} values for each of {len(windows)} windows ({time.perf_counter() - started:.1f} s)")
    return EmbeddingDistiller(model, windows.embeddings.shape[1], weight=weight)
