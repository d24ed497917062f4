"""The power spectrogram of the front end on the host CPU, in numpy and scipy's pocketfft (no torch).

An exported model's graph contains its whole front end, so a deployment needs no Python feature code. Its STFT,
though, is written as matrix products (`birdcall.export.onnx`: neither ONNX Runtime nor OpenVINO has a fast FFT
kernel), which costs about as much as the efficientnet_b0 body behind it. birdcall's own inference therefore
computes that one step here, with a real FFT, and feeds the result to the rest of the graph (the graph cut at
its ``power_spectrum`` tensor; see :mod:`birdcall.export.host`). This is written by hand because the step has to
reproduce the graph's tensor exactly: `birdcall.features.LogMel.power_frames`, i.e. librosa's framing (centred,
zero padded by ``n_fft // 2``), a periodic Hann window, ``|rfft|**2`` of the bins the mel filter bank uses,
after the optional pre-emphasis of the config. ``numpy.fft`` is ~5x slower than ``scipy.fft`` on float32 frames
here (it has no single-precision kernel path as fast), hence scipy.

Per window, at n_fft 2048, hop 512 on this project's 2-core machine: ~1.9 ms (rfft 1.2 ms) against ~9 ms for
the graph's matrix-product STFT on OpenVINO (`benchmarks/RESULTS.md`).
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from ..errors import ParameterError
from .config import FeatureConfig

__all__ = ["PowerSpectrum", "hann_window"]


def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window (scipy ``get_window("hann", n_fft, fftbins=True)``), float64."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)


class PowerSpectrum:
    """``(batch, num_samples)`` waveforms -> ``(batch, n_frames, hi - lo)`` float32 power of FFT bins ``lo..hi-1``.

    The same values as ``LogMel(config).power_frames`` (torch, float32) to float32 rounding, pre-emphasis
    included when ``config.preemphasis > 0``.

    Args:
        config: the front end (sample rate, ``n_fft``, ``hop_length``, ``preemphasis``).
        bins: ``(lo, hi)``, the FFT bins to keep (`LogMel`'s ``_bins``; an exported model records them).

    Raises:
        ParameterError: bins outside ``0..n_fft // 2 + 1``.
    """

    def __init__(self, config: FeatureConfig, bins: tuple[int, int]):
        lo, hi = (int(b) for b in bins)
        if not 0 <= lo < hi <= config.n_fft // 2 + 1:
            raise ParameterError(f"PowerSpectrum: bins must satisfy 0 <= lo < hi <= {config.n_fft // 2 + 1}, got {bins}")
        self.config, self.bins = config, (lo, hi)
        self.window = hann_window(config.n_fft).astype(np.float32)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        c, (lo, hi) = self.config, self.bins
        x = np.asarray(windows, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] < 2:
            raise ParameterError(f"PowerSpectrum: expected (batch, num_samples >= 2) waveforms, got shape {x.shape}")
        if c.preemphasis > 0:
            # as Preemphasis / librosa.effects.preemphasis: y[n] - a y[n-1], and 3 y[0] - y[1] for the first sample
            first = 3.0 * x[:, :1] - x[:, 1:2]
            x = np.concatenate([first, x[:, 1:] - np.float32(c.preemphasis) * x[:, :-1]], axis=1)
        n_frames = c.num_frames(x.shape[1])
        half = c.n_fft // 2
        padded = np.pad(x, ((0, 0), (half, half)))
        out = np.empty((x.shape[0], n_frames, hi - lo), dtype=np.float32)
        frames = np.empty((n_frames, c.n_fft), dtype=np.float32)
        # One window at a time: its frames (2.5 MB at n_fft 2048) stay in cache through window, FFT and power,
        # which is ~1.5x faster than whole-batch array passes.
        for i in range(x.shape[0]):
            view = np.lib.stride_tricks.sliding_window_view(padded[i], c.n_fft)[:: c.hop_length][:n_frames]
            np.multiply(view, self.window, out=frames)
            spectrum = scipy.fft.rfft(frames, axis=-1, overwrite_x=True)[:, lo:hi]  # complex64
            squares = np.square(spectrum.view(np.float32))  # real, imaginary interleaved
            np.add(squares[:, 0::2], squares[:, 1::2], out=out[i])
        return out
