"""Pre-emphasis ``y[n] - coef * y[n - 1]``, numpy and torch, with librosa's treatment of the first sample.

``librosa.effects.preemphasis`` (0.11, default ``zi=None``) starts the filter from the state ``2 * y[0] - y[1]``
(meant as a linear extrapolation of ``y[-1]``). It hands that value to ``lfilter`` as the *state*, not as the
previous sample, so it is not multiplied by ``-coef`` and the first output is ``y[0] + (2 * y[0] - y[1])``.
We reproduce it so features match librosa-computed ones; it only changes the first sample (so, with centred
frames, the first one or two frames).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ParameterError

__all__ = ["preemphasis", "Preemphasis"]


def _check_coef(coef: float) -> None:
    if not 0.0 <= coef < 1.0:
        raise ParameterError(f"preemphasis: coef must be in [0, 1), got {coef}")


def _preemphasis64(y: np.ndarray, coef: float) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    out = np.empty_like(y)
    out[..., 1:] = y[..., 1:] - coef * y[..., :-1]
    out[..., 0] = 3.0 * y[..., 0] - y[..., 1]  # y[0] + (2 y[0] - y[1]): librosa's initial state, unscaled
    return out


def preemphasis(y: np.ndarray, *, coef: float = 0.97) -> np.ndarray:
    """Pre-emphasis filter along the last axis, as ``librosa.effects.preemphasis(y, coef=coef)``.

    Args:
        y: waveform, ``(..., num_samples)`` with ``num_samples >= 2``.
        coef: filter coefficient in ``[0, 1)``; the seed recipe uses 0.97.

    Returns:
        Array of the shape of ``y``; float dtype of ``y`` (float32 for integer input).

    Raises:
        ParameterError: ``coef`` out of range or fewer than 2 samples.
    """
    _check_coef(coef)
    y = np.asarray(y)
    if y.ndim < 1 or y.shape[-1] < 2:
        raise ParameterError(f"preemphasis: need (..., num_samples) with num_samples >= 2, got shape {y.shape}")
    dtype = y.dtype if np.issubdtype(y.dtype, np.floating) else np.float32
    return _preemphasis64(y, coef).astype(dtype)


class Preemphasis(nn.Module):
    """Torch pre-emphasis along the last axis; same result as `preemphasis`.

    Args:
        coef: filter coefficient in ``[0, 1)``.
    """

    def __init__(self, coef: float = 0.97):
        super().__init__()
        _check_coef(coef)
        self.coef = float(coef)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Filter a ``(..., num_samples)`` waveform (``num_samples >= 2``).

        Returns:
            Tensor of the shape of ``waveform``.
        """
        if waveform.ndim < 1 or waveform.shape[-1] < 2:
            raise ParameterError(f"Preemphasis: need (..., num_samples) with num_samples >= 2, got {tuple(waveform.shape)}")
        first = 3.0 * waveform[..., :1] - waveform[..., 1:2]
        rest = waveform[..., 1:] - self.coef * waveform[..., :-1]
        return torch.cat([first, rest], dim=-1)

    def extra_repr(self) -> str:
        return f"coef={self.coef}"
