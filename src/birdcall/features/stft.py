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

    The work buffers are kept between calls (allocating ~10 MB of fresh pages per window cost as much as the
    FFT itself in a new process), so one instance must not be called from two threads at once.

    Args:
        config: the front end (sample rate, ``n_fft``, ``hop_length``, ``preemphasis``).
        bins: ``(lo, hi)``, the FFT bins to keep (`LogMel`'s ``_bins``; an exported model records them).

    Raises:
        ParameterError: bins outside ``0..n_fft // 2 + 1``.
    """

    BLOCK_FRAMES = 128  # frames per FFT call: their buffers (~1 MB each at n_fft 2048) stay in cache

    def __init__(self, config: FeatureConfig, bins: tuple[int, int]):
        lo, hi = (int(b) for b in bins)
        if not 0 <= lo < hi <= config.n_fft // 2 + 1:
            raise ParameterError(f"PowerSpectrum: bins must satisfy 0 <= lo < hi <= {config.n_fft // 2 + 1}, got {bins}")
        self.config, self.bins = config, (lo, hi)
        self.window = hann_window(config.n_fft).astype(np.float32)
        self._padded = np.zeros(0, dtype=np.float32)  # one centred, zero-padded window
        self._frames = np.empty((self.BLOCK_FRAMES, config.n_fft), dtype=np.float32)
        self._squares = np.empty((self.BLOCK_FRAMES, 2 * (hi - lo)), dtype=np.float32)

    def output_shape(self, batch: int, num_samples: int) -> tuple[int, int, int]:
        """Shape of the result for ``batch`` windows of ``num_samples`` samples."""
        return batch, self.config.num_frames(num_samples), self.bins[1] - self.bins[0]

    def __call__(self, windows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The power spectra of ``windows``, written into ``out`` if given (float32, `output_shape`)."""
        c, (lo, hi) = self.config, self.bins
        x = np.asarray(windows, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] < 2:
            raise ParameterError(f"PowerSpectrum: expected (batch, num_samples >= 2) waveforms, got shape {x.shape}")
        shape = self.output_shape(*x.shape)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        elif out.shape != shape or out.dtype != np.float32:
            raise ParameterError(f"PowerSpectrum: out must be float32 of shape {shape}, got {out.dtype} {out.shape}")
        n, half, n_frames = x.shape[1], c.n_fft // 2, shape[1]
        if len(self._padded) != n + c.n_fft:
            self._padded = np.zeros(n + c.n_fft, dtype=np.float32)
        signal = self._padded[half : half + n]
        frames = np.lib.stride_tricks.sliding_window_view(self._padded, c.n_fft)[:: c.hop_length][:n_frames]
        for i in range(x.shape[0]):
            if c.preemphasis > 0:
                # as Preemphasis / librosa.effects.preemphasis: y[n] - a y[n-1], and 3 y[0] - y[1] for the first sample
                np.multiply(x[i, :-1], -np.float32(c.preemphasis), out=signal[1:])
                signal[1:] += x[i, 1:]
                signal[0] = 3.0 * x[i, 0] - x[i, 1]
            else:
                signal[:] = x[i]
            for a in range(0, n_frames, self.BLOCK_FRAMES):
                b = min(n_frames, a + self.BLOCK_FRAMES)
                block, squares = self._frames[: b - a], self._squares[: b - a]
                np.multiply(frames[a:b], self.window, out=block)
                spectrum = scipy.fft.rfft(block, axis=-1, overwrite_x=True)[:, lo:hi]  # complex64
                np.square(spectrum.view(np.float32), out=squares)  # real, imaginary interleaved
                np.add(squares[:, 0::2], squares[:, 1::2], out=out[i, a:b])
        return out
