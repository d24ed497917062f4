"""MFCC (DCT-II of the dB mel spectrogram) and Savitzky-Golay deltas, numpy and torch.

`mfcc` equals ``librosa.feature.mfcc(S=S_db, n_mfcc=n_mfcc)`` (DCT type 2, ``norm="ortho"``, no liftering).
`delta` equals ``librosa.feature.delta(data, width=width, order=order)`` (mode ``"interp"``), which is
``scipy.signal.savgol_filter(data, width, polyorder=order, deriv=order, mode="interp")``. With
``polyorder == deriv`` the fitted polynomial's ``order``-th derivative is constant over a window, so the
``"interp"`` edge values equal the first and last full-window values: we compute the full windows and repeat
them at the edges, which is exact (no approximation of librosa's edge mode) and exports to ONNX as a
convolution plus an edge pad.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validate import is_int
from ..errors import ParameterError

__all__ = ["dct_matrix", "mfcc", "delta_coefficients", "delta", "MFCC", "Delta"]


def dct_matrix(*, n_mfcc: int, n_mels: int) -> np.ndarray:
    """Rows of the orthonormal DCT-II (scipy ``dct(type=2, norm="ortho")``) of length ``n_mels``.

    Returns:
        ``(n_mfcc, n_mels)`` float64 array; ``mfcc = dct @ S_db``.
    """
    if not 0 < n_mfcc <= n_mels:
        raise ParameterError(f"dct_matrix: need 0 < n_mfcc <= n_mels, got n_mfcc={n_mfcc}, n_mels={n_mels}")
    k = np.arange(n_mfcc)[:, None]
    n = np.arange(n_mels)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * math.sqrt(2.0 / n_mels)
    basis[0] *= math.sqrt(0.5)
    return basis


def mfcc(*, S: np.ndarray, n_mfcc: int = 20) -> np.ndarray:
    """MFCCs from a dB mel spectrogram (``librosa.feature.mfcc(S=S, n_mfcc=n_mfcc)``).

    Args:
        S: log-power mel spectrogram in dB, ``(..., n_mels, n_frames)``.
        n_mfcc: number of coefficients to keep.

    Returns:
        ``(..., n_mfcc, n_frames)`` array, float dtype of ``S`` (float32 for integer input).
    """
    S = np.asarray(S)
    if S.ndim < 2:
        raise ParameterError(f"mfcc: expected (..., n_mels, n_frames), got shape {S.shape}")
    dtype = S.dtype if np.issubdtype(S.dtype, np.floating) else np.float32
    return np.matmul(dct_matrix(n_mfcc=n_mfcc, n_mels=S.shape[-2]), S.astype(np.float64)).astype(dtype)


def _check_delta(width: int, order: int) -> None:
    if not is_int(width) or width < 3 or width % 2 == 0:
        raise ParameterError(f"delta: width must be an odd integer >= 3, got {width}")
    if not is_int(order) or order not in (1, 2):
        raise ParameterError(f"delta: order must be 1 or 2, got {order}")


def delta_coefficients(*, width: int = 9, order: int = 1) -> np.ndarray:
    """Savitzky-Golay weights for the ``order``-th derivative at the centre of a ``width``-frame window.

    Least-squares fit of a polynomial of degree ``order`` (scipy ``savgol_coeffs(width, order, deriv=order,
    use="dot")``).

    Returns:
        ``(width,)`` float64 weights ``c`` with ``delta[t] = sum_k c[k] * x[t - width // 2 + k]``.
    """
    _check_delta(width, order)
    half = width // 2
    positions = np.arange(-half, half + 1, dtype=np.float64)
    vander = positions[:, None] ** np.arange(order + 1)[None, :]  # (width, order + 1)
    return math.factorial(order) * np.linalg.pinv(vander)[order]


def delta(data: np.ndarray, *, width: int = 9, order: int = 1, axis: int = -1) -> np.ndarray:
    """Delta features (local derivative estimate), as ``librosa.feature.delta(data, width=width, order=order)``.

    Args:
        data: features, e.g. ``(..., n_mels, n_frames)``.
        width: odd window length in frames, ``3 <= width <= data.shape[axis]``.
        order: 1 (delta) or 2 (delta-delta, a 2nd-derivative fit to ``data`` itself, as librosa does).
        axis: the time axis.

    Returns:
        Array of the shape of ``data``, float dtype of ``data`` (float32 for integer input).

    Raises:
        ParameterError: bad ``width``/``order`` or fewer than ``width`` frames.
    """
    _check_delta(width, order)
    data = np.asarray(data)
    if data.ndim == 0 or data.shape[axis] < width:
        raise ParameterError(f"delta: need at least width={width} frames along axis {axis}, got shape {data.shape}")
    dtype = data.dtype if np.issubdtype(data.dtype, np.floating) else np.float32
    x = np.moveaxis(data.astype(np.float64), axis, -1)
    windows = np.lib.stride_tricks.sliding_window_view(x, width, axis=-1)  # (..., n - width + 1, width)
    valid = windows @ delta_coefficients(width=width, order=order)
    half = width // 2
    out = np.concatenate([np.repeat(valid[..., :1], half, -1), valid, np.repeat(valid[..., -1:], half, -1)], -1)
    return np.moveaxis(out, -1, axis).astype(dtype)


class MFCC(nn.Module):
    """Torch MFCCs from a dB mel spectrogram; same result as `mfcc`.

    Args:
        n_mfcc: number of coefficients.
        n_mels: number of mel bands of the input.
    """

    def __init__(self, n_mfcc: int = 20, n_mels: int = 128, *, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.register_buffer("dct", torch.from_numpy(dct_matrix(n_mfcc=n_mfcc, n_mels=n_mels)).to(dtype))

    def forward(self, S_db: torch.Tensor) -> torch.Tensor:
        """MFCCs of ``(..., n_mels, n_frames)`` dB mel spectrograms.

        Returns:
            ``(..., n_mfcc, n_frames)`` tensor.
        """
        return torch.matmul(self.dct, S_db)


class Delta(nn.Module):
    """Torch delta features along the last axis; same result as `delta` (librosa ``"interp"`` edges).

    Args:
        width: odd window length in frames.
        order: 1 or 2.
    """

    def __init__(self, width: int = 9, order: int = 1, *, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.width, self.order = int(width), int(order)
        kernel = torch.from_numpy(delta_coefficients(width=width, order=order)).to(dtype)
        self.register_buffer("kernel", kernel.reshape(1, 1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Deltas of ``(batch, rows, n_frames)`` features, ``n_frames >= width``.

        Returns:
            ``(batch, rows, n_frames)`` tensor.
        """
        if x.ndim != 3 or x.shape[-1] < self.width:
            raise ParameterError(
                f"Delta: expected (batch, rows, n_frames) with n_frames >= width={self.width}, got {tuple(x.shape)}"
            )
        valid = F.conv1d(x.reshape(-1, 1, x.shape[-1]), self.kernel)  # (batch * rows, 1, n_frames - width + 1)
        half = self.width // 2
        return F.pad(valid, (half, half), mode="replicate").reshape(x.shape)

    def extra_repr(self) -> str:
        return f"width={self.width}, order={self.order}"
