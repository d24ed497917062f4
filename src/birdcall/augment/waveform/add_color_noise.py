"""AddColorNoise: add noise with a power spectrum sloping by ``f_decay`` dB per octave, at a random SNR."""

from __future__ import annotations

import math

import numpy as np

from ..base import WaveformTransform, check_range, mix_at_snr, register_transform, seed_from

__all__ = ["BROWN_F_DECAY", "PINK_F_DECAY", "AddColorNoise", "colored_noise"]

PINK_F_DECAY = -10.0 * math.log10(2.0)  # -3.01 dB/octave: power ~ 1/f
BROWN_F_DECAY = -20.0 * math.log10(2.0)  # -6.02 dB/octave: power ~ 1/f**2


def colored_noise(num_samples: int, *, f_decay: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean noise whose power spectral density changes by ``f_decay`` dB per octave, unit RMS.

    White Gaussian noise is shaped over its whole length in the frequency domain, so the slope holds down to
    the lowest frequency bin (audiomentations shapes with a 128-point FIR, which flattens the low end).

    Returns:
        ``(num_samples,)`` float64 (all zeros for ``num_samples < 2``).
    """
    white = rng.standard_normal(num_samples)
    spectrum = np.fft.rfft(white)
    k = np.arange(len(spectrum), dtype=np.float64)
    gain = np.zeros_like(k)
    # power ~ f**(f_decay / (10 log10 2)), so amplitude ~ f**(f_decay / (20 log10 2)); DC removed
    gain[1:] = k[1:] ** (f_decay / (20.0 * math.log10(2.0)))
    noise = np.fft.irfft(spectrum * gain, n=num_samples)
    level = np.sqrt(np.mean(noise**2)) if num_samples else 0.0
    return noise / level if level > 0 else np.zeros(num_samples)


@register_transform
class AddColorNoise(WaveformTransform):
    """Add colored noise (``f_decay`` dB/octave, uniform in its range) with RMS ``snr_db`` below the clip's.

    ``f_decay``: 0 white, -3.01 pink, -6.02 brown, +3.01 blue. Same parameters as
    ``audiomentations.AddColorNoise`` (without A-weighting), written here because its noise generator uses the
    global ``np.random`` state. A silent clip is returned unchanged.
    """

    def __init__(
        self,
        min_snr_db: float = 5.0,
        max_snr_db: float = 40.0,
        min_f_decay: float = PINK_F_DECAY,
        max_f_decay: float = PINK_F_DECAY,
        p: float = 0.5,
    ):
        super().__init__(p)
        name = type(self).__name__
        self.min_snr_db, self.max_snr_db = check_range(name, "snr_db", min_snr_db, max_snr_db)
        self.min_f_decay, self.max_f_decay = check_range(
            name, "f_decay", min_f_decay, max_f_decay, lowest=-24.0, highest=24.0
        )

    def randomize_parameters(self, samples: np.ndarray, *, sample_rate: int, rng: np.random.Generator) -> dict:
        return {
            "snr_db": float(rng.uniform(self.min_snr_db, self.max_snr_db)),
            "f_decay": float(rng.uniform(self.min_f_decay, self.max_f_decay)),
            "noise_seed": seed_from(rng),
        }

    def apply(
        self, samples: np.ndarray, *, sample_rate: int, snr_db: float, f_decay: float, noise_seed: int
    ) -> np.ndarray:
        noise = colored_noise(len(samples), f_decay=f_decay, rng=np.random.default_rng(noise_seed))
        return mix_at_snr(samples, noise, snr_db)
