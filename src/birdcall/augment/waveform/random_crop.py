"""RandomCrop: cut (or zero-pad) the clip to a fixed duration at a random or energy-weighted position."""

from __future__ import annotations

import numpy as np

from ..._validate import is_number
from ...errors import ParameterError
from ...features import crop_or_pad
from ..base import WaveformTransform, check_choice, register_transform, seed_from

__all__ = ["RandomCrop"]


@register_transform
class RandomCrop(WaveformTransform):
    """Crop to ``round(duration * sample_rate)`` samples with :func:`birdcall.features.crop_or_pad`.

    Args:
        duration: seconds.
        mode: ``random`` (uniform start) or ``energy`` (start weighted by the energy of the window).
        p: probability of applying; with ``p < 1`` the output length varies, so a fixed-length pipeline
            keeps the default.
    """

    def __init__(self, duration: float, mode: str = "random", p: float = 1.0):
        super().__init__(p)
        if not is_number(duration) or not duration > 0:
            raise ParameterError(f"RandomCrop: duration must be > 0 seconds, got {duration!r}")
        self.duration = float(duration)
        self.mode = check_choice("RandomCrop", "mode", mode, ("random", "energy"))

    def randomize_parameters(self, samples: np.ndarray, *, sample_rate: int, rng: np.random.Generator) -> dict:
        return {"crop_seed": seed_from(rng)}

    def apply(self, samples: np.ndarray, *, sample_rate: int, crop_seed: int) -> np.ndarray:
        num_samples = max(1, int(round(self.duration * sample_rate)))
        return crop_or_pad(samples, num_samples=num_samples, mode=self.mode, rng=np.random.default_rng(crop_seed))
