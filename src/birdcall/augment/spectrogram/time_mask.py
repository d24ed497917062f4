"""TimeMask: SpecAugment time masking, independent masks per example."""

from __future__ import annotations

from ..base import register_transform
from ._mask import AxisMask

__all__ = ["TimeMask"]


@register_transform
class TimeMask(AxisMask):
    """With probability ``p`` per example, set ``num_masks`` spans of the last (time) axis to ``fill``.

    Each span is ``width`` frames, uniform in ``[min_width, max_width]`` (capped at the length), at a uniform
    position; spans may overlap. Works on ``(B, C, F, T)`` spectrograms and ``(B, N)`` waveforms alike.
    ``fill`` is a number or ``"mean"`` (each example's mean). Targets pass through unchanged (may be None).
    """

    axis = -1

    def __init__(
        self, min_width: int = 0, max_width: int = 20, num_masks: int = 2, fill: float | str = 0.0, p: float = 1.0
    ):
        super().__init__(min_width=min_width, max_width=max_width, num_masks=num_masks, fill=fill, p=p)
