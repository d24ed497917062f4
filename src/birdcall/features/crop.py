"""Fixed-length crops of a waveform: the first samples, a uniform random window, or an energy-weighted window."""

from __future__ import annotations

import numpy as np

from .._validate import check_int
from ..errors import ParameterError

__all__ = ["CROP_MODES", "PAD_MODES", "crop_or_pad"]

CROP_MODES = ("start", "random", "energy")
PAD_MODES = ("zero", "wrap")


def _energy_weighted_start(y: np.ndarray, num_samples: int, rng: np.random.Generator) -> int:
    """Draw a start with probability proportional to the energy of the window it begins."""
    power = np.square(y, dtype=np.float64)
    if power.ndim > 1:
        power = power.reshape(-1, power.shape[-1]).sum(axis=0)
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    window_energy = np.maximum(cumulative[num_samples:] - cumulative[:-num_samples], 0.0)  # one per start
    total = window_energy.sum()
    if not np.isfinite(total) or total <= 0:  # silence: fall back to a uniform start
        return int(rng.integers(0, len(window_energy)))
    cdf = np.cumsum(window_energy)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(window_energy) - 1))


def crop_or_pad(
    y: np.ndarray, *, num_samples: int, mode: str = "start", rng: np.random.Generator | None = None, pad: str = "zero"
) -> np.ndarray:
    """Cut or pad ``y`` to exactly ``num_samples`` along the last axis.

    Shorter input is zero-padded at the end (``pad="zero"``) or repeated end to end until it fills the window
    (``pad="wrap"``, as BirdCLEF solutions tile short clips: no stretch of digital silence for the model to key
    on), whatever the mode. Longer input is cropped to the window that
    starts at sample 0 (``"start"``, for evaluation), at a uniform random start (``"random"``, for training),
    or at a start drawn with probability proportional to the window's energy (sum of squares over the window
    and all leading axes; ``"energy"``, for training on recordings where the call is short). A silent input
    in ``"energy"`` mode gets a uniform start.

    Args:
        y: waveform, ``(..., n)``.
        num_samples: output length.
        mode: ``"start"``, ``"random"`` or ``"energy"``.
        rng: source of randomness; required by ``"random"`` and ``"energy"``.
        pad: ``"zero"`` or ``"wrap"``, how shorter input is filled.

    Returns:
        New ``(..., num_samples)`` array of the dtype of ``y``.

    Raises:
        ParameterError: ``num_samples < 1``, unknown ``mode`` or ``pad``, missing ``rng``, or ``y`` without samples.

    Example:
        >>> crop_or_pad(np.arange(5.0), num_samples=3).tolist()
        [0.0, 1.0, 2.0]
        >>> crop_or_pad(np.ones(2), num_samples=4).tolist()
        [1.0, 1.0, 0.0, 0.0]
        >>> crop_or_pad(np.array([1.0, 2.0]), num_samples=5, pad="wrap").tolist()
        [1.0, 2.0, 1.0, 2.0, 1.0]
    """
    check_int("num_samples", num_samples, min=1, owner="crop_or_pad")
    if mode not in CROP_MODES:
        raise ParameterError(f"crop_or_pad: mode must be one of {CROP_MODES}, got {mode!r}")
    if pad not in PAD_MODES:
        raise ParameterError(f"crop_or_pad: pad must be one of {PAD_MODES}, got {pad!r}")
    if mode != "start" and not isinstance(rng, np.random.Generator):
        raise ParameterError(f"crop_or_pad: mode={mode!r} needs rng=np.random.Generator, got {type(rng).__name__}")
    y = np.asarray(y)
    if y.ndim < 1 or y.shape[-1] == 0:
        raise ParameterError(f"crop_or_pad: expected a (..., n) waveform with n > 0, got shape {y.shape}")
    length = y.shape[-1]
    if length <= num_samples:
        if pad == "wrap":
            return np.tile(y, (1,) * (y.ndim - 1) + (-(-num_samples // length),))[..., :num_samples].copy()
        out = np.zeros(y.shape[:-1] + (num_samples,), dtype=y.dtype)
        out[..., :length] = y
        return out
    if mode == "start":
        start = 0
    elif mode == "random":
        start = int(rng.integers(0, length - num_samples + 1))
    else:
        start = _energy_weighted_start(y, num_samples, rng)
    return y[..., start : start + num_samples].copy()
