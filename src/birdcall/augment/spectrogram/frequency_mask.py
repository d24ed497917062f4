"""FrequencyMask: SpecAugment frequency masking, independent masks per example."""

from __future__ import annotations

from ..base import register_transform
from ._mask import AxisMask

__all__ = ["FrequencyMask"]


@register_transform
class FrequencyMask(AxisMask):
    """With probability ``p`` per example, set ``num_masks`` bands of the frequency axis (second last) to ``fill``.

    Each band is ``width`` bins, uniform in ``[min_width, max_width]`` (capped at the number of bins), at a
    uniform position, across all channels and frames. Input ``(B, C, F, T)`` (or ``(B, F, T)``).
    ``fill`` is a number or ``"mean"``. Targets pass through unchanged (may be None).
    """

    axis = -2

    def __init__(
        self, min_width: int = 0, max_width: int = 8, num_masks: int = 2, fill: float | str = 0.0, p: float = 1.0
    ):
        super().__init__(min_width=min_width, max_width=max_width, num_masks=num_masks, fill=fill, p=p)
