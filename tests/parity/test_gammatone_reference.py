"""The gammatone filter bank against the ``gammatone`` package (detly/gammatone 1.0.3, a test-only dependency).

``gammatone.fftweight.fft_weights`` is the Python port of Dan Ellis' ``fft2gammatonemx``; its centre frequencies
come from ``gammatone.filters.erb_space`` (Slaney's ``ERBSpace``). Our float64 weights must equal its weights to
a relative error of 1e-9 (measured: 2e-13, float64 rounding of the same formulas).
"""

from __future__ import annotations

import numpy as np
import pytest

from birdcall.features import erb_centre_frequencies, gammatone_filterbank

fftweight = pytest.importorskip("gammatone.fftweight")
filters = pytest.importorskip("gammatone.filters")

GRID = [  # sample_rate, n_fft, n_filters, fmin, fmax
    (32_000, 2048, 64, 50.0, 14_000.0),  # GTCC defaults on the seed recipe
    (32_000, 1024, 128, 0.0, 16_000.0),
    (22_050, 512, 32, 100.0, 11_025.0),
    (16_000, 4096, 40, 300.0, 6000.0),
    (48_000, 256, 8, 1000.0, 20_000.0),
]


@pytest.mark.parametrize(("sample_rate", "n_fft", "n_filters", "fmin", "fmax"), GRID)
def test_weights_equal_fft_weights(sample_rate, n_fft, n_filters, fmin, fmax):
    expected, _ = fftweight.fft_weights(n_fft, sample_rate, n_filters, 1, fmin, fmax, n_fft // 2 + 1)
    actual = gammatone_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_filters=n_filters, fmin=fmin, fmax=fmax)
    assert actual.shape == expected.shape == (n_filters, n_fft // 2 + 1)
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=0)


@pytest.mark.parametrize(("sample_rate", "n_fft", "n_filters", "fmin", "fmax"), GRID)
def test_centre_frequencies_equal_erb_space(sample_rate, n_fft, n_filters, fmin, fmax):
    expected = filters.erb_space(fmin, fmax, n_filters)[::-1]
    np.testing.assert_allclose(erb_centre_frequencies(n_filters=n_filters, fmin=fmin, fmax=fmax), expected, rtol=1e-12, atol=1e-9)
