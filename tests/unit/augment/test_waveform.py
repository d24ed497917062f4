"""Each waveform transform changes the clip in the expected, measurable way."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from birdcall.audio import load
from birdcall.augment import (
    AddBackgroundNoise,
    AddColorNoise,
    AddGaussianNoise,
    AddGaussianSNR,
    AddPinkNoise,
    Gain,
    PitchShift,
    RandomCrop,
    TimeShift,
)
from birdcall.errors import ParameterError
from birdcall.testing.signals import tone

SAMPLE_RATE = 16_000  # the rate of the conftest fixtures


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _snr_db(clean: np.ndarray, out: np.ndarray) -> float:
    return 20.0 * math.log10(_rms(clean) / _rms(out.astype(np.float64) - clean))


def _peak_hz(y: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1.0 / sample_rate)[np.argmax(spectrum)])


def test_gain_golden_vector():
    x = np.array([0.5, -0.25, 0.0, 0.125], dtype=np.float32)
    double = 20.0 * math.log10(2.0)
    out = Gain(min_gain_db=double, max_gain_db=double, p=1.0)(x, sample_rate=8000, rng=np.random.default_rng(0))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.array([1.0, -0.5, 0.0, 0.25], dtype=np.float32), rtol=1e-6)


def test_gain_is_one_constant_factor_in_range(clip, rng):
    for _ in range(5):
        out = Gain(min_gain_db=-6.0, max_gain_db=3.0, p=1.0)(clip, sample_rate=SAMPLE_RATE, rng=rng)
        ratio = out[np.abs(clip) > 1e-3] / clip[np.abs(clip) > 1e-3]
        assert np.ptp(ratio) < 1e-5 * ratio.mean()
        assert -6.0 - 1e-4 <= 20 * math.log10(ratio.mean()) <= 3.0 + 1e-4
    assert np.array_equal(
        Gain(min_gain_db=0.0, max_gain_db=0.0, p=1.0).apply(clip, sample_rate=SAMPLE_RATE, gain_db=0.0), clip
    )


def test_gaussian_noise_has_the_drawn_amplitude(rng):
    x = np.zeros(SAMPLE_RATE, dtype=np.float32)
    out = AddGaussianNoise(min_amplitude=0.05, max_amplitude=0.05, p=1.0)(x, sample_rate=SAMPLE_RATE, rng=rng)
    assert abs(out.std() - 0.05) < 0.002 and abs(out.mean()) < 0.002
    amplitudes = [
        AddGaussianNoise(min_amplitude=0.01, max_amplitude=0.02, p=1.0)(x, sample_rate=SAMPLE_RATE, rng=rng).std()
        for _ in range(20)
    ]
    assert 0.0095 < min(amplitudes) and max(amplitudes) < 0.0205 and np.ptp(amplitudes) > 0.003


def test_gaussian_snr_is_exact(clip, rng):
    out = AddGaussianSNR(min_snr_db=10.0, max_snr_db=10.0, p=1.0)(clip, sample_rate=SAMPLE_RATE, rng=rng)
    assert abs(_snr_db(clip, out) - 10.0) < 0.01
    snrs = [
        _snr_db(clip, AddGaussianSNR(min_snr_db=5.0, max_snr_db=15.0, p=1.0)(clip, sample_rate=SAMPLE_RATE, rng=rng))
        for _ in range(20)
    ]
    assert 4.99 < min(snrs) and max(snrs) < 15.01 and np.ptp(snrs) > 5.0
    silent = np.zeros(100, np.float32)
    assert np.array_equal(AddGaussianSNR(p=1.0)(silent, sample_rate=SAMPLE_RATE, rng=rng), silent)


def _slope_db_per_octave(noise: np.ndarray, sample_rate: int) -> float:
    freqs, psd = signal.welch(noise, fs=sample_rate, nperseg=4096)
    band = (freqs >= 50) & (freqs <= 6000)
    return float(np.polyfit(np.log2(freqs[band]), 10 * np.log10(psd[band]), 1)[0])


@pytest.mark.parametrize(
    ("transform", "slope"),
    [
        (AddPinkNoise(min_snr_db=0.0, max_snr_db=0.0, p=1.0), -3.01),
        (AddColorNoise(min_snr_db=0.0, max_snr_db=0.0, min_f_decay=-6.02, max_f_decay=-6.02, p=1.0), -6.02),
        (AddColorNoise(min_snr_db=0.0, max_snr_db=0.0, min_f_decay=0.0, max_f_decay=0.0, p=1.0), 0.0),
    ],
)
def test_color_noise_spectral_slope_and_snr(transform, slope):
    x = tone(frequency_hz=7000.0, duration=4.0, sample_rate=SAMPLE_RATE, amplitude=0.1)
    out = transform(x, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(4))
    added = out.astype(np.float64) - x
    assert abs(_snr_db(x, out)) < 0.01
    assert abs(_slope_db_per_octave(added, SAMPLE_RATE) - slope) < 0.3


def test_background_noise_adds_a_scaled_crop_of_a_file(clip, noise_dir):
    t = AddBackgroundNoise(noise_dir / "a.wav", min_snr_db=6.0, max_snr_db=12.0, p=1.0)
    noise_file = load(noise_dir / "a.wav", sample_rate=SAMPLE_RATE).astype(np.float64)
    starts = set()
    for seed in range(4):
        out = t(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(seed))
        added = out.astype(np.float64) - clip
        start = int(np.argmax(signal.correlate(noise_file, added, mode="valid", method="fft")))
        crop = noise_file[start : start + len(clip)]
        gain = _rms(added) / _rms(crop)
        np.testing.assert_allclose(added, gain * crop, atol=1e-6)
        assert 6.0 - 1e-3 < _snr_db(clip, out) < 12.0 + 1e-3
        starts.add(start)
    assert len(starts) == 4  # the crop position is random


def test_background_noise_any_format_rate_folder_and_short_files(clip, noise_dir):
    t = AddBackgroundNoise(noise_dir, min_snr_db=0.0, max_snr_db=0.0, p=1.0)
    assert [p.name for p in t.files] == ["a.wav", "b.flac"]  # folders are searched recursively, audio only
    # the 22.05 kHz FLAC is resampled to the clip's rate; a clip longer than the file gets the file repeated
    long_clip = tone(frequency_hz=500.0, duration=3.0, sample_rate=SAMPLE_RATE, amplitude=0.3)
    flac = load(noise_dir / "sub" / "b.flac", sample_rate=SAMPLE_RATE).astype(np.float64)
    out = t.apply(
        long_clip, sample_rate=SAMPLE_RATE, noise_path=str(noise_dir / "sub" / "b.flac"), start_fraction=0.0, snr_db=0.0
    )
    added = out.astype(np.float64) - long_clip
    expected = np.tile(flac, 2)[: len(long_clip)]
    np.testing.assert_allclose(added, expected * (_rms(long_clip) / _rms(expected)), atol=1e-6)
    picked = {
        t.randomize_parameters(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(s))["noise_path"]
        for s in range(20)
    }
    assert len(picked) == 2


def test_background_noise_cache_gives_the_same_result(clip, noise_dir):
    cached = AddBackgroundNoise([noise_dir], cache=True, p=1.0)
    plain = AddBackgroundNoise([noise_dir], cache=False, p=1.0)
    for seed in range(3):
        a = cached(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(seed))
        assert np.array_equal(a, plain(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(seed)))
    assert cached._cache and not plain._cache


def test_background_noise_needs_audio_files(tmp_path):
    with pytest.raises(ParameterError, match="no such file"):
        AddBackgroundNoise(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="no audio files"):
        AddBackgroundNoise(tmp_path / "empty")


@pytest.mark.parametrize("semitones", [3.0, -5.0])
def test_pitch_shift_moves_a_tone_by_the_semitone_ratio(semitones):
    x = tone(frequency_hz=1000.0, duration=1.0, sample_rate=SAMPLE_RATE, amplitude=0.5)
    out = PitchShift(min_semitones=semitones, max_semitones=semitones, p=1.0)(
        x, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0)
    )
    assert out.shape == x.shape and out.dtype == np.float32
    expected = 1000.0 * 2.0 ** (semitones / 12.0)
    assert abs(_peak_hz(out, SAMPLE_RATE) - expected) < 0.01 * expected


def test_time_shift_rolls_or_zero_fills_by_the_amount(clip):
    n = len(clip)
    roll = TimeShift(min_shift=0.25, max_shift=0.25, fade_duration=0.0, p=1.0)
    assert np.array_equal(roll(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0)), np.roll(clip, n // 4))
    back = TimeShift(min_shift=-0.1, max_shift=-0.1, shift_unit="seconds", rollover=False, fade_duration=0.0, p=1.0)
    out = back(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0))
    k = int(0.1 * SAMPLE_RATE)
    assert np.array_equal(out[:-k], clip[k:]) and not out[-k:].any()
    # a random amount: the output is the clip rolled by some k with k / n in the range
    rng = np.random.default_rng(2)
    for _ in range(5):
        out = TimeShift(min_shift=-0.3, max_shift=0.3, fade_duration=0.0, p=1.0)(clip, sample_rate=SAMPLE_RATE, rng=rng)
        k = int(np.argmax(np.fft.irfft(np.fft.rfft(out) * np.conj(np.fft.rfft(clip)), n)))
        assert np.array_equal(out, np.roll(clip, k)) and min(k, n - k) <= 0.3 * n + 1


def test_time_shift_fade_softens_the_seam(clip):
    out = TimeShift(min_shift=0.5, max_shift=0.5, fade_duration=0.01, p=1.0)(
        clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0)
    )
    seam = len(clip) // 2
    assert abs(out[seam]) < 1e-6 and np.array_equal(out[seam + 400 :], np.roll(clip, seam)[seam + 400 :])


def test_random_crop_is_a_window_of_the_clip(clip, rng):
    t = RandomCrop(duration=0.125)
    starts = set()
    for _ in range(5):
        out = t(clip, sample_rate=SAMPLE_RATE, rng=rng)
        assert out.shape == (2000,)
        start = int(np.flatnonzero(np.isclose(clip, out[0]) & np.isclose(np.roll(clip, -1), out[1]))[0])
        assert np.array_equal(out, clip[start : start + 2000])
        starts.add(start)
    assert len(starts) > 1
    padded = RandomCrop(duration=1.0)(clip, sample_rate=SAMPLE_RATE, rng=rng)
    assert np.array_equal(padded[: len(clip)], clip) and not padded[len(clip) :].any()


def test_random_crop_energy_mode_finds_the_call():
    x = np.zeros(SAMPLE_RATE, np.float32)
    x[12_000:12_800] = tone(frequency_hz=2000.0, duration=0.05, sample_rate=SAMPLE_RATE)
    out = RandomCrop(duration=0.1, mode="energy")(x, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0))
    assert np.sum(out**2) > 0.5 * np.sum(x**2)
