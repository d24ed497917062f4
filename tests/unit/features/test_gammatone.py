"""Gammatone filter bank and GTCC channels: the ERB formula, filter shapes, a pure tone's band, the config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from birdcall.config import from_dict, from_yaml, to_dict, to_yaml
from birdcall.errors import ParameterError
from birdcall.features import (
    FeatureConfig,
    FeatureExtractor,
    Gammatone,
    dct_matrix,
    erb_bandwidth,
    erb_centre_frequencies,
    erb_number,
    extract_features,
    gammatone_filterbank,
)
from birdcall.testing import signals

SAMPLE_RATE = 32000


def test_erb_is_glasberg_and_moore():
    f = np.array([0.0, 1000.0, 4000.0])
    np.testing.assert_allclose(erb_bandwidth(f), 24.7 * (4.37 * f / 1000 + 1), rtol=1e-6)  # 9.26449 = 1000/(4.37*24.7)
    # the ERB-number is the integral of 1/ERB from 0 Hz (trapezoid on a fine grid)
    grid = np.linspace(0.0, 4000.0, 400_001)
    integrand = 1.0 / erb_bandwidth(grid)
    assert erb_number(4000.0) == pytest.approx(np.sum((integrand[1:] + integrand[:-1]) / 2) * (grid[1] - grid[0]), rel=1e-9)


@pytest.mark.parametrize(("n_filters", "fmin", "fmax"), [(64, 50.0, 14_000.0), (32, 0.0, 8000.0), (1, 100.0, 200.0)])
def test_centre_frequencies_are_equally_spaced_in_erb_number(n_filters, fmin, fmax):
    cf = erb_centre_frequencies(n_filters=n_filters, fmin=fmin, fmax=fmax)
    assert cf.shape == (n_filters,) and cf[0] == pytest.approx(fmin, abs=1e-9)
    # Slaney's ERBSpace: n_filters equal steps from fmin, the last one ending at fmax
    steps = np.diff(erb_number(np.append(cf, fmax)))
    np.testing.assert_allclose(steps, (erb_number(fmax) - erb_number(fmin)) / n_filters, rtol=1e-9)


def test_each_filter_peaks_at_its_centre_with_unit_gain_and_an_erb_wide_power_response():
    n_fft = 65536  # 0.49 Hz bins
    cf = erb_centre_frequencies(n_filters=32, fmin=100.0, fmax=14_000.0)
    weights = gammatone_filterbank(sample_rate=SAMPLE_RATE, n_fft=n_fft, n_filters=32, fmin=100.0, fmax=14_000.0)
    assert weights.shape == (32, n_fft // 2 + 1) and weights.dtype == np.float64 and weights.min() > 0
    bin_hz = SAMPLE_RATE / n_fft
    # the digital filters' peaks drift by up to 1e-4 of cf near Nyquist (1.2 Hz at 12.4 kHz)
    np.testing.assert_allclose(weights.argmax(axis=1) * bin_hz, cf, rtol=2e-4, atol=bin_hz)
    np.testing.assert_allclose(weights[np.arange(32), np.round(cf / bin_hz).astype(int)], 1.0, atol=1e-3)
    # b = 1.019 ERB makes the 4th-order filter's equivalent rectangular (power) bandwidth ERB(cf): measured within
    # 0.3 % for centres away from 0 Hz and Nyquist (the digital filter folds there)
    erb = (weights**2).sum(axis=1) * bin_hz
    np.testing.assert_allclose(erb[:-2], erb_bandwidth(cf[:-2]), rtol=5e-3)


def test_bad_filter_bank_arguments_raise():
    with pytest.raises(ParameterError, match="n_filters"):
        erb_centre_frequencies(n_filters=0, fmin=0.0, fmax=100.0)
    with pytest.raises(ParameterError, match="fmin"):
        gammatone_filterbank(sample_rate=16000, n_fft=512, n_filters=8, fmin=100.0, fmax=9000.0)
    with pytest.raises(ParameterError, match="every FFT bin"):
        Gammatone(sample_rate=16000, n_fft=512, n_filters=8, fmin=100.0, fmax=8000.0, bins=slice(2, 257))


@pytest.mark.parametrize("frequency_hz", [440.0, 2500.0, 7000.0])
def test_gtcc_of_a_pure_tone_peaks_in_the_tone_band(frequency_hz):
    # all n_gammatone coefficients, unnormalised: the inverse DCT gives back the dB gammatone spectrogram
    config = FeatureConfig(channels=("gtcc",), n_gammatone=48, n_gtcc=48, normalize="none", fmin=50.0, fmax=14_000.0)
    y = signals.tone(frequency_hz=frequency_hz, duration=0.5, sample_rate=SAMPLE_RATE)[None]
    gtcc = FeatureExtractor(config)(torch.from_numpy(y)).numpy()[0, 0]
    assert np.all(gtcc[48:] == 0.0)  # zero-padded to n_mels rows
    spectrum = dct_matrix(n_mfcc=48, n_mels=48).T @ gtcc[:48].astype(np.float64)
    cf = erb_centre_frequencies(n_filters=48, fmin=50.0, fmax=14_000.0)
    expected = np.argmin(np.abs(erb_number(cf) - erb_number(frequency_hz)))
    middle = spectrum[:, 2:-2]  # frames away from the zero-padded ends
    assert np.all(middle.argmax(axis=0) == expected)
    # and a 20-coefficient GTCC (the default) still puts the smoothed peak within one band of it
    truncated = FeatureExtractor(FeatureConfig(channels=("gtcc",), n_gammatone=48, normalize="none"))(torch.from_numpy(y)).numpy()[0, 0, :20]
    smooth = dct_matrix(n_mfcc=20, n_mels=48).T @ truncated.astype(np.float64)
    assert np.all(np.abs(smooth[:, 2:-2].argmax(axis=0) - expected) <= 1)


def test_gtcc_channels_match_the_numpy_reference_and_stack_with_logmel(rng):
    config = FeatureConfig(channels=("logmel", "gtcc", "gtcc_delta", "gtcc_delta2"), n_gtcc=13, preemphasis=0.97, top_db=80.0)
    y = np.stack([signals.tone(frequency_hz=3000.0, sample_rate=SAMPLE_RATE), 0.05 * rng.standard_normal(SAMPLE_RATE)]).astype(np.float32)
    module = FeatureExtractor(config)
    out = module(torch.from_numpy(y)).numpy()
    assert out.shape == (2, 4, 128, 63) and out.dtype == np.float32
    assert np.all(out[:, 1:, 13:] == 0.0)
    np.testing.assert_allclose(out[:, 1:, :13].std(axis=(-2, -1)), 1.0, rtol=1e-3)  # normalised over its own rows
    expected = extract_features(y=y, config=config)
    np.testing.assert_allclose(out, expected, rtol=0, atol=2e-4 * max(1.0, np.abs(expected).max()))  # as for MFCC
    buffers = dict(module.named_buffers())
    assert buffers["gammatone.weights"].shape == (64, 1025) and buffers["gtcc.dct"].shape == (13, 64)
    assert module.logmel._bins == slice(0, 1025)  # every bin: gammatone responses never reach zero


def test_without_gtcc_channels_nothing_changes():
    module = FeatureExtractor(FeatureConfig(channels=("logmel", "mfcc")))
    assert module.gammatone is None and module.gtcc is None
    assert module.logmel._bins.stop < 1025  # bins above fmax are still skipped


def test_gtcc_config_round_trips(tmp_path):
    config = FeatureConfig(channels=("logmel", "gtcc_delta"), n_gammatone=40, gammatone_fmin=200.0, gammatone_fmax=12_000.0, n_gtcc=16)
    assert from_dict(FeatureConfig, to_dict(config)) == config
    path = tmp_path / "features.yaml"
    to_yaml(config, path)
    assert from_yaml(FeatureConfig, path) == config
    assert config.gammatone_band == (200.0, 12_000.0)
    assert FeatureConfig().gammatone_band == (50.0, 14_000.0)  # null: the mel band


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"n_gammatone": 0}, "n_gammatone"),
        ({"n_gtcc": 0}, "n_gtcc"),
        ({"gammatone_fmin": -1.0}, "gammatone_fmin"),
        ({"gammatone_fmax": 20_000.0}, "gammatone_fmax"),
        ({"gammatone_fmin": 5000.0, "gammatone_fmax": 4000.0}, "gammatone_fmin"),
        ({"gammatone_fmin": 15_000.0}, "gammatone_fmin"),  # above the mel fmax it inherits
        ({"channels": ("gtcc",), "n_gammatone": 16, "n_gtcc": 20}, "n_gtcc"),
        ({"channels": ("gtcc",), "n_mels": 16, "n_gtcc": 20}, "n_gtcc"),
        ({"n_gammatone": 2.5}, "n_gammatone"),
    ],
)
def test_bad_gtcc_values_give_one_line_errors_naming_the_key(overrides, key):
    with pytest.raises(ParameterError, match=rf"FeatureConfig\.{key}") as info:
        FeatureConfig(**overrides)
    assert "\n" not in str(info.value)
