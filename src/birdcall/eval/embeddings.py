"""Penultimate embeddings of a model (``forward_head(x, pre_logits=True)``) and their 2-D t-SNE map."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import is_int
from ..errors import ParameterError

__all__ = ["embed_windows", "subsample", "tsne_2d"]

MIN_TSNE_POINTS = 5
"""Fewer points than this give no t-SNE map."""


def embed_windows(model, windows: Any, *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and probabilities of raw waveform windows, in one forward pass of a birdcall model.

    The embedding is ``model.forward_head(features, pre_logits=True)``: the pooled features a CNN classifies,
    or, for SED and CRNN models, the frame features averaged over time.

    Args:
        model: a birdcall torch model (:func:`birdcall.models.load_model`), put in eval mode here.
        windows: ``(n, num_samples)`` float32 waveforms at the model's sample rate.
        batch_size: windows per forward pass.

    Returns:
        ``(embeddings (n, num_features), probabilities (n, num_classes))``, both float32.

    Raises:
        ParameterError: ``windows`` is not 2-D or ``batch_size`` < 1.
    """
    import torch

    from ..models import clip_logits

    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim != 2:
        raise ParameterError(f"embed_windows: windows must be (n, num_samples), got shape {windows.shape}")
    if not is_int(batch_size) or batch_size < 1:
        raise ParameterError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    model.eval()
    embeddings, probabilities = [], []
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            features = model.forward_features(torch.from_numpy(windows[start : start + batch_size]))
            embedding = model.forward_head(features, pre_logits=True)
            if embedding.ndim == 3:  # frame features (B, T', D) of SED / CRNN models
                embedding = embedding.mean(dim=1)
            embeddings.append(embedding.float().numpy())
            probabilities.append(torch.sigmoid(clip_logits(model.forward_head(features))).float().numpy())
    if not embeddings:
        return np.zeros((0, 0), dtype=np.float32), np.zeros((0, model.num_classes), dtype=np.float32)
    return np.concatenate(embeddings), np.concatenate(probabilities)


def subsample(num_items: int, max_items: int, *, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_items`` of ``num_items`` items, drawn without replacement (all when few)."""
    if num_items <= max_items:
        return np.arange(num_items, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(num_items, size=max_items, replace=False)).astype(np.int64)


def tsne_2d(embeddings: Any, *, seed: int = 0) -> np.ndarray:
    """2-D t-SNE map (scikit-learn) of embeddings, after PCA to at most 50 dimensions.

    Perplexity is ``min(30, (n - 1) / 3)`` so small sets work too.

    Args:
        embeddings: ``(n, d)`` array, ``n >= 5``.
        seed: random state of PCA and t-SNE.

    Returns:
        ``(n, 2)`` float64.

    Raises:
        ParameterError: fewer than 5 points, or non-finite values.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) < MIN_TSNE_POINTS:
        raise ParameterError(f"t-SNE needs an (n, d) array with n >= {MIN_TSNE_POINTS}, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ParameterError("t-SNE: embeddings contain NaN or infinity")
    components = min(50, x.shape[0], x.shape[1])
    if x.shape[1] > components:
        x = PCA(n_components=components, random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, (len(x) - 1) / 3.0))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x).astype(np.float64)
