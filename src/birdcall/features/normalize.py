"""Per-example, per-channel normalisation of feature maps over their last two axes, numpy and torch."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ParameterError

__all__ = ["NORMALIZE_MODES", "NORMALIZE_EPS", "normalize", "Normalize"]

NORMALIZE_MODES = ("standardize", "minmax", "none")
# Floor of the standard deviation in "standardize" (and the range guard in "minmax"). A map whose spread is
# below it is float rounding residue, not signal: MFCC deltas of digital silence are ~1e-7, and dividing them by
# their own std (+1e-6, as before) blew that residue up to O(1) features that no other runtime reproduces.
# Real features (dB, MFCC, deltas) spread far more than 1e-4, so they are standardised exactly.
NORMALIZE_EPS = 1e-4


def _check_mode(mode: str, eps: float) -> None:
    if mode not in NORMALIZE_MODES:
        raise ParameterError(f"normalize: mode must be one of {NORMALIZE_MODES}, got {mode!r}")
    if eps <= 0:
        raise ParameterError(f"normalize: eps must be > 0, got {eps}")


def normalize(x: np.ndarray, *, mode: str = "standardize", eps: float = NORMALIZE_EPS) -> np.ndarray:
    """Normalise each ``(rows, n_frames)`` map of ``x`` on its own.

    ``"standardize"``: ``(x - mean) / max(std, eps)`` (population std), so mean 0 and std 1 exactly for maps
    whose std exceeds ``eps``, and near-constant maps (rounding residue) stay near 0;
    ``"minmax"``: ``(x - min) / (max - min + eps)``, within [0, 1]; ``"none"``: unchanged. A constant map
    becomes all zeros under both.

    Args:
        x: features, ``(..., rows, n_frames)``.
        mode: ``"standardize"``, ``"minmax"`` or ``"none"``.
        eps: floor of the std (``"standardize"``) and guard of the range (``"minmax"``).

    Returns:
        Array of the shape of ``x``, float dtype of ``x`` (float32 for integer input).
    """
    _check_mode(mode, eps)
    x = np.asarray(x)
    if x.ndim < 2:
        raise ParameterError(f"normalize: expected (..., rows, n_frames), got shape {x.shape}")
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
    if mode == "none":
        return x.astype(dtype)
    v = x.astype(np.float64)
    if mode == "standardize":
        centred = v - v.mean(axis=(-2, -1), keepdims=True)
        out = centred / np.maximum(np.sqrt(np.mean(centred**2, axis=(-2, -1), keepdims=True)), eps)
    else:
        low = v.min(axis=(-2, -1), keepdims=True)
        out = (v - low) / (v.max(axis=(-2, -1), keepdims=True) - low + eps)
    return out.astype(dtype)


class Normalize(nn.Module):
    """Torch version of `normalize` over the last two dims of ``(..., rows, n_frames)`` tensors."""

    def __init__(self, mode: str = "standardize", eps: float = NORMALIZE_EPS):
        super().__init__()
        _check_mode(mode, eps)
        self.mode, self.eps = mode, float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns a tensor of the shape of ``x``."""
        if x.ndim < 2:
            raise ParameterError(f"Normalize: expected (..., rows, n_frames), got {tuple(x.shape)}")
        if self.mode == "none":
            return x
        if self.mode == "standardize":
            centred = x - x.mean(dim=(-2, -1), keepdim=True)
            return centred / centred.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt().clamp_min(self.eps)
        low = x.amin(dim=(-2, -1), keepdim=True)
        return (x - low) / (x.amax(dim=(-2, -1), keepdim=True) - low + self.eps)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, eps={self.eps}"
