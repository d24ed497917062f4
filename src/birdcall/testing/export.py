"""Helpers shared by the export tests: seeded models, probe windows and a torch model's reference probabilities."""

from __future__ import annotations

import numpy as np

from ..features import FeatureConfig
from . import signals


def seeded_model(name: str, *, features: FeatureConfig, num_classes: int, seed: int = 0):
    """``create_model(name, ...)`` in eval mode with weights drawn from ``seed``; torch's global RNG is left as it was."""
    import torch

    from ..models import create_model

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return create_model(name, num_classes=num_classes, features=features).eval()


def probe_windows(features: FeatureConfig, batch: int, seed: int = 0) -> np.ndarray:
    """Silence, a tone, a chirp, a call in pink noise, white noise, repeated to ``batch``: ``(batch, clip_samples)``."""
    rng = np.random.default_rng(seed)
    sr, d = features.sample_rate, features.clip_duration
    pool = [
        np.zeros(features.clip_samples, np.float32),
        signals.tone(frequency_hz=2500.0, duration=d, sample_rate=sr),
        signals.chirp(start_hz=500.0, end_hz=7000.0, duration=d, sample_rate=sr),
        signals.call_in_noise(rng=rng, duration=d, call_start=0.2, call_duration=0.3, sample_rate=sr)[0],
        signals.white_noise(rng=rng, duration=d, sample_rate=sr),
    ]
    return np.stack([pool[i % len(pool)] for i in range(batch)])


def torch_probabilities(model, windows: np.ndarray) -> dict[str, np.ndarray]:
    """Sigmoid of every output of a birdcall torch model, keyed like the exported graph (``clipwise``, ``framewise``)."""
    import torch

    with torch.no_grad():
        out = model(torch.from_numpy(windows))
    if isinstance(out, dict):
        return {k: torch.sigmoid(v).numpy() for k, v in out.items()}
    return {"clipwise": torch.sigmoid(out).numpy()}
