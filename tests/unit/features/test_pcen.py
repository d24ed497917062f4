"""PCEN: smoothing coefficient, steady state, exact torch scan vs the numpy recursion, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from birdcall.errors import ParameterError
from birdcall.features import PCEN, pcen, pcen_smoothing_coefficient


def test_smoothing_coefficient_matches_librosa_formula():
    """b = (sqrt(1 + 4 T^2) - 1) / (2 T^2), i.e. the positive root of T^2 b^2 + b - 1 = 0, T in frames."""
    b = pcen_smoothing_coefficient(sample_rate=32000, hop_length=512, time_constant=0.4)
    frames = 0.4 * 32000 / 512
    assert frames**2 * b**2 + b == pytest.approx(1.0, rel=1e-12)
    assert 0.039 < b < 0.04


def test_constant_input_reaches_the_analytic_steady_state():
    c, gain, bias, power, eps = 1e4, 0.98, 2.0, 0.5, 1e-6
    S = np.full((2, 3, 1000), c)
    out = pcen(S, sample_rate=32000, hop_length=512)
    expected = bias**power * ((c / (eps + c) ** gain / bias + 1) ** power - 1)
    np.testing.assert_allclose(out[..., -1], expected, rtol=1e-9)
    torch_out = PCEN(sample_rate=32000, hop_length=512, dtype=torch.float64)(torch.from_numpy(S)).numpy()
    np.testing.assert_allclose(torch_out[..., -1], expected, rtol=1e-9)


def test_first_frame_starts_from_state_one():
    b = 0.25
    S = np.array([[8.0, 8.0]])
    out = pcen(S, sample_rate=32000, hop_length=512, b=b, gain=1.0, bias=0.0, power=1.0, eps=1e-12)
    m0 = (1 - b) * 1.0 + b * 8.0  # M[-1] = 1
    m1 = (1 - b) * m0 + b * 8.0
    np.testing.assert_allclose(out[0], [8.0 / m0, 8.0 / m1], rtol=1e-9)


def test_b_zero_keeps_the_start_state():
    S = np.abs(np.random.default_rng(0).standard_normal((4, 50))) * 100
    out = PCEN(sample_rate=32000, hop_length=512, b=0.0, dtype=torch.float64).smooth(torch.from_numpy(S))
    np.testing.assert_allclose(out.numpy(), 1.0)


@pytest.mark.parametrize("n_frames", [1, 5, 63, 64, 65, 313, 1000])
def test_torch_scan_equals_numpy_recursion(n_frames, rng):
    S = np.abs(rng.standard_normal((2, 16, n_frames))) * 10.0 ** rng.uniform(0, 8, size=(2, 16, 1))
    expected = pcen(S, sample_rate=32000, hop_length=512)
    out64 = PCEN(sample_rate=32000, hop_length=512, dtype=torch.float64)(torch.from_numpy(S)).numpy()
    np.testing.assert_allclose(out64, expected, rtol=1e-10, atol=1e-12)
    out32 = PCEN(sample_rate=32000, hop_length=512)(torch.from_numpy(S.astype(np.float32))).numpy()
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, expected, rtol=1e-4, atol=1e-5)


def test_dtype_is_kept(rng):
    S = np.abs(rng.standard_normal((4, 20))).astype(np.float32)
    assert pcen(S, sample_rate=32000, hop_length=512).dtype == np.float32
    assert pcen(S.astype(np.float64), sample_rate=32000, hop_length=512).dtype == np.float64


@pytest.mark.parametrize(
    "kwargs",
    [dict(eps=0.0), dict(gain=-1.0), dict(bias=-1.0), dict(power=-0.5), dict(b=1.5), dict(time_constant=0.0)],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ParameterError):
        pcen(np.ones((2, 5)), sample_rate=32000, hop_length=512, **kwargs)
    with pytest.raises(ParameterError):
        PCEN(sample_rate=32000, hop_length=512, **kwargs)


def test_bad_inputs_raise():
    with pytest.raises(ParameterError):
        pcen(np.ones((2, 5), dtype=np.complex64), sample_rate=32000, hop_length=512)
    with pytest.raises(ParameterError):
        pcen(np.ones((2, 0)), sample_rate=32000, hop_length=512)
    with pytest.raises(ParameterError):
        PCEN(sample_rate=32000, hop_length=512)(torch.ones(2, 0))
    with pytest.raises(ParameterError):
        pcen_smoothing_coefficient(sample_rate=32000, hop_length=0)
    assert not math.isnan(pcen_smoothing_coefficient(sample_rate=1, hop_length=10**6))
