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


def float32_noise(model, windows: np.ndarray) -> dict[str, np.ndarray]:
    """How far the torch model's own float32 probabilities are from a float64 copy's, per window: ``{output: (batch, 1[, 1])}``
    (the maximum over each window's values, kept broadcastable to the output's shape).

    The floor of any export parity check: an exported float32 graph cannot be expected closer to torch than
    torch is to itself in exact-er arithmetic. It is ~1e-7 for most models and windows; it is larger where the
    front end's float32 dB of near-empty bins (a clean synthetic chirp) meets a model sensitive to it (the
    audio transformers: a few 1e-4).
    """
    import copy

    import torch

    wide = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        out = wide(torch.from_numpy(windows).double())
    out = out if isinstance(out, dict) else {"clipwise": out}
    narrow = torch_probabilities(model, windows)
    return {k: np.abs(narrow[k] - torch.sigmoid(v).numpy()).max(axis=tuple(range(1, v.ndim)), keepdims=True) for k, v in out.items()}


def parity_tolerance(model, windows: np.ndarray, atol: float, factor: float = 4.0) -> dict[str, np.ndarray]:
    """Per-window absolute tolerance ``max(atol, factor * float32_noise)``, broadcastable to each output: ``{output: (batch, 1[, 1])}``.

    ``factor``: an exported graph's own float32 error (its DFT front end, its kernels) measured at up to ~2x torch's
    on the chirp that needs it; two graphs compared pairwise may sit on opposite sides of torch, hence 4.
    """
    return {key: np.maximum(atol, factor * noise) for key, noise in float32_noise(model, windows).items()}
