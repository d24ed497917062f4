"""Penultimate embeddings and the t-SNE map."""

from __future__ import annotations

import numpy as np
import pytest

from birdcall.errors import ParameterError
from birdcall.eval.embeddings import embed_windows, subsample, tsne_2d
from birdcall.infer import TorchScorer
from birdcall.models import create_model

from .conftest import FEATURES


@pytest.mark.parametrize("name", ["test_cnn", "test_sed"])
def test_embed_windows_gives_pre_logits_and_the_scorers_probabilities(name, rng, torch_seed):
    import torch

    model = create_model(name, num_classes=3, features=FEATURES).eval()
    windows = rng.normal(0, 0.1, size=(5, FEATURES.clip_samples)).astype(np.float32)
    embeddings, probabilities = embed_windows(model, windows, batch_size=2)
    assert embeddings.shape == (5, model.num_features) and embeddings.dtype == np.float32
    np.testing.assert_allclose(probabilities, TorchScorer(model)(windows), atol=1e-6)
    with torch.inference_mode():
        pre = model.forward_head(model.forward_features(torch.from_numpy(windows)), pre_logits=True)
    np.testing.assert_allclose(embeddings, (pre.mean(dim=1) if pre.ndim == 3 else pre).numpy(), atol=1e-6)
    with pytest.raises(ParameterError, match="windows"):
        embed_windows(model, windows[0])


def test_tsne_2d_is_deterministic_and_separates_clusters(rng):
    centres = np.repeat(np.eye(3) * 20.0, 6, axis=0)
    x = np.hstack([centres, np.zeros((18, 57))]) + rng.normal(0, 0.5, size=(18, 60))
    points = tsne_2d(x, seed=0)
    assert points.shape == (18, 2)
    np.testing.assert_array_equal(points, tsne_2d(x, seed=0))
    groups = np.repeat([0, 1, 2], 6)
    spread = max(np.linalg.norm(points[groups == g] - points[groups == g].mean(0), axis=1).max() for g in range(3))
    gap = min(np.linalg.norm(points[groups == a].mean(0) - points[groups == b].mean(0)) for a, b in ((0, 1), (0, 2), (1, 2)))
    assert gap > spread
    with pytest.raises(ParameterError, match="n >= 5"):
        tsne_2d(x[:4])


def test_subsample():
    assert subsample(4, 10).tolist() == [0, 1, 2, 3]
    picked = subsample(100, 10, seed=1)
    assert len(picked) == 10 and len(set(picked.tolist())) == 10 and (np.diff(picked) > 0).all()
    np.testing.assert_array_equal(picked, subsample(100, 10, seed=1))
