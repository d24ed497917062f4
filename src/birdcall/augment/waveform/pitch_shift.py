"""PitchShift: transpose by a random number of semitones, same duration (wraps ``audiomentations.PitchShift``)."""

from __future__ import annotations

import functools

import numpy as np

from ...features import crop_or_pad
from ..base import WaveformTransform, call_audiomentations, check_choice, check_range, register_transform

__all__ = ["PITCH_SHIFT_METHODS", "PitchShift"]

PITCH_SHIFT_METHODS = ("signalsmith_stretch", "librosa_phase_vocoder")


@register_transform
class PitchShift(WaveformTransform):
    """Transpose by ``semitones`` uniform in ``[min_semitones, max_semitones]`` (within +-24): frequencies scale by
    ``2 ** (semitones / 12)``, duration unchanged.

    ``method``: ``signalsmith_stretch`` (fast, a few ms per second of audio) or ``librosa_phase_vocoder``
    (slow). Both are deterministic given ``semitones``.
    """

    def __init__(
        self,
        min_semitones: float = -4.0,
        max_semitones: float = 4.0,
        method: str = "signalsmith_stretch",
        p: float = 0.5,
    ):
        super().__init__(p)
        self.min_semitones, self.max_semitones = check_range(
            "PitchShift", "semitones", min_semitones, max_semitones, lowest=-24.0, highest=24.0
        )
        self.method = check_choice("PitchShift", "method", method, PITCH_SHIFT_METHODS)

    @functools.cached_property
    def _am(self):
        """The wrapped transform, made on first use (importing audiomentations is slow)."""
        from audiomentations import PitchShift as _PitchShift

        return _PitchShift(min_semitones=self.min_semitones, max_semitones=self.max_semitones, method=self.method, p=1.0)

    def randomize_parameters(self, samples: np.ndarray, *, sample_rate: int, rng: np.random.Generator) -> dict:
        return {"semitones": float(rng.uniform(self.min_semitones, self.max_semitones))}

    def apply(self, samples: np.ndarray, *, sample_rate: int, semitones: float) -> np.ndarray:
        out = call_audiomentations(self._am, samples, sample_rate, num_semitones=semitones)
        return crop_or_pad(np.asarray(out, dtype=np.float32), num_samples=len(samples))  # guard: same length out
