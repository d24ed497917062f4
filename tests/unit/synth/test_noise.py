"""Background noise generators."""

from __future__ import annotations

import numpy as np
import pytest

from birdcall.errors import ParameterError
from birdcall.synth import (
    brown_noise,
    distant_chorus,
    pink_noise,
    rain_clicks,
    render_background,
    render_call,
    species_bank,
    wind_noise,
)
from birdcall.synth.noise import _BLOCK

SR = 32_000


def _octave_slope_db(y: np.ndarray, low: float, high: float) -> float:
    """Least-squares slope of the power spectrum in dB per octave between ``low`` and ``high`` Hz."""
    segments = y[: len(y) // 4096 * 4096].reshape(-1, 4096).astype(np.float64)
    power = np.mean(np.abs(np.fft.rfft(segments * np.hanning(4096), axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(4096, 1.0 / SR)
    keep = (freqs >= low) & (freqs <= high)
    return float(np.polyfit(np.log2(freqs[keep]), 10 * np.log10(power[keep]), 1)[0])


def test_pink_and_brown_spectral_slopes(rng):
    pink = pink_noise(SR * 8, rng=rng)
    brown = brown_noise(SR * 8, rng=rng, sample_rate=SR)
    assert pink.dtype == np.float32 and brown.dtype == np.float32
    assert _octave_slope_db(pink, 100, 10_000) == pytest.approx(-3.0, abs=0.5)
    assert _octave_slope_db(brown, 200, 5_000) == pytest.approx(-6.0, abs=0.7)
    assert np.sqrt(np.mean(pink.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=0.15)
    assert np.sqrt(np.mean(brown.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=0.3)


def test_wind_is_low_passed_and_gusty(rng):
    y = wind_noise(SR * 20, rng=rng, sample_rate=SR, cutoff_hz=300.0, gust_hz=0.3, depth=1.0).astype(np.float64)
    freqs = np.fft.rfftfreq(len(y), 1.0 / SR)
    power = np.abs(np.fft.rfft(y)) ** 2
    assert power[freqs < 600].sum() / power.sum() > 0.9
    level = np.sqrt(np.mean(y[: len(y) // SR * SR].reshape(-1, SR) ** 2, axis=1))  # 1-s RMS
    assert level.max() / level.min() > 2.0  # gusts: the level changes a lot over seconds
    steady = wind_noise(SR * 20, rng=rng, sample_rate=SR, cutoff_hz=300.0, depth=0.0).astype(np.float64)
    steady_level = np.sqrt(np.mean(steady.reshape(-1, SR) ** 2, axis=1))
    assert steady_level.max() / steady_level.min() < 1.5


def test_rain_clicks_are_sparse_short_events(rng):
    y = rain_clicks(SR * 10, rng=rng, sample_rate=SR, rate_hz=5.0)
    assert np.isfinite(y).all()
    active = np.abs(y) > 1e-3
    assert 0 < active.mean() < 0.05  # ~50 clicks of a few ms in 10 s
    assert np.count_nonzero(rain_clicks(SR, rng=rng, sample_rate=SR, rate_hz=0.0)) == 0


def _centroid(y: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
    return float(np.sum(np.fft.rfftfreq(len(y), 1.0 / SR) * power) / np.sum(power))


def test_distant_chorus_is_low_passed(rng):
    spec = next(spec for spec in species_bank(12, seed=0) if spec.family == "warble" and spec.low_hz > 4000)
    y = distant_chorus(SR * 30, rng=rng, species=[spec], sample_rate=SR, calls_per_minute=20.0)
    dry = np.concatenate([render_call(spec, rng=rng) for _ in range(10)])
    assert np.isfinite(y).all() and np.abs(y).max() > 0
    # the same calls, but their high frequencies are damped
    assert _centroid(y) < _centroid(dry) - 150.0


def test_render_background_unit_rms_deterministic_and_streamed(rng):
    n = _BLOCK + 12_345  # more than one block: filter state must carry over the block boundary
    bank = species_bank(3, seed=1)
    a = render_background(n, rng=np.random.default_rng(5), sample_rate=SR, chorus_species=bank)
    b = render_background(n, rng=np.random.default_rng(5), sample_rate=SR, chorus_species=bank)
    c = render_background(n, rng=np.random.default_rng(6), sample_rate=SR, chorus_species=bank)
    assert a.dtype == np.float32 and a.shape == (n,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.sqrt(np.mean(a.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
    # no step at the block boundary: the local jump is like any other sample-to-sample difference
    diffs = np.abs(np.diff(a.astype(np.float64)))
    assert diffs[_BLOCK - 1] < np.quantile(diffs, 0.9999)
    out = np.zeros(n, dtype=np.float32)
    assert render_background(n, rng=np.random.default_rng(5), sample_rate=SR, chorus_species=bank, out=out) is out
    np.testing.assert_array_equal(out, a)


def test_bad_parameters_raise(rng):
    with pytest.raises(ParameterError):
        pink_noise(0, rng=rng)
    with pytest.raises(ParameterError):
        brown_noise(100, rng=rng, sample_rate=100)
    with pytest.raises(ParameterError):
        wind_noise(100, rng=rng, cutoff_hz=20_000.0)
    with pytest.raises(ParameterError):
        rain_clicks(100, rng=rng, rate_hz=-1.0)
    with pytest.raises(ParameterError):
        distant_chorus(100, rng=rng, species=[])
    with pytest.raises(ParameterError):
        render_background(100, rng=rng, out=np.zeros(99, dtype=np.float32))
