"""Gain: multiply the clip by a random factor, uniform in decibels (wraps ``audiomentations.Gain``)."""

from __future__ import annotations

import functools

import numpy as np

from ..base import WaveformTransform, call_audiomentations, check_range, register_transform

__all__ = ["Gain"]


@register_transform
class Gain(WaveformTransform):
    """Multiply by ``10 ** (gain_db / 20)``, ``gain_db`` uniform in ``[min_gain_db, max_gain_db]``.

    Makes the model less sensitive to recording level. The output can exceed [-1, 1].
    """

    def __init__(self, min_gain_db: float = -12.0, max_gain_db: float = 12.0, p: float = 0.5):
        super().__init__(p)
        self.min_gain_db, self.max_gain_db = check_range("Gain", "gain_db", min_gain_db, max_gain_db)

    @functools.cached_property
    def _am(self):
        """The wrapped transform, made on first use (importing audiomentations is slow)."""
        from audiomentations import Gain as _Gain

        return _Gain(min_gain_db=self.min_gain_db, max_gain_db=self.max_gain_db, p=1.0)

    def randomize_parameters(self, samples: np.ndarray, *, sample_rate: int, rng: np.random.Generator) -> dict:
        return {"gain_db": float(rng.uniform(self.min_gain_db, self.max_gain_db))}

    def apply(self, samples: np.ndarray, *, sample_rate: int, gain_db: float) -> np.ndarray:
        return call_audiomentations(self._am, samples, sample_rate, amplitude_ratio=10.0 ** (gain_db / 20.0))
