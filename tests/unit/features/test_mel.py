"""Mel filter bank, numpy `log_mel` and torch `LogMel`: analytic properties, shapes, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from birdcall.errors import ParameterError
from birdcall.features import (
    FeatureConfig,
    LogMel,
    hz_to_mel,
    log_mel,
    mel_filterbank,
    mel_frequencies,
    mel_spectrogram,
    mel_to_hz,
    power_to_db,
    stft_power,
)

RECIPE = FeatureConfig()


def _tone(freq: float, *, sample_rate: int = 32000, duration: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(duration * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_filterbank_golden():
    """Tiny bank, values from librosa.filters.mel(sr=8000, n_fft=16, n_mels=3, fmin=0, fmax=4000)."""
    expected = np.array(
        [
            [0.0, 0.0014287782, 0.0005348663, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0008510093, 0.0008647141, 0.0002341109, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0002198463, 0.0005793526, 0.0005893094, 0.0003928729, 0.0001964365, 0.0],
        ]
    )
    weights = mel_filterbank(sample_rate=8000, n_fft=16, n_mels=3, fmin=0.0, fmax=4000.0)
    assert weights.dtype == np.float64 and weights.shape == (3, 9)
    np.testing.assert_allclose(weights, expected, rtol=0, atol=1e-10)


def test_filterbank_triangles_have_slaney_area():
    """Each triangle rises from edge i to a peak at edge i+1 and falls to edge i+2; area per Hz is 1."""
    c = RECIPE
    weights = mel_filterbank(sample_rate=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax)
    edges = mel_frequencies(n_mels=c.n_mels + 2, fmin=c.fmin, fmax=c.fmax)
    freqs = np.fft.rfftfreq(c.n_fft, 1 / c.sample_rate)
    for m in (10, 60, 127):
        support = freqs[weights[m] > 0]
        assert support.min() > edges[m] and support.max() < edges[m + 2]
        peak_height = 2.0 / (edges[m + 2] - edges[m])
        assert weights[m].max() <= peak_height * (1 + 1e-12)
        # sum of weights * bin spacing approximates the triangle's area: height * width / 2 = 1
        assert weights[m].sum() * (freqs[1] - freqs[0]) == pytest.approx(1.0, rel=0.05 if m > 40 else 0.5)


def test_mel_scale_is_linear_below_1khz_and_invertible():
    np.testing.assert_allclose(hz_to_mel([0.0, 200.0, 1000.0]), [0.0, 3.0, 15.0])
    hz = np.linspace(0, 16000, 101)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-12, atol=1e-9)
    assert np.all(np.diff(mel_frequencies(n_mels=50, fmin=20.0, fmax=16000.0)) > 0)


@pytest.mark.parametrize("band", [3, 20, 50, 90, 126])
def test_tone_at_band_centre_peaks_in_that_band(band):
    c = RECIPE
    centre = mel_frequencies(n_mels=c.n_mels + 2, fmin=c.fmin, fmax=c.fmax)[band + 1]
    y = _tone(centre)
    numpy_db = log_mel(y=y, config=c)
    torch_db = LogMel(c)(torch.from_numpy(y)[None])[0].numpy()
    for db in (numpy_db, torch_db):
        inner = db[:, 4:-4]  # frames away from the zero padding at both ends
        assert np.all(inner.argmax(axis=0) == band)


@pytest.mark.parametrize("freq", [180.0, 1234.5, 5000.0, 11111.0])
def test_tone_peaks_in_a_band_that_covers_it(freq):
    c = RECIPE
    edges = mel_frequencies(n_mels=c.n_mels + 2, fmin=c.fmin, fmax=c.fmax)
    db = log_mel(y=_tone(freq), config=c)
    peak = int(np.median(db[:, 4:-4].argmax(axis=0)))
    assert edges[peak] < freq < edges[peak + 2]
    assert abs(edges[peak + 1] - freq) <= max(edges[peak + 1] - edges[peak], edges[peak + 2] - edges[peak + 1])


def test_tone_power_matches_analytic_level():
    """A tone at an FFT bin centre: |X|^2 at that bin is (A * n_fft / 4)^2 for the periodic Hann window."""
    c = RECIPE
    freq = 100 * c.sample_rate / c.n_fft
    power = stft_power(y=_tone(freq, amplitude=0.5).astype(np.float64), n_fft=c.n_fft, hop_length=c.hop_length)
    np.testing.assert_allclose(power[100, 4:-4], (0.5 * c.n_fft / 4) ** 2, rtol=1e-6)


def test_silence_is_minus_100_db():
    out = log_mel(y=np.zeros(4000, dtype=np.float32), config=RECIPE)
    assert np.all(out == -100.0)
    assert np.all(LogMel()(torch.zeros(1, 4000)).numpy() == -100.0)


@settings(max_examples=40, deadline=None, database=None)  # no .hypothesis/ folder in the cwd
@given(
    num_samples=st.integers(min_value=1, max_value=6000),
    hop_length=st.integers(min_value=1, max_value=700),
    n_fft=st.sampled_from([256, 400, 512]),
)
def test_frame_count_follows_from_num_samples_and_hop(num_samples, hop_length, n_fft):
    config = FeatureConfig(sample_rate=8000, n_fft=n_fft, hop_length=hop_length, n_mels=8, fmin=0.0, fmax=4000.0)
    expected = 1 + num_samples // hop_length
    assert config.num_frames(num_samples) == expected
    y = np.linspace(-0.5, 0.5, num_samples, dtype=np.float32)
    assert log_mel(y=y, config=config).shape == (8, expected)
    assert LogMel(config)(torch.from_numpy(y)[None]).shape == (1, 8, expected)


def test_dtypes_and_batch_shapes(rng):
    y = rng.standard_normal((2, 3, 8000)).astype(np.float32) * 0.1
    out = log_mel(y=y, config=RECIPE)
    assert out.dtype == np.float32 and out.shape == (2, 3, 128, 16)
    np.testing.assert_array_equal(out[1, 2], log_mel(y=y[1, 2], config=RECIPE))
    assert mel_spectrogram(y=y[0, 0], config=RECIPE).dtype == np.float32
    assert log_mel(y=(y[0, 0] * 32767).astype(np.int16), config=RECIPE).dtype == np.float32
    module = LogMel(RECIPE)
    assert module(torch.from_numpy(y[0])).dtype == torch.float32
    assert module(torch.from_numpy(y[0]).double()).dtype == torch.float32  # cast to the buffers' dtype
    assert LogMel(RECIPE, dtype=torch.float64)(torch.from_numpy(y[0])).dtype == torch.float64


def test_numpy_and_torch_agree(rng):
    y = (rng.standard_normal((4, 16000)) * np.array([[1.0], [0.1], [0.01], [1e-3]])).astype(np.float32)
    expected = log_mel(y=y, config=RECIPE)
    out = LogMel(RECIPE)(torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-3)


def test_batch_items_are_independent(rng):
    y = torch.from_numpy(rng.standard_normal((3, 8000)).astype(np.float32))
    module = LogMel(RECIPE)
    together = module(y)
    for i in range(3):
        torch.testing.assert_close(together[i : i + 1], module(y[i : i + 1]), rtol=0, atol=1e-4)


def test_power_to_db_floor_and_top_db():
    S = np.array([[[1.0, 1e-12, 1e-3]], [[100.0, 1.0, 0.0]]])
    np.testing.assert_allclose(power_to_db(S)[0, 0], [0.0, -100.0, -30.0])
    clipped = power_to_db(S, top_db=25.0)
    np.testing.assert_allclose(clipped[0, 0], [0.0, -25.0, -25.0])  # per spectrogram: max 0 dB
    np.testing.assert_allclose(clipped[1, 0], [20.0, 0.0, -5.0])  # max 20 dB
    assert power_to_db(S.astype(np.float32)).dtype == np.float32


def test_module_buffers_follow_the_module():
    module = LogMel(RECIPE)
    assert set(dict(module.named_buffers())) == {"window", "mel_basis"}
    assert module.mel_basis.shape == (128, 1025) and module.window.shape == (2048,)
    assert set(module.state_dict()) == {"window", "mel_basis"}
    assert module.double().mel_basis.dtype == torch.float64
    assert LogMel.config_type is FeatureConfig


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_gpu(rng):
    y = torch.from_numpy(rng.standard_normal((2, 16000)).astype(np.float32))
    cpu = LogMel(RECIPE)(y)
    gpu = LogMel(RECIPE).cuda()(y.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(sample_rate=0, n_fft=512, n_mels=10, fmin=0.0, fmax=100.0),
        dict(sample_rate=8000, n_fft=512, n_mels=0, fmin=0.0, fmax=4000.0),
        dict(sample_rate=8000, n_fft=512, n_mels=10, fmin=100.0, fmax=50.0),
        dict(sample_rate=8000, n_fft=512, n_mels=10, fmin=0.0, fmax=4001.0),
        dict(sample_rate=8000, n_fft=512, n_mels=10, fmin=-1.0, fmax=4000.0),
    ],
)
def test_bad_filterbank_parameters_raise(kwargs):
    with pytest.raises(ParameterError):
        mel_filterbank(**kwargs)


def test_bad_inputs_raise():
    with pytest.raises(ParameterError):
        FeatureConfig(fmax=20000.0)
    with pytest.raises(ParameterError):
        FeatureConfig(hop_length=0)
    with pytest.raises(ParameterError):
        log_mel(y=np.zeros(0, dtype=np.float32), config=RECIPE)
    with pytest.raises(ParameterError):
        log_mel(y=np.zeros(100, dtype=np.complex64), config=RECIPE)
    with pytest.raises(ParameterError):
        stft_power(y=np.zeros(100), n_fft=0, hop_length=10)
    with pytest.raises(ParameterError):
        power_to_db(np.ones((2, 2)), amin=0.0)
    module = LogMel(RECIPE)
    for bad in (torch.zeros(100), torch.zeros(1, 2, 100), torch.zeros(1, 0), torch.zeros(1, 100, dtype=torch.complex64)):
        with pytest.raises(ParameterError):
            module(bad)
    with pytest.raises(ParameterError):
        module(np.zeros((1, 100), dtype=np.float32))
    with pytest.raises(ParameterError):
        LogMel(RECIPE, dtype=torch.int32)
