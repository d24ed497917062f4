"""Type aliases and shape conventions.

Shapes: a waveform is ``(num_samples,)`` or batched ``(batch, num_samples)``; a spectrogram-like feature is
``(..., n_mels, n_frames)``; model input features are ``(batch, channels, n_mels, n_frames)``; model scores are
``(batch, num_classes)``.
"""

from __future__ import annotations

import os
from typing import Union

Seconds = float
Hz = float
Decibels = float
Pathlike = Union[str, "os.PathLike[str]"]
