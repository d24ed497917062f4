"""AddBackgroundNoise: mix in a random crop of a random no-call recording at a random SNR."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...audio import AUDIO_EXTENSIONS, load
from ...errors import ParameterError
from ...types import Pathlike
from ..base import WaveformTransform, check_range, mix_at_snr, register_transform

__all__ = ["AddBackgroundNoise", "find_audio_files"]


def find_audio_files(paths: Pathlike | Sequence[Pathlike]) -> list[Path]:
    """Audio files named by ``paths``: files as given, folders searched recursively; sorted and deduplicated."""
    items = [paths] if isinstance(paths, (str, Path)) or hasattr(paths, "__fspath__") else list(paths)
    found: set[Path] = set()
    for item in items:
        path = Path(item)
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        elif path.is_file():
            found.add(path)
        else:
            raise ParameterError(f"AddBackgroundNoise: {path}: no such file or folder")
    return sorted(found)


@register_transform
class AddBackgroundNoise(WaveformTransform):
    """Add a crop of a background recording, scaled so that the clip is ``snr_db`` above it (RMS).

    The file is drawn uniformly from ``noise_paths`` (files, or folders searched recursively for audio) and
    decoded with :func:`birdcall.audio.load` at the clip's sample rate, so any format and rate works. A file
    shorter than the clip is repeated; the crop start is uniform. Whole files are decoded, so use short
    no-call clips (or ``cache=True``). A silent clip or silent noise crop leaves the clip unchanged.

    Args:
        noise_paths: a file or folder, or a list of them.
        min_snr_db: lowest signal-to-noise ratio (more noise).
        max_snr_db: highest.
        cache: keep decoded files in memory (per process: each data loader worker has its own copy).
        p: probability of applying.

    Raises:
        ParameterError: a path does not exist, no audio file is found, or a bad SNR range.
    """

    def __init__(
        self,
        noise_paths: Pathlike | Sequence[Pathlike],
        min_snr_db: float = 3.0,
        max_snr_db: float = 30.0,
        cache: bool = False,
        p: float = 0.5,
    ):
        super().__init__(p)
        self.min_snr_db, self.max_snr_db = check_range("AddBackgroundNoise", "snr_db", min_snr_db, max_snr_db)
        single = isinstance(noise_paths, (str, Path)) or hasattr(noise_paths, "__fspath__")
        self.noise_paths = str(noise_paths) if single else tuple(str(p) for p in noise_paths)
        self.files = find_audio_files(noise_paths)
        if not self.files:
            raise ParameterError(
                f"AddBackgroundNoise: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {self.noise_paths}"
            )
        self.cache = bool(cache)
        self._cache: dict[tuple[Path, int], np.ndarray] = {}

    def load_noise(self, path: Pathlike, sample_rate: int) -> np.ndarray:
        """The whole file at ``sample_rate``, from the cache when enabled."""
        key = (Path(path), sample_rate)
        if key in self._cache:
            return self._cache[key]
        noise = load(path, sample_rate=sample_rate)
        if self.cache:
            self._cache[key] = noise
        return noise

    def randomize_parameters(self, samples: np.ndarray, *, sample_rate: int, rng: np.random.Generator) -> dict:
        return {
            "noise_path": str(self.files[int(rng.integers(len(self.files)))]),
            "start_fraction": float(rng.random()),
            "snr_db": float(rng.uniform(self.min_snr_db, self.max_snr_db)),
        }

    def noise_crop(
        self, noise_path: Pathlike, num_samples: int, *, sample_rate: int, start_fraction: float
    ) -> np.ndarray:
        """``(num_samples,)`` crop of the file (repeated if short), starting at ``start_fraction`` of the free range."""
        noise = self.load_noise(noise_path, sample_rate)
        if len(noise) < num_samples:
            noise = np.tile(noise, math.ceil(num_samples / len(noise)))
        start = min(int(start_fraction * (len(noise) - num_samples + 1)), len(noise) - num_samples)
        return noise[start : start + num_samples]

    def apply(
        self, samples: np.ndarray, *, sample_rate: int, noise_path: str, start_fraction: float, snr_db: float
    ) -> np.ndarray:
        noise = self.noise_crop(noise_path, len(samples), sample_rate=sample_rate, start_fraction=start_fraction)
        return mix_at_snr(samples, noise, snr_db)
