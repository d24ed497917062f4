"""birdcall.testing.signals: seeded test signals."""

from __future__ import annotations

import numpy as np
import pytest

from birdcall.errors import ParameterError
from birdcall.synth import CALL_FAMILIES
from birdcall.testing.signals import call_in_noise, chirp, pink_noise, synthetic_call, tone, white_noise

SR = 32_000


def _peak_hz(y: np.ndarray, sample_rate: int = SR) -> float:
    power = np.abs(np.fft.rfft(y.astype(np.float64) * np.hanning(len(y)))) ** 2
    return float(np.fft.rfftfreq(len(y), 1.0 / sample_rate)[np.argmax(power)])


def test_tone_golden_values():
    y = tone(frequency_hz=1000.0, duration=0.001, sample_rate=8000, amplitude=0.5)
    expected = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(8) / 8000)
    assert y.dtype == np.float32 and y.shape == (8,)
    np.testing.assert_allclose(y, expected.astype(np.float32), atol=1e-7)
    np.testing.assert_allclose(y[:3], [0.0, 0.35355338, 0.5], atol=1e-7)


def test_tone_peaks_at_its_frequency():
    y = tone(frequency_hz=3210.0, duration=1.0, sample_rate=SR)
    assert _peak_hz(y) == pytest.approx(3210.0, abs=1.0)
    assert np.max(np.abs(y)) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("method", ["linear", "exponential"])
def test_chirp_instantaneous_frequency(method):
    y = chirp(start_hz=500.0, end_hz=8000.0, duration=2.0, sample_rate=SR, method=method).astype(np.float64)
    head, tail, middle = y[: SR // 20], y[-SR // 20 :], y[SR - SR // 40 : SR + SR // 40]
    assert _peak_hz(head) < 900.0
    assert _peak_hz(tail) > 7500.0
    expected_middle = 4250.0 if method == "linear" else 2000.0  # linear vs geometric mean of the end points
    assert _peak_hz(middle) == pytest.approx(expected_middle, rel=0.05)


def test_noises_are_seeded_with_exact_rms_and_expected_colour():
    a = white_noise(rng=np.random.default_rng(1), duration=2.0, rms=0.2)
    b = white_noise(rng=np.random.default_rng(1), duration=2.0, rms=0.2)
    c = white_noise(rng=np.random.default_rng(2), duration=2.0, rms=0.2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and len(a) == 2 * SR
    assert np.sqrt(np.mean(a.astype(np.float64) ** 2)) == pytest.approx(0.2, rel=1e-5)
    pink = pink_noise(rng=np.random.default_rng(1), duration=4.0, rms=0.05)
    assert np.sqrt(np.mean(pink.astype(np.float64) ** 2)) == pytest.approx(0.05, rel=1e-5)

    def band_power(y, low, high):
        power = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
        freqs = np.fft.rfftfreq(len(y), 1.0 / SR)
        return power[(freqs >= low) & (freqs < high)].sum()

    # equal power per octave for pink; white doubles per octave
    assert band_power(pink, 1000, 2000) / band_power(pink, 4000, 8000) == pytest.approx(1.0, rel=0.3)
    assert band_power(a, 4000, 8000) / band_power(a, 1000, 2000) == pytest.approx(4.0, rel=0.2)


@pytest.mark.parametrize("family", CALL_FAMILIES)
def test_synthetic_call_is_in_its_band(family, rng):
    y = synthetic_call(rng=rng, family=family, low_hz=2500.0, high_hz=6000.0, duration=0.6, amplitude=0.4)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    assert np.max(np.abs(y)) == pytest.approx(0.4, rel=1e-5)
    assert len(y) == pytest.approx(0.6 * SR, abs=2)
    assert 2500.0 * 0.97 <= _peak_hz(y) <= 6000.0 * 1.03


def test_call_in_noise_places_the_call_at_the_snr(rng):
    y, (start, end) = call_in_noise(
        rng=rng, duration=3.0, call_start=1.0, snr_db=6.0, call_duration=0.5, noise_rms=0.01
    )
    assert y.dtype == np.float32 and len(y) == 3 * SR
    assert start == pytest.approx(1.0) and end == pytest.approx(1.5, abs=1e-3)
    inside = y[int(start * SR) : int(end * SR)].astype(np.float64)
    outside = np.concatenate([y[: int(start * SR)], y[int(end * SR) :]]).astype(np.float64)
    noise = np.mean(outside**2)
    assert 10 * np.log10((np.mean(inside**2) - noise) / noise) == pytest.approx(6.0, abs=1.0)


def test_bad_parameters_raise(rng):
    with pytest.raises(ParameterError):
        tone(frequency_hz=20_000.0, sample_rate=SR)
    with pytest.raises(ParameterError):
        tone(frequency_hz=100.0, duration=0.0)
    with pytest.raises(ParameterError):
        chirp(start_hz=100.0, end_hz=200.0, method="cubic")
    with pytest.raises(ParameterError):
        white_noise(rng=rng, sample_rate=0)
    with pytest.raises(ParameterError):
        synthetic_call(rng=rng, family="hoot")
    with pytest.raises(ParameterError):
        synthetic_call(rng=rng, low_hz=5000.0, high_hz=4000.0)
    with pytest.raises(ParameterError):
        call_in_noise(rng=rng, duration=1.0, call_start=0.8, call_duration=0.5)
