"""Gammatone filter bank on the FFT grid (the front end of GTCC), numpy weights and the torch `Gammatone`.

The filters are 4th-order gammatone filters (Patterson-Holdsworth, in Slaney's digital form) with centre
frequencies equally spaced on the ERB-number scale of Glasberg & Moore, ``ERB(f) = 24.7 * (4.37 * f / 1000 + 1)``
Hz, and bandwidth parameter ``b = 1.019 * ERB(cf)``. As in Dan Ellis' ``fft2gammatonemx`` (the ``gammatone``
package's ``fftweight.fft_weights`` with ``width=1``), each filter is reduced to the magnitude of its transfer
function at the FFT bin frequencies, normalised to 1 at its centre frequency; a gammatone spectrogram is then
``weights @ |STFT| ** power``, one matrix product like the mel filter bank. ``tests/parity`` checks the weights
against ``gammatone.fftweight.fft_weights``.

Centre frequencies follow Slaney's ``ERBSpace``: the lowest is ``fmin`` and they step up by
``(ERBnum(fmax) - ERBnum(fmin)) / n_filters``, so the highest lies one step below ``fmax``.

This module imports only numpy, torch and the errors module, so `birdcall.features.mel` can ask it which FFT
bins the filters use.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ParameterError

__all__ = ["EAR_Q", "MIN_BW", "erb_bandwidth", "erb_number", "erb_centre_frequencies", "gammatone_filterbank", "Gammatone"]

EAR_Q = 9.26449  # Glasberg & Moore: ERB(f) = f / EAR_Q + MIN_BW = 24.7 * (4.37 f / 1000 + 1)
MIN_BW = 24.7
_ORDER = 4  # gammatone order
_B_FACTOR = 1.019  # b = 1.019 ERB(cf): the 4th-order filter's ERB equals ERB(cf)


def erb_bandwidth(frequencies: np.ndarray | float) -> np.ndarray:
    """Equivalent rectangular bandwidth, ``24.7 * (4.37 * f / 1000 + 1)`` Hz (Glasberg & Moore 1990).

    Returns:
        float64 array of the shape of ``frequencies``, in Hz.
    """
    return np.asarray(frequencies, dtype=np.float64) / EAR_Q + MIN_BW


def erb_number(frequencies: np.ndarray | float) -> np.ndarray:
    """ERB-number (Cams): ``EAR_Q * ln(1 + f / (EAR_Q * MIN_BW))``, the integral of ``1 / ERB(f)`` from 0 Hz.

    Returns:
        float64 array of the shape of ``frequencies``.
    """
    return EAR_Q * np.log1p(np.asarray(frequencies, dtype=np.float64) / (EAR_Q * MIN_BW))


def _check_band(n_filters: int, fmin: float, fmax: float, sample_rate: float | None = None) -> None:
    if n_filters < 1:
        raise ParameterError(f"gammatone: n_filters must be >= 1, got {n_filters}")
    top = np.inf if sample_rate is None else sample_rate / 2
    if not 0 <= fmin < fmax <= top:
        raise ParameterError(f"gammatone: need 0 <= fmin < fmax <= sample_rate/2, got fmin={fmin}, fmax={fmax}")


def erb_centre_frequencies(*, n_filters: int, fmin: float, fmax: float) -> np.ndarray:
    """Centre frequencies equally spaced in ERB-number, ascending: ``fmin`` and ``n_filters - 1`` more steps.

    Equals ``gammatone.filters.erb_space(fmin, fmax, n_filters)[::-1]`` (Slaney's ``ERBSpace``).

    Returns:
        ``(n_filters,)`` float64 array in Hz.
    """
    _check_band(n_filters, fmin, fmax)
    step = (erb_number(fmax) - erb_number(fmin)) / n_filters
    cams = erb_number(fmin) + step * np.arange(n_filters)
    return EAR_Q * MIN_BW * np.expm1(cams / EAR_Q)


def gammatone_filterbank(*, sample_rate: float, n_fft: int, n_filters: int, fmin: float, fmax: float) -> np.ndarray:
    """Gammatone magnitude responses at the FFT bins, each 1 at its centre frequency (Ellis' ``fft2gammatonemx``).

    Same values as ``gammatone.fftweight.fft_weights(n_fft, sample_rate, n_filters, 1, fmin, fmax,
    n_fft // 2 + 1)[0]``, rows ordered from low to high centre frequency.

    Args:
        sample_rate: sampling rate of the signal, Hz.
        n_fft: FFT length.
        n_filters: number of filters.
        fmin: centre frequency of the lowest filter, Hz.
        fmax: upper end of the ERB-spaced range, Hz (see the module docstring).

    Returns:
        ``(n_filters, 1 + n_fft // 2)`` float64 array; ``gammatone_power = weights @ power_spectrum``.

    Raises:
        ParameterError: non-positive sizes or not ``0 <= fmin < fmax <= sample_rate / 2``.
    """
    if sample_rate <= 0 or n_fft <= 0:
        raise ParameterError(f"gammatone_filterbank: sample_rate and n_fft must be > 0, got {sample_rate}, {n_fft}")
    _check_band(n_filters, fmin, fmax, sample_rate)
    cf = erb_centre_frequencies(n_filters=n_filters, fmin=fmin, fmax=fmax)[:, None]  # (n_filters, 1)
    T = 1.0 / sample_rate
    B = _B_FACTOR * 2 * np.pi * erb_bandwidth(cf)
    arg = 2 * np.pi * cf * T
    # Slaney's four second-order sections share the poles; their zeros are A1k / T on the real axis
    root_pos, root_neg = np.sqrt(3 + 2**1.5), np.sqrt(3 - 2**1.5)
    common = -T * np.exp(-B * T)
    zeros = [common * (np.cos(arg) + s * r * np.sin(arg)) for r in (root_pos, root_neg) for s in (1, -1)]
    vec = np.exp(2j * arg)
    gain_arg = np.exp(1j * arg - B * T)
    gain = np.abs(
        np.prod([vec - gain_arg * (z / common) for z in zeros], axis=0)
        * (T * np.exp(B * T) / (-1 / np.exp(B * T) + 1 + vec * (1 - np.exp(B * T)))) ** _ORDER
    )
    z = np.exp(2j * np.pi * np.arange(n_fft // 2 + 1) / n_fft)[None, :]  # unit circle at the bins
    pole = np.exp(-B * T) * np.exp(1j * arg)
    numerator = np.prod([np.abs(z + zk * sample_rate) for zk in zeros], axis=0)
    denominator = np.abs(sample_rate * (pole - z) * (np.conj(pole) - z)) ** _ORDER
    return numerator / denominator / gain


class Gammatone(nn.Module):
    """Torch gammatone filter bank applied to power frames; same matrix as `gammatone_filterbank`.

    Args:
        sample_rate, n_fft, n_filters, fmin, fmax: as `gammatone_filterbank`.
        bins: the FFT bins the input frames hold (`LogMel`'s, which include every bin these filters use).
        power: magnitude exponent applied to the power frames first (2 keeps the power spectrum).
        dtype: dtype of the weights and the computation.
    """

    def __init__(
        self, *, sample_rate: float, n_fft: int, n_filters: int, fmin: float, fmax: float, bins: slice,
        power: float = 2.0, dtype: torch.dtype = torch.float32,
    ):  # fmt: skip
        super().__init__()
        weights = gammatone_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_filters=n_filters, fmin=fmin, fmax=fmax)
        if bins.start > 0 or bins.stop < weights.shape[1]:
            raise ParameterError(f"Gammatone: the frames must hold every FFT bin 0..{weights.shape[1] - 1}, got {bins}")
        self.power = float(power)
        self.register_buffer("weights", torch.from_numpy(weights).to(dtype))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Gammatone spectrogram of ``(batch, n_frames, n_bins)`` power frames (`LogMel.power_frames`).

        Written as ``(frames @ weights.T).T`` so the power tensor is read as it is (see `export.onnx`).

        Returns:
            ``(batch, n_filters, n_frames)`` tensor.
        """
        spec = frames if self.power == 2 else frames.pow(self.power / 2)
        return torch.matmul(spec, self.weights.transpose(0, 1)).transpose(1, 2)
