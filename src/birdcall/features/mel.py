"""Log-mel spectrogram: the mel filter bank, a numpy reference and the torch `LogMel` module.

Both implementations follow librosa 0.11 exactly (``librosa.feature.melspectrogram`` + ``power_to_db``):
centred frames (``center=True``) with zero padding of ``n_fft // 2`` on each side (librosa 0.11's default
``pad_mode="constant"``), a periodic Hann window of length ``n_fft``, ``|STFT| ** power``, a Slaney-scale mel
filter bank with Slaney area normalisation, and ``10 * log10(max(S, amin))`` with ``ref=1.0``.

The filter bank is written here in numpy (it equals ``librosa.filters.mel(htk=False, norm="slaney")``, checked
by ``tests/unit/features/test_mel.py``) so that librosa, which pulls in numba, stays a test-only dependency.

The numpy reference computes in float64 and returns float32; `LogMel` computes in the dtype of its buffers
(float32 by default, ``.double()`` for float64).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import nn

from ..errors import ParameterError
from .config import FeatureConfig
from .gammatone import gammatone_filterbank
from .stft import hann_window

__all__ = [
    "AMIN",
    "hz_to_mel",
    "mel_to_hz",
    "mel_frequencies",
    "fft_frequencies",
    "mel_filterbank",
    "stft_power",
    "mel_spectrogram",
    "power_to_db",
    "log_mel",
    "LogMel",
]

AMIN = 1e-10  # floor of the power before the log, librosa's ``amin``

# Slaney's Auditory Toolbox mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0
_STFT_BLOCK_FRAMES = 1024  # frames per block in the numpy STFT (bounds memory: 1024 x n_fft float64)


def hz_to_mel(frequencies: np.ndarray | float) -> np.ndarray:
    """Hz to mels on the Slaney scale (librosa's ``hz_to_mel(htk=False)``).

    Returns:
        float64 array of the shape of ``frequencies``.
    """
    f = np.asarray(frequencies, dtype=np.float64)
    log_part = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log_part, f / _F_SP)


def mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    """Mels to Hz on the Slaney scale (librosa's ``mel_to_hz(htk=False)``).

    Returns:
        float64 array of the shape of ``mels``.
    """
    m = np.asarray(mels, dtype=np.float64)
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log_part, _F_SP * m)


def mel_frequencies(*, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """``n_mels`` frequencies evenly spaced on the Slaney mel scale from ``fmin`` to ``fmax`` (inclusive).

    Returns:
        ``(n_mels,)`` float64 array in Hz.
    """
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels))


def fft_frequencies(*, sample_rate: float, n_fft: int) -> np.ndarray:
    """Centre frequency of each bin of a one-sided ``n_fft``-point FFT.

    Returns:
        ``(1 + n_fft // 2,)`` float64 array in Hz.
    """
    return np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)


def mel_filterbank(*, sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular mel filters, Slaney scale and Slaney area normalisation.

    Same values as ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax,
    htk=False, norm="slaney")`` (which returns float32; this returns float64). A filter that covers no FFT bin
    (``n_mels`` too large for ``n_fft``) is all zeros and triggers a warning, as in librosa.

    Args:
        sample_rate: sampling rate of the signal, Hz.
        n_fft: FFT length.
        n_mels: number of mel bands.
        fmin: lower edge of the first band, Hz.
        fmax: upper edge of the last band, Hz.

    Returns:
        ``(n_mels, 1 + n_fft // 2)`` float64 array; ``mel_power = weights @ power_spectrum``.

    Raises:
        ParameterError: non-positive sizes or not ``0 <= fmin < fmax <= sample_rate / 2``.
    """
    if sample_rate <= 0 or n_fft <= 0 or n_mels <= 0:
        raise ParameterError(f"mel_filterbank: sample_rate, n_fft, n_mels must be > 0, got {sample_rate}, {n_fft}, {n_mels}")
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ParameterError(f"mel_filterbank: need 0 <= fmin < fmax <= sample_rate/2, got fmin={fmin}, fmax={fmax}")
    fft_freqs = fft_frequencies(sample_rate=sample_rate, n_fft=n_fft)  # (n_freq,)
    edges = mel_frequencies(n_mels=n_mels + 2, fmin=fmin, fmax=fmax)  # (n_mels + 2,) band edges and centres
    widths = np.diff(edges)  # (n_mels + 1,)
    ramps = edges[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_freq)
    lower = -ramps[:-2] / widths[:-1, None]  # rising slope of band i, from edges[i] to edges[i + 1]
    upper = ramps[2:] / widths[1:, None]  # falling slope, from edges[i + 1] to edges[i + 2]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # Slaney: constant area per band
    if not np.all((edges[:-2] == 0) | (weights.max(axis=1) > 0)):
        warnings.warn(
            f"mel_filterbank: some of the {n_mels} mel filters are empty (n_fft={n_fft}, sample_rate={sample_rate}); "
            "they give constant rows. Use fewer mel bands or a larger n_fft.",
            UserWarning,
            stacklevel=2,
        )
    return weights


def _check_waveform(y: np.ndarray, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim < 1 or y.shape[-1] == 0:
        raise ParameterError(f"{name}: expected a (..., num_samples) waveform with num_samples > 0, got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise ParameterError(f"{name}: expected a real waveform, got dtype {y.dtype}")
    return y


def stft_power(*, y: np.ndarray, n_fft: int, hop_length: int, power: float = 2.0) -> np.ndarray:
    """``|STFT(y)| ** power`` with librosa's framing: centred, zero padded, periodic Hann window.

    Computed in float64, a block of frames at a time.

    Args:
        y: waveform, ``(..., num_samples)``.
        n_fft: FFT and window length.
        hop_length: samples between frames.
        power: exponent of the magnitude (1 magnitude, 2 power).

    Returns:
        ``(..., 1 + n_fft // 2, 1 + num_samples // hop_length)`` float64 array.
    """
    y = _check_waveform(y, "stft_power")
    if n_fft <= 0 or hop_length <= 0 or power <= 0:
        raise ParameterError(f"stft_power: n_fft, hop_length, power must be > 0, got {n_fft}, {hop_length}, {power}")
    lead, num_samples = y.shape[:-1], y.shape[-1]
    flat = y.reshape(-1, num_samples).astype(np.float64)
    pad = n_fft // 2
    padded = np.pad(flat, ((0, 0), (pad, pad)))
    n_frames = 1 + num_samples // hop_length
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop_length][:, :n_frames]
    window = hann_window(n_fft)
    out = np.empty((flat.shape[0], n_fft // 2 + 1, n_frames), dtype=np.float64)
    for row in range(flat.shape[0]):
        for start in range(0, n_frames, _STFT_BLOCK_FRAMES):
            spec = np.fft.rfft(frames[row, start : start + _STFT_BLOCK_FRAMES] * window, axis=-1)
            mag2 = spec.real**2 + spec.imag**2
            block = mag2 if power == 2 else mag2 ** (power / 2)
            out[row, :, start : start + _STFT_BLOCK_FRAMES] = block.T
    return out.reshape(*lead, n_fft // 2 + 1, n_frames)


def _mel_from_config(config: FeatureConfig) -> np.ndarray:
    return mel_filterbank(
        sample_rate=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax
    )


def _gammatone_from_config(config: FeatureConfig) -> np.ndarray:
    fmin, fmax = config.gammatone_band
    return gammatone_filterbank(
        sample_rate=config.sample_rate, n_fft=config.n_fft, n_filters=config.n_gammatone, fmin=fmin, fmax=fmax
    )


def _uses_gammatone(config: FeatureConfig) -> bool:
    return any(c.startswith("gtcc") for c in config.channels)


def _mel_spectrogram64(y: np.ndarray, config: FeatureConfig, power: float) -> np.ndarray:
    spec = stft_power(y=y, n_fft=config.n_fft, hop_length=config.hop_length, power=power)
    return np.matmul(_mel_from_config(config), spec)


def mel_spectrogram(*, y: np.ndarray, config: FeatureConfig, power: float | None = None) -> np.ndarray:
    """Mel spectrogram, ``mel_filterbank @ |STFT(y)| ** power`` (librosa ``feature.melspectrogram``).

    Args:
        y: waveform at ``config.sample_rate``, ``(..., num_samples)``.
        config: STFT and mel parameters.
        power: overrides ``config.power`` (1 for the magnitude, as PCEN wants).

    Returns:
        ``(..., n_mels, n_frames)`` float32 array, ``n_frames = config.num_frames(num_samples)``.
    """
    return _mel_spectrogram64(y, config, config.power if power is None else power).astype(np.float32)


def power_to_db(S: np.ndarray, *, amin: float = AMIN, top_db: float | None = None) -> np.ndarray:
    """``10 * log10(max(S, amin))`` (librosa ``power_to_db`` with ``ref=1.0``).

    Args:
        S: non-negative power, ``(..., n_mels, n_frames)``.
        amin: floor applied before the log.
        top_db: if set, clip at ``max - top_db``. The max is taken per spectrogram (over the last two axes),
            where librosa takes one max over the whole array; the two agree for a single spectrogram.

    Returns:
        Array of the shape of ``S``, float dtype of ``S`` (float32 for integer input).
    """
    S = np.asarray(S)
    if amin <= 0:
        raise ParameterError(f"power_to_db: amin must be > 0, got {amin}")
    if top_db is not None and top_db < 0:
        raise ParameterError(f"power_to_db: top_db must be >= 0 or None, got {top_db}")
    dtype = S.dtype if np.issubdtype(S.dtype, np.floating) else np.float32
    db = 10.0 * np.log10(np.maximum(S.astype(np.float64), amin))
    if top_db is not None:
        db = np.maximum(db, db.max(axis=(-2, -1), keepdims=True) - top_db)
    return db.astype(dtype)


def log_mel(*, y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Log-mel spectrogram in dB: the numpy reference of `LogMel`.

    Equals ``librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=n_fft,
    hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax, power=power), ref=1.0, amin=1e-10,
    top_db=top_db)``, computed in float64.

    Args:
        y: waveform at ``config.sample_rate``, ``(..., num_samples)``.
        config: feature parameters (``scale`` is ignored: this is always dB).

    Returns:
        ``(..., n_mels, n_frames)`` float32 array, ``n_frames = config.num_frames(num_samples)``.
    """
    return power_to_db(_mel_spectrogram64(y, config, config.power), top_db=config.top_db).astype(np.float32)


class LogMel(nn.Module):
    """Batched log-mel spectrogram in dB on CPU or GPU; same result as `log_mel` for the same config.

    The Hann window and the mel filter bank (from `mel_filterbank`) are registered buffers, so they follow
    ``.to(device)`` / ``.double()`` and are saved in the state dict. The STFT is ``torch.stft`` on zero-padded
    centred frames, and the power is taken from ``view_as_real`` (no complex tensors leave the STFT); FFT bins
    that no filter covers are skipped (with ``"gtcc*"`` channels none is: gammatone responses never reach zero).

    Args:
        config: feature parameters (``scale`` is ignored: this is always dB).
        dtype: dtype of the buffers and of the computation. float32 is what models use; float64 gives the
            librosa result to ~1e-5 dB even in bins 100 dB below the frame's peak (see tests/parity).

    Example:
        >>> logmel = LogMel(FeatureConfig())
        >>> logmel(torch.zeros(2, 160_000)).shape
        torch.Size([2, 128, 313])
    """

    config_type = FeatureConfig

    def __init__(self, config: FeatureConfig | None = None, *, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.config = FeatureConfig() if config is None else config
        if not dtype.is_floating_point:
            raise ParameterError(f"LogMel: dtype must be a floating point dtype, got {dtype}")
        c = self.config
        weights = _mel_from_config(c)
        covered = weights.any(axis=0)
        if _uses_gammatone(c):
            covered |= _gammatone_from_config(c).any(axis=0)  # every bin: the gammatone frames read them all
        used = np.flatnonzero(covered)  # FFT bins some filter covers (no mel filter above fmax)
        self._bins = slice(int(used[0]), int(used[-1]) + 1) if used.size else slice(0, 1)
        self.register_buffer("window", torch.from_numpy(hann_window(c.n_fft)).to(dtype))
        self.register_buffer("mel_basis", torch.from_numpy(weights).to(dtype))

    def check_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        """Validate a ``(batch, num_samples)`` waveform and cast it to the buffers' dtype."""
        if not isinstance(waveform, torch.Tensor):
            raise ParameterError(f"{type(self).__name__}: expected a torch.Tensor, got {type(waveform).__name__}")
        if waveform.ndim != 2 or waveform.shape[-1] < 1:
            raise ParameterError(
                f"{type(self).__name__}: expected a (batch, num_samples) waveform, got shape {tuple(waveform.shape)}"
            )
        if waveform.is_complex():
            raise ParameterError(f"{type(self).__name__}: expected a real waveform, got dtype {waveform.dtype}")
        return waveform.to(self.window.dtype)

    def power_frames(self, waveform: torch.Tensor) -> torch.Tensor:
        """``|STFT|**2`` of a ``(batch, num_samples)`` waveform, time-major, only the bins the filter bank uses.

        Returns:
            ``(batch, n_frames, n_used_bins)`` tensor (bins outside every mel filter, e.g. above ``fmax``, are
            dropped; they contribute exact zeros to the mel bands).
        """
        c = self.config
        spec = torch.stft(
            waveform,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            win_length=c.n_fft,
            window=self.window,
            center=True,
            pad_mode="constant",
            normalized=False,
            onesided=True,
            return_complex=True,
        )  # (batch, n_freq, n_frames)
        parts = torch.view_as_real(spec.transpose(1, 2)[..., self._bins])  # (..., 2): real and imaginary parts
        return parts[..., 0].square() + parts[..., 1].square()

    def mel(self, frames: torch.Tensor, power: float | None = None) -> torch.Tensor:
        """Mel filter bank applied to ``|STFT| ** power``.

        Args:
            frames: ``(batch, n_frames, n_used_bins)`` output of `power_frames` (power 2).
            power: magnitude exponent; ``config.power`` by default.

        Returns:
            ``(batch, n_mels, n_frames)`` tensor.
        """
        power = self.config.power if power is None else power
        spec = frames if power == 2 else frames.pow(power / 2)
        return torch.matmul(self.mel_basis[:, self._bins], spec.transpose(1, 2))

    def to_db(self, mel_power: torch.Tensor) -> torch.Tensor:
        """``10 * log10(max(S, 1e-10))``, clipped at ``max - top_db`` per example if ``config.top_db`` is set."""
        db = 10.0 * torch.log10(torch.clamp(mel_power, min=AMIN))
        if self.config.top_db is not None:
            db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - self.config.top_db)
        return db

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrogram of a batch.

        Args:
            waveform: ``(batch, num_samples)`` at ``config.sample_rate``.

        Returns:
            ``(batch, n_mels, n_frames)`` in dB, ``n_frames = config.num_frames(num_samples)``.
        """
        return self.to_db(self.mel(self.power_frames(self.check_waveform(waveform))))
