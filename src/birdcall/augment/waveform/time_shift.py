"""TimeShift: shift the clip in time, rolling it around or filling with zeros (wraps ``audiomentations.Shift``)."""

from __future__ import annotations

import functools

import numpy as np

from ..._validate import is_number
from ...errors import ParameterError
from ..base import WaveformTransform, call_audiomentations, check_choice, check_range, register_transform

__all__ = ["SHIFT_UNITS", "TimeShift"]

SHIFT_UNITS = ("fraction", "seconds")
_MIN_FADE = 0.00025  # audiomentations' smallest non-zero fade (2 samples at 8 kHz)


@register_transform
class TimeShift(WaveformTransform):
    """Shift later (positive) or earlier (negative) by ``shift`` uniform in ``[min_shift, max_shift]``.

    Args:
        min_shift: in ``shift_unit``.
        max_shift: in ``shift_unit``.
        shift_unit: ``fraction`` of the clip length (range within [-1, 1]) or ``seconds``.
        rollover: True rolls the samples that leave one end in at the other; False fills with zeros.
        fade_duration: seconds of fade in/out at the seams, against clicks; 0 disables.
        p: probability of applying.
    """

    def __init__(
        self,
        min_shift: float = -0.5,
        max_shift: float = 0.5,
        shift_unit: str = "fraction",
        rollover: bool = True,
        fade_duration: float = 0.005,
        p: float = 0.5,
    ):
        super().__init__(p)
        self.shift_unit = check_choice("TimeShift", "shift_unit", shift_unit, SHIFT_UNITS)
        limit = 1.0 if shift_unit == "fraction" else float("inf")
        self.min_shift, self.max_shift = check_range(
            "TimeShift", "shift", min_shift, max_shift, lowest=-limit, highest=limit
        )
        self.rollover = check_choice("TimeShift", "rollover", rollover, (True, False))
        if (
            not is_number(fade_duration)
            or not (fade_duration == 0 or _MIN_FADE <= fade_duration < 1.0)
        ):
            raise ParameterError(
                f"TimeShift: fade_duration must be 0 or in [{_MIN_FADE}, 1) seconds, got {fade_duration!r}"
            )
        self.fade_duration = float(fade_duration)

    @functools.cached_property
    def _am(self):
        """The wrapped transform, made on first use: importing audiomentations takes most of a second, which a
        config that only checks its arguments should not pay."""
        from audiomentations import Shift

        return Shift(
            min_shift=self.min_shift,
            max_shift=self.max_shift,
            shift_unit=self.shift_unit,
            rollover=bool(self.rollover),
            fade_duration=self.fade_duration,
            p=1.0,
        )

    def randomize_parameters(self, samples: np.ndarray, *, sample_rate: int, rng: np.random.Generator) -> dict:
        return {"shift": float(rng.uniform(self.min_shift, self.max_shift))}

    def apply(self, samples: np.ndarray, *, sample_rate: int, shift: float) -> np.ndarray:
        return call_audiomentations(self._am, samples, sample_rate, shift_amount=shift)
