"""Pre-emphasis: golden values (librosa semantics, first sample included), numpy vs torch, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from birdcall.errors import ParameterError
from birdcall.features import Preemphasis, preemphasis


def test_golden():
    """Values from librosa.effects.preemphasis([0.5, 0.5, 0.2, 0.1], coef=0.97)."""
    y = np.array([0.5, 0.5, 0.2, 0.1], dtype=np.float32)
    out = preemphasis(y, coef=0.97)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.array([1.0, 0.015, -0.285, -0.094], dtype=np.float32), rtol=0, atol=1e-7)
    torch_out = Preemphasis(0.97)(torch.from_numpy(y))
    assert torch_out.dtype == torch.float32
    np.testing.assert_allclose(torch_out.numpy(), out, rtol=0, atol=1e-7)


def test_numpy_and_torch_agree_on_batches(rng):
    y = rng.standard_normal((2, 3, 500))
    np.testing.assert_allclose(Preemphasis(0.9)(torch.from_numpy(y)).numpy(), preemphasis(y, coef=0.9), atol=1e-12)
    assert preemphasis((y * 1000).astype(np.int16), coef=0.9).dtype == np.float32


def test_attenuates_low_and_boosts_high_frequencies():
    t = np.arange(32000) / 32000
    low = preemphasis(np.sin(2 * np.pi * 100 * t), coef=0.97)[100:]
    high = preemphasis(np.sin(2 * np.pi * 12000 * t), coef=0.97)[100:]
    assert np.abs(low).max() < 0.1 and np.abs(high).max() > 1.5


@pytest.mark.parametrize("coef", [-0.1, 1.0, 1.5])
def test_bad_coef_raises(coef):
    with pytest.raises(ParameterError):
        preemphasis(np.zeros(10), coef=coef)
    with pytest.raises(ParameterError):
        Preemphasis(coef)


def test_too_short_raises():
    with pytest.raises(ParameterError):
        preemphasis(np.zeros(1))
    with pytest.raises(ParameterError):
        Preemphasis()(torch.zeros(2, 1))
