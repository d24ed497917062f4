"""AddGaussianNoise: add white Gaussian noise of a random standard deviation (absolute amplitude)."""

from __future__ import annotations

import numpy as np

from ..base import WaveformTransform, check_range, register_transform, seed_from

__all__ = ["AddGaussianNoise"]


@register_transform
class AddGaussianNoise(WaveformTransform):
    """Add ``amplitude * N(0, 1)`` noise, ``amplitude`` uniform in ``[min_amplitude, max_amplitude]``.

    Same parameters as ``audiomentations.AddGaussianNoise``, written here because its ``apply`` draws the noise
    from the global ``np.random`` state; ours comes from a generator seeded by ``rng``.
    """

    def __init__(self, min_amplitude: float = 0.001, max_amplitude: float = 0.015, p: float = 0.5):
        super().__init__(p)
        self.min_amplitude, self.max_amplitude = check_range(
            "AddGaussianNoise", "amplitude", min_amplitude, max_amplitude, lowest=0.0
        )

    def randomize_parameters(self, samples: np.ndarray, *, sample_rate: int, rng: np.random.Generator) -> dict:
        return {"amplitude": float(rng.uniform(self.min_amplitude, self.max_amplitude)), "noise_seed": seed_from(rng)}

    def apply(self, samples: np.ndarray, *, sample_rate: int, amplitude: float, noise_seed: int) -> np.ndarray:
        noise = np.random.default_rng(noise_seed).standard_normal(len(samples))
        return (samples + amplitude * noise).astype(np.float32)
