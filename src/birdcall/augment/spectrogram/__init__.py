"""SpecAugment masks on batches: ``t(inputs, targets=None, *, generator) -> (inputs, targets)``."""

from .frequency_mask import FrequencyMask as FrequencyMask
from .time_mask import TimeMask as TimeMask
