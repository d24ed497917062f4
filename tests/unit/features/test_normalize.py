"""Per-example, per-channel normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from birdcall.errors import ParameterError
from birdcall.features import Normalize, normalize


@pytest.fixture
def maps(rng) -> np.ndarray:
    """(batch 3, channels 2, rows 16, frames 20) with very different offsets and scales per map."""
    scale = 10.0 ** rng.uniform(0, 1.5, size=(3, 2, 1, 1))  # std 1 to 30, like dB maps
    return (rng.standard_normal((3, 2, 16, 20)) * scale + rng.uniform(-80, 20, size=(3, 2, 1, 1))).astype(np.float32)


def test_standardize_gives_mean_0_std_1_per_map(maps):
    for out in (normalize(maps, mode="standardize"), Normalize("standardize")(torch.from_numpy(maps)).numpy()):
        assert out.dtype == np.float32 and out.shape == maps.shape
        np.testing.assert_allclose(out.mean(axis=(-2, -1), dtype=np.float64), 0.0, atol=1e-5)
        np.testing.assert_allclose(out.std(axis=(-2, -1), dtype=np.float64), 1.0, rtol=1e-5)


def test_minmax_gives_range_0_1_per_map(maps):
    for out in (normalize(maps, mode="minmax"), Normalize("minmax")(torch.from_numpy(maps)).numpy()):
        np.testing.assert_allclose(out.min(axis=(-2, -1)), 0.0, atol=1e-6)
        np.testing.assert_allclose(out.max(axis=(-2, -1)), 1.0, rtol=1e-4)
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_none_is_identity(maps):
    np.testing.assert_array_equal(normalize(maps, mode="none"), maps)
    np.testing.assert_array_equal(Normalize("none")(torch.from_numpy(maps)).numpy(), maps)


@pytest.mark.parametrize("mode", ["standardize", "minmax"])
def test_constant_map_becomes_zeros(mode):
    x = np.full((2, 4, 5), -100.0, dtype=np.float32)
    np.testing.assert_array_equal(normalize(x, mode=mode), 0.0)
    np.testing.assert_array_equal(Normalize(mode)(torch.from_numpy(x)).numpy(), 0.0)


@pytest.mark.parametrize("mode", ["standardize", "minmax"])
def test_numpy_and_torch_agree(mode, maps):
    np.testing.assert_allclose(Normalize(mode)(torch.from_numpy(maps)).numpy(), normalize(maps, mode=mode), atol=1e-4)


def test_bad_arguments_raise():
    with pytest.raises(ParameterError):
        normalize(np.zeros((2, 2)), mode="zscore")
    with pytest.raises(ParameterError):
        normalize(np.zeros((2, 2)), eps=0.0)
    with pytest.raises(ParameterError):
        normalize(np.zeros(4))
    with pytest.raises(ParameterError):
        Normalize("l2")
    with pytest.raises(ParameterError):
        Normalize()(torch.zeros(3))
