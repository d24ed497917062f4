"""AddGaussianSNR: add white Gaussian noise at a random signal-to-noise ratio."""

from __future__ import annotations

import numpy as np

from ..base import WaveformTransform, check_range, mix_at_snr, register_transform, seed_from

__all__ = ["AddGaussianSNR"]


@register_transform
class AddGaussianSNR(WaveformTransform):
    """Add white noise whose RMS is ``snr_db`` below the clip's RMS, ``snr_db`` uniform in the range.

    Same parameters as ``audiomentations.AddGaussianSNR``, written here because its ``apply`` draws the noise
    from the global ``np.random`` state. The noise is scaled to the exact RMS (audiomentations sets only its
    standard deviation), so the SNR is exact. A silent clip is returned unchanged.
    """

    def __init__(self, min_snr_db: float = 5.0, max_snr_db: float = 40.0, p: float = 0.5):
        super().__init__(p)
        self.min_snr_db, self.max_snr_db = check_range("AddGaussianSNR", "snr_db", min_snr_db, max_snr_db)

    def randomize_parameters(self, samples: np.ndarray, *, sample_rate: int, rng: np.random.Generator) -> dict:
        return {"snr_db": float(rng.uniform(self.min_snr_db, self.max_snr_db)), "noise_seed": seed_from(rng)}

    def apply(self, samples: np.ndarray, *, sample_rate: int, snr_db: float, noise_seed: int) -> np.ndarray:
        noise = np.random.default_rng(noise_seed).standard_normal(len(samples))
        return mix_at_snr(samples, noise, snr_db)
