"""Batch mixing transforms: torch in and out, ``t(inputs, targets, *, generator) -> (inputs, targets)``."""

from .cut_mix import CutMix as CutMix
from .mixup import Mixup as Mixup
