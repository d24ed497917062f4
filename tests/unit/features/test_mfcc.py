"""DCT/MFCC and delta features: analytic cases, numpy vs torch, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from birdcall.errors import ParameterError
from birdcall.features import MFCC, Delta, dct_matrix, delta, delta_coefficients, mfcc


def test_dct_is_orthonormal():
    basis = dct_matrix(n_mfcc=16, n_mels=16)
    np.testing.assert_allclose(basis @ basis.T, np.eye(16), atol=1e-12)
    np.testing.assert_allclose(basis[0], np.full(16, 0.25))  # sqrt(1 / 16)


def test_mfcc_of_flat_spectrum_is_only_c0():
    S_db = np.full((128, 7), -30.0, dtype=np.float32)
    out = mfcc(S=S_db, n_mfcc=20)
    assert out.shape == (20, 7) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], -30.0 * np.sqrt(128), rtol=1e-6)
    np.testing.assert_allclose(out[1:], 0.0, atol=1e-4)


def test_mfcc_numpy_and_torch_agree(rng):
    S_db = (rng.standard_normal((3, 64, 30)) * 20 - 50).astype(np.float32)
    expected = mfcc(S=S_db, n_mfcc=13)
    assert expected.shape == (3, 13, 30)
    out = MFCC(13, 64)(torch.from_numpy(S_db)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-3)


def test_delta_coefficients_golden():
    np.testing.assert_allclose(delta_coefficients(width=5, order=1), [-0.2, -0.1, 0.0, 0.1, 0.2], atol=1e-12)
    # second derivative of a quadratic fit over 5 points: (2, -1, -2, -1, 2) / 7
    np.testing.assert_allclose(delta_coefficients(width=5, order=2), np.array([2, -1, -2, -1, 2]) / 7, atol=1e-12)


@pytest.mark.parametrize("width", [3, 9])
def test_delta_of_polynomials_is_exact_up_to_the_edges(width):
    t = np.arange(30, dtype=np.float64)
    np.testing.assert_allclose(delta(3.0 * t - 7.0, width=width, order=1), 3.0, atol=1e-9)
    np.testing.assert_allclose(delta(0.5 * t**2 + t, width=width, order=2), 1.0, atol=1e-9)
    np.testing.assert_allclose(delta(np.full(30, 4.0), width=width, order=1), 0.0, atol=1e-12)
    # order 1 of a quadratic: the centred fit is exact inside, the edges repeat the first/last full window
    d = delta(t**2, width=width, order=1)
    half = width // 2
    np.testing.assert_allclose(d[half:-half], 2 * t[half:-half], atol=1e-9)
    np.testing.assert_allclose(d[:half], 2 * t[half], atol=1e-9)
    np.testing.assert_allclose(d[-half:], 2 * t[-half - 1], atol=1e-9)


@pytest.mark.parametrize("order", [1, 2])
def test_delta_numpy_and_torch_agree(order, rng):
    x = rng.standard_normal((2, 5, 40)).astype(np.float32).cumsum(-1)
    expected = delta(x, width=9, order=order)
    assert expected.dtype == np.float32 and expected.shape == x.shape
    out = Delta(9, order)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_delta_errors():
    with pytest.raises(ParameterError):
        delta(np.zeros((3, 8)), width=9)  # fewer frames than the window
    for width, order in [(4, 1), (1, 1), (9, 0), (9, 3)]:
        with pytest.raises(ParameterError):
            delta(np.zeros((3, 20)), width=width, order=order)
    with pytest.raises(ParameterError):
        Delta(9, 1)(torch.zeros(1, 3, 8))
    with pytest.raises(ParameterError):
        Delta(9, 1)(torch.zeros(3, 20))
    with pytest.raises(ParameterError):
        dct_matrix(n_mfcc=129, n_mels=128)
    with pytest.raises(ParameterError):
        mfcc(S=np.zeros(5), n_mfcc=2)
