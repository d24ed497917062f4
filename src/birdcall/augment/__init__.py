"""Augmentations. Batch-level mixing lives in ``mix``; waveform and spectrogram transforms follow."""

from .mix import sum_mix as sum_mix
