"""Fixtures for the librosa parity tests: synthetic test signals and a few real NIPS4B clips."""

from __future__ import annotations

import numpy as np
import pytest


def _synthetic(sample_rate: int, duration: float, seed: int) -> dict[str, np.ndarray]:
    """Float32 test signals: a log chirp across the band, a tone over faint noise, a gated tone, white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    f0, f1 = 100.0, 0.45 * sample_rate
    phase = 2 * np.pi * f0 * duration / np.log(f1 / f0) * (np.exp(t / duration * np.log(f1 / f0)) - 1)
    tone = np.sin(2 * np.pi * 1234.5 * t)
    signals = {
        "chirp": 0.5 * np.sin(phase),
        "tone_in_noise": 0.3 * tone + 1e-3 * rng.standard_normal(t.size),
        "gated_tone": 0.8 * tone * ((t > 0.3 * duration) & (t < 0.6 * duration)) + 1e-4 * rng.standard_normal(t.size),
        "white_noise": 0.05 * rng.standard_normal(t.size),
    }
    return {name: y.astype(np.float32) for name, y in signals.items()}


@pytest.fixture(scope="session")
def synthetic():
    """``synthetic(sample_rate, duration=1.5)`` -> dict of named float32 signals (seeded)."""
    return lambda sample_rate, duration=1.5: _synthetic(sample_rate, duration, seed=sample_rate)


@pytest.fixture(scope="session")
def nips4b_clip(nips4b_dir):
    """``nips4b_clip(relative_path, sample_rate)`` -> float32 waveform via `birdcall.audio.io.load`."""
    from birdcall.audio.io import load

    cache: dict[tuple[str, int], np.ndarray] = {}

    def get(relative: str, sample_rate: int) -> np.ndarray:
        key = (relative, sample_rate)
        if key not in cache:
            cache[key] = load(nips4b_dir / relative, sample_rate=sample_rate)
        return cache[key]

    return get
