"""Soundscape-style training windows: a clip dataset whose items are, at random, windows mixed like recordings.

A model trained on whole clips learns tidy inputs: one clip, its call near the middle, its own noise. Real
recordings cut calls at window edges, overlap species and bury calls in other backgrounds. With probability
``WindowMixConfig.p`` an item of :class:`MixedWindowDataset` is such a window (:func:`~.soundscape.mix_window`):
the item's clip at a random offset (it may stick out of either edge), up to ``extra_clips`` other training
clips, all over a bed of background recordings, labelled from the calls that fall inside by the evaluation's
rule. Otherwise the item is the plain clip crop, exactly as :class:`~.dataset.ClipDataset` gives it.

The randomness of item ``i`` in epoch ``e`` comes from ``default_rng([seed, e, i])``, so a run gives the same
batches whatever the worker count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..audio import load
from ..errors import AudioLoadError, DataError
from ..features import FeatureConfig
from ..features.crop import crop_or_pad
from .dataset import _READ_FAILED, ClipReadError
from .soundscape import WindowMixConfig, background_bed, mix_window

__all__ = ["MemoryReader", "MixedWindowDataset"]


class MemoryReader:
    """Decode a file at ``sample_rate`` once per process and keep it (picklable, so DataLoader workers get one each)."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self._memory: dict[Path, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {"sample_rate": self.sample_rate, "_memory": {}}

    def __call__(self, path: Path) -> np.ndarray:
        if path not in self._memory:
            self._memory[path] = load(path, sample_rate=self.sample_rate)
        return self._memory[path]


class MixedWindowDataset:
    """Map-style torch dataset of ``(waveform (clip_samples,), target (num_classes,))`` with mixed windows.

    Args:
        paths: training clips (and background negatives, whose ``calls`` are empty: never mixed).
        targets: ``(len(paths), num_classes)`` targets of the plain crops.
        calls: per path, ``(start, end, species_code)`` calls in clip time (whole-clip spans where a clip
            species has no annotated call); mixed windows take their labels from these.
        species_codes: target column order.
        backgrounds: background recordings for the beds (keep evaluation backgrounds out); none: silent beds.
        read: decodes one file at ``features.sample_rate`` (an ``AudioCache.get`` or a memoised loader).
        augment: waveform transform applied after mixing or cropping, ``augment(y, sample_rate=, rng=)``.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        targets: np.ndarray,
        calls: Sequence[Sequence[tuple[float, float, str]]],
        *,
        species_codes: Sequence[str],
        backgrounds: Sequence[Path],
        features: FeatureConfig,
        config: WindowMixConfig,
        read: Callable[[Path], np.ndarray],
        crop: str = "random",
        seed: int = 0,
        augment=None,
    ):
        if not (len(paths) == len(targets) == len(calls)):
            raise DataError(str(paths[0]) if paths else "<dataset>", f"{len(paths)} paths, {len(targets)} targets, {len(calls)} call lists")
        self.paths = list(paths)
        self.targets = np.asarray(targets, dtype=np.float32)
        self.calls = [list(c) for c in calls]
        self.codes = list(species_codes)
        self.backgrounds = list(backgrounds)
        self.features = features
        self.config = config
        self.read = read
        self.crop = crop
        self.seed = seed
        self.augment = augment
        self.epoch = 0
        self._mixable = np.flatnonzero([bool(c) for c in self.calls])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def item(self, index: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """``(waveform, target, mixed)`` of item ``index`` in the current epoch (numpy; for tests and tools)."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        n, rate = self.features.clip_samples, self.features.sample_rate
        mixed = bool(self.calls[index]) and rng.random() < self.config.p
        if mixed:
            others = self._mixable[self._mixable != index]
            count = int(rng.integers(0, self.config.extra_clips + 1)) if len(others) else 0
            chosen = [index, *(int(j) for j in rng.choice(others, size=min(count, len(others)), replace=False))]
            if self.backgrounds:
                bed = background_bed(self.read, self.backgrounds, n, fade_samples=int(self.config.fade * rate),
                                     level_db=self.config.background_db, rng=rng, random_start=True)  # fmt: skip
            else:  # a data set without background/: the calls are still cut at the edges and overlapped, over silence
                bed = np.zeros(n, dtype=np.float32)
            y, target = mix_window([(self.read(self.paths[j]), self.calls[j]) for j in chosen], bed, sample_rate=rate,
                                   species_codes=self.codes, config=self.config, rng=rng)  # fmt: skip
        else:
            y = crop_or_pad(self.read(self.paths[index]), num_samples=n, mode=self.crop, rng=rng, pad=self.features.pad)
            target = self.targets[index]
        if self.augment is not None:
            y = self.augment(y, sample_rate=rate, rng=rng)
        return np.ascontiguousarray(y, dtype=np.float32), np.asarray(target, dtype=np.float32), mixed

    def __getitem__(self, index: int):
        import torch

        try:
            y, target, _ = self.item(index)
        except AudioLoadError as err:  # checked up front, so changed on disk since: say which file, in one line
            raise ClipReadError(err.path, f"{_READ_FAILED} ({err.cause})") from None
        return torch.from_numpy(y), torch.from_numpy(target)
