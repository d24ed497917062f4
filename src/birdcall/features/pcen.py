"""Per-channel energy normalisation (PCEN), numpy reference and torch module; an alternative to dB scaling.

Same definition and defaults as ``librosa.pcen`` (0.11) with ``max_size=1`` (no frequency max-filtering)::

    M[f, t] = (1 - b) * M[f, t - 1] + b * S[f, t],          M[f, -1] = 1 (librosa's ``lfilter_zi`` start)
    P[f, t] = bias**power * expm1(power * log1p(S / (eps + M)**gain / bias))

with ``b`` from ``time_constant``, ``sample_rate`` and ``hop_length`` as librosa computes it. librosa's docs
recommend feeding it a *magnitude* mel spectrogram (``power=1``) of audio scaled to the int32 range, i.e.
``S * 2**31`` (`PCEN_INPUT_SCALE`) for audio in [-1, 1]; `birdcall.features.FeatureExtractor` does exactly that.

The torch module evaluates the IIR smoother exactly but without a Python loop over frames (a blocked linear
scan): frames are grouped in blocks of ``block_size``; inside a block the recursion is a small lower-triangular
matrix product, and the state carried from block to block is another triangular product over blocks, with the
start state ``M[-1] = 1`` in closed form. Matrix products, pads and reshapes also export to ONNX.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError

__all__ = ["PCEN_INPUT_SCALE", "pcen_smoothing_coefficient", "pcen", "PCEN"]

PCEN_INPUT_SCALE = 2.0**31  # audio in [-1, 1] -> the int32 range PCEN's default parameters were tuned on
_BLOCK_SIZE = 64  # frames per block of the torch smoother's scan


def pcen_smoothing_coefficient(*, sample_rate: float, hop_length: int, time_constant: float = 0.4) -> float:
    """The smoother's ``b`` for a time constant in seconds, as librosa computes it.

    ``b`` solves ``b**2 + (1 - b) / T - 2 = 0`` with ``T = time_constant * sample_rate / hop_length`` frames,
    i.e. ``b = (sqrt(1 + 4 T**2) - 1) / (2 T**2)``.
    """
    if sample_rate <= 0 or hop_length <= 0 or time_constant <= 0:
        raise ParameterError(
            f"pcen: sample_rate, hop_length, time_constant must be > 0, got {sample_rate}, {hop_length}, {time_constant}"
        )
    t_frames = time_constant * sample_rate / float(hop_length)
    return (math.sqrt(1 + 4 * t_frames**2) - 1) / (2 * t_frames**2)


def _resolve_b(sample_rate, hop_length, gain, bias, power, time_constant, eps, b) -> float:
    if power < 0 or gain < 0 or bias < 0:
        raise ParameterError(f"pcen: power, gain, bias must be >= 0, got {power}, {gain}, {bias}")
    if eps <= 0:
        raise ParameterError(f"pcen: eps must be > 0, got {eps}")
    if b is None:
        b = pcen_smoothing_coefficient(sample_rate=sample_rate, hop_length=hop_length, time_constant=time_constant)
    if not 0 <= b <= 1:
        raise ParameterError(f"pcen: b must be in [0, 1], got {b}")
    return float(b)


def pcen(
    S: np.ndarray,
    *,
    sample_rate: float,
    hop_length: int,
    gain: float = 0.98,
    bias: float = 2.0,
    power: float = 0.5,
    time_constant: float = 0.4,
    eps: float = 1e-6,
    b: float | None = None,
) -> np.ndarray:
    """PCEN of a non-negative spectrogram, time on the last axis (``librosa.pcen`` with ``max_size=1``).

    Args:
        S: non-negative spectrogram, ``(..., n_mels, n_frames)``; see the module docstring for its scaling.
        sample_rate: sampling rate of the audio, Hz.
        hop_length: hop of the spectrogram, samples.
        gain: gain normalisation exponent.
        bias: offset before compression.
        power: compression exponent (0 means log compression).
        time_constant: smoother time constant, seconds.
        eps: floor of the smoothed energy.
        b: smoother coefficient; overrides ``time_constant``.

    Returns:
        Array of the shape of ``S``, float dtype of ``S`` (float32 for integer input). Computed in float64
        with the exact recursion.
    """
    b = _resolve_b(sample_rate, hop_length, gain, bias, power, time_constant, eps, b)
    S = np.asarray(S)
    if S.ndim < 1 or S.shape[-1] == 0:
        raise ParameterError(f"pcen: expected (..., n_frames) with n_frames > 0, got shape {S.shape}")
    if np.iscomplexobj(S):
        raise ParameterError("pcen: expected a real non-negative spectrogram, got complex input (take np.abs first)")
    dtype = S.dtype if np.issubdtype(S.dtype, np.floating) else np.float32
    x = S.astype(np.float64)
    smooth = np.empty_like(x)
    state = np.ones(x.shape[:-1])
    for t in range(x.shape[-1]):
        state = (1.0 - b) * state + b * x[..., t]
        smooth[..., t] = state
    return _compress(x, smooth, gain=gain, bias=bias, power=power, eps=eps, log=np.log, log1p=np.log1p,
                     exp=np.exp, expm1=np.expm1).astype(dtype)


def _compress(x, smooth, *, gain, bias, power, eps, log, log1p, exp, expm1):
    """Adaptive gain control and compression, in librosa's log-space form (works on numpy and torch)."""
    agc = exp(-gain * (math.log(eps) + log1p(smooth / eps)))  # (eps + M) ** -gain
    if power == 0:
        return log1p(x * agc)
    if bias == 0:
        return exp(power * (log(x) + log(agc)))
    return (bias**power) * expm1(power * log1p(x * agc / bias))


class PCEN(nn.Module):
    """Torch PCEN over the last axis of ``(..., n_frames)`` tensors; same result as `pcen`.

    Args are those of `pcen`.
    """

    def __init__(
        self,
        *,
        sample_rate: float,
        hop_length: int,
        gain: float = 0.98,
        bias: float = 2.0,
        power: float = 0.5,
        time_constant: float = 0.4,
        eps: float = 1e-6,
        b: float | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        self.b = _resolve_b(sample_rate, hop_length, gain, bias, power, time_constant, eps, b)
        self.gain, self.bias, self.power, self.eps = float(gain), float(bias), float(power), float(eps)
        self.block_size = _BLOCK_SIZE
        decay = 1.0 - self.b
        lag = np.arange(_BLOCK_SIZE)[:, None] - np.arange(_BLOCK_SIZE)[None, :]  # i - k
        intra = np.where(lag >= 0, self.b * decay ** np.maximum(lag, 0), 0.0)  # M_i = sum_k<=i b (1-b)^(i-k) x_k
        self.register_buffer("intra", torch.from_numpy(intra.T.copy()).to(dtype))  # (k, i): x_block @ intra
        self.register_buffer("decay_in_block", torch.from_numpy(decay ** np.arange(1.0, _BLOCK_SIZE + 1)).to(dtype))
        self.register_buffer("decay", torch.tensor(decay, dtype=dtype))

    def smooth(self, S: torch.Tensor) -> torch.Tensor:
        """The IIR smoother ``M`` of ``S`` along the last axis (same shape), exact.

        Frames are padded to ``n_blocks * block_size`` and reshaped to ``(..., n_blocks, block_size)``.
        ``local`` is the smoother started from 0 in each block; block ``j`` then adds the state carried in,
        ``carry[j] * (1 - b) ** (i + 1)``, where ``carry[j] = M`` at the end of block ``j - 1`` (1 for the first)
        ``= sum_{m<j} (1 - b) ** (L (j - 1 - m)) * local_end[m] + (1 - b) ** (L j)``.
        """
        n_frames = S.shape[-1]
        size = self.block_size
        n_blocks = (n_frames + size - 1) // size
        blocks = F.pad(S, (0, n_blocks * size - n_frames)).reshape(S.shape[:-1] + (n_blocks, size))
        local = torch.matmul(blocks, self.intra)  # (..., n_blocks, size)
        ends = local[..., -1]  # (..., n_blocks)
        index = torch.arange(n_blocks, device=S.device)
        lag = (index[:, None] - index[None, :] - 1).to(S.dtype)  # j - 1 - m
        inter = torch.where(lag >= 0, torch.pow(self.decay, lag.clamp(min=0) * size), torch.zeros_like(lag))
        carry = torch.matmul(ends, inter.T) + torch.pow(self.decay, index.to(S.dtype) * size)  # (..., n_blocks)
        smoothed = local + carry.unsqueeze(-1) * self.decay_in_block
        return smoothed.reshape(S.shape[:-1] + (n_blocks * size,))[..., :n_frames]

    def forward(self, S: torch.Tensor) -> torch.Tensor:
        """PCEN of a non-negative ``(..., n_frames)`` spectrogram.

        Returns:
            Tensor of the shape of ``S``.
        """
        if S.ndim < 1 or S.shape[-1] == 0 or S.is_complex():
            raise ParameterError(f"PCEN: expected a real (..., n_frames) tensor, got {tuple(S.shape)} {S.dtype}")
        S = S.to(self.intra.dtype)
        return _compress(S, self.smooth(S), gain=self.gain, bias=self.bias, power=self.power, eps=self.eps,
                         log=torch.log, log1p=torch.log1p, exp=torch.exp, expm1=torch.expm1)

    def extra_repr(self) -> str:
        return f"b={self.b:.6g}, gain={self.gain}, bias={self.bias}, power={self.power}, eps={self.eps}"
