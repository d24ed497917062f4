"""Parity with librosa for the rest of the front end: filter bank, mel scale, pre-emphasis, PCEN, MFCC,
deltas, and the whole `FeatureExtractor` pipeline rebuilt from librosa calls."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from birdcall.features import (
    CHANNELS,
    MFCC,
    PCEN,
    Delta,
    FeatureConfig,
    FeatureExtractor,
    Preemphasis,
    delta,
    extract_features,
    hz_to_mel,
    mel_filterbank,
    mel_frequencies,
    mel_to_hz,
    mfcc,
    normalize,
    pcen,
    preemphasis,
)

librosa = pytest.importorskip("librosa")


@pytest.mark.parametrize(
    "sample_rate, n_fft, n_mels, fmin, fmax",
    [
        (32000, 2048, 128, 50.0, 14000.0),
        (16000, 512, 40, 0.0, 8000.0),
        (22050, 1024, 64, 300.0, 11025.0),
        (48000, 4096, 256, 20.0, 20000.0),
        (44100, 2048, 96, 999.0, 1001.0 * 10),
    ],
)
def test_filterbank_equals_librosa(sample_rate, n_fft, n_mels, fmin, fmax):
    ours = mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    theirs = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney")
    assert ours.shape == theirs.shape == (n_mels, 1 + n_fft // 2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)  # librosa's bank is float32
    assert np.array_equal(ours > 0, theirs > 0)  # same support, band by band


def test_empty_filters_warn_like_librosa():
    kwargs = dict(n_fft=256, n_mels=128, fmin=0.0, fmax=8000.0)
    with pytest.warns(UserWarning, match="empty"):
        ours = mel_filterbank(sample_rate=16000, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = librosa.filters.mel(sr=16000, **kwargs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


def test_mel_scale_equals_librosa():
    hz = np.array([0.0, 50.0, 999.999, 1000.0, 1000.001, 4321.0, 14000.0, 24000.0])
    np.testing.assert_allclose(hz_to_mel(hz), librosa.hz_to_mel(hz), rtol=1e-12)
    mels = hz_to_mel(hz)
    np.testing.assert_allclose(mel_to_hz(mels), librosa.mel_to_hz(mels), rtol=1e-12)
    np.testing.assert_allclose(mel_to_hz(mels), hz, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        mel_frequencies(n_mels=130, fmin=50.0, fmax=14000.0), librosa.mel_frequencies(130, fmin=50.0, fmax=14000.0), rtol=1e-12
    )


@pytest.mark.parametrize("coef", [0.97, 0.5, 0.0])
def test_preemphasis_equals_librosa(coef, rng):
    y = rng.standard_normal((3, 1000)).astype(np.float32)
    expected = librosa.effects.preemphasis(y, coef=coef)
    np.testing.assert_allclose(preemphasis(y, coef=coef), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(Preemphasis(coef)(torch.from_numpy(y)).numpy(), expected, rtol=0, atol=1e-6)
    # librosa's first sample: y[0] + (2 y[0] - y[1]), i.e. its initial state is not scaled by -coef
    np.testing.assert_allclose(expected[:, 0], 3 * y[:, 0] - y[:, 1], rtol=0, atol=1e-6)


def _mel_magnitude(y, config):
    return librosa.feature.melspectrogram(
        y=y, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length, n_mels=config.n_mels,
        fmin=config.fmin, fmax=config.fmax, power=1.0,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"gain": 0.8, "bias": 10.0, "power": 0.25, "time_constant": 0.06, "eps": 1e-3},
        {"power": 0.0},
        {"bias": 0.0},
        {"b": 0.5},
        {"b": 1.0},
    ],
    ids=["defaults", "custom", "log", "nobias", "b0.5", "b1"],  # librosa fails on b=0 (singular lfilter_zi)
)
def test_pcen_equals_librosa(kwargs, rng):
    """PCEN on a magnitude mel spectrogram scaled to the int32 range, as librosa's docs recommend."""
    config = FeatureConfig()
    t = np.arange(3 * config.sample_rate) / config.sample_rate
    y = (0.3 * np.sin(2 * np.pi * 3000 * t) * (t > 1.5) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    S = _mel_magnitude(y, config) * 2**31
    expected = librosa.pcen(S, sr=config.sample_rate, hop_length=config.hop_length, **kwargs)
    ours = pcen(S, sample_rate=config.sample_rate, hop_length=config.hop_length, **kwargs)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6 * scale)
    module = PCEN(sample_rate=config.sample_rate, hop_length=config.hop_length, **kwargs)
    torch_out = module(torch.from_numpy(S)[None])[0].numpy()
    np.testing.assert_allclose(torch_out, expected, rtol=1e-4, atol=1e-5 * scale)


def test_pcen_long_input_equals_librosa(rng):
    """Over 3000 frames (47 blocks of the torch scan), with a 80 dB drop and recovery."""
    S = np.abs(rng.standard_normal((8, 3000))) * 1e6
    S[:, 1000:2000] *= 1e-4
    expected = librosa.pcen(S, sr=32000, hop_length=512)
    torch_out = PCEN(sample_rate=32000, hop_length=512, dtype=torch.float64)(torch.from_numpy(S)).numpy()
    np.testing.assert_allclose(torch_out, expected, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(pcen(S, sample_rate=32000, hop_length=512), expected, rtol=1e-10)


@pytest.mark.parametrize("n_mfcc", [13, 20, 128])
def test_mfcc_equals_librosa(n_mfcc, rng):
    S_db = (rng.standard_normal((2, 128, 50)) * 20 - 40).astype(np.float32)
    expected = librosa.feature.mfcc(S=S_db, n_mfcc=n_mfcc)
    np.testing.assert_allclose(mfcc(S=S_db, n_mfcc=n_mfcc), expected, rtol=1e-5, atol=1e-3)
    torch_out = MFCC(n_mfcc, 128)(torch.from_numpy(S_db)).numpy()
    np.testing.assert_allclose(torch_out, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("width", [3, 5, 9])
def test_delta_equals_librosa_including_edges(order, width, rng):
    data = rng.standard_normal((2, 20, 40)).cumsum(axis=-1)
    expected = librosa.feature.delta(data, width=width, order=order)  # mode="interp"
    np.testing.assert_allclose(delta(data, width=width, order=order), expected, rtol=1e-10, atol=1e-10)
    torch_out = Delta(width, order, dtype=torch.float64)(torch.from_numpy(data)).numpy()
    np.testing.assert_allclose(torch_out, expected, rtol=1e-10, atol=1e-10)
    along_rows = delta(np.swapaxes(data, -1, -2), width=width, order=order, axis=-2)
    np.testing.assert_allclose(np.swapaxes(along_rows, -1, -2), expected, rtol=1e-10, atol=1e-10)


def _librosa_frontend(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The whole front end rebuilt from librosa calls, for one waveform."""
    if config.preemphasis:
        y = librosa.effects.preemphasis(y, coef=config.preemphasis)
    kwargs = dict(sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length, n_mels=config.n_mels,
                  fmin=config.fmin, fmax=config.fmax)
    db = librosa.power_to_db(librosa.feature.melspectrogram(y=y, power=config.power, **kwargs), ref=1.0, amin=1e-10,
                             top_db=config.top_db)
    if config.scale == "pcen":
        base = librosa.pcen(librosa.feature.melspectrogram(y=y, power=1.0, **kwargs) * 2**31, sr=config.sample_rate,
                            hop_length=config.hop_length)
    else:
        base = db
    sources = {"logmel": base, "mfcc": librosa.feature.mfcc(S=db, n_mfcc=config.n_mfcc)}
    if any(name.startswith("gtcc") for name in config.channels):  # the gammatone package's weights on librosa's STFT
        fftweight = pytest.importorskip("gammatone.fftweight")
        fmin, fmax = config.gammatone_band
        weights, _ = fftweight.fft_weights(config.n_fft, config.sample_rate, config.n_gammatone, 1, fmin, fmax, config.n_fft // 2 + 1)
        power = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length, pad_mode="constant")) ** config.power
        gammatone_db = librosa.power_to_db(weights @ power, ref=1.0, amin=1e-10, top_db=config.top_db)
        sources["gtcc"] = librosa.feature.mfcc(S=gammatone_db, n_mfcc=config.n_gtcc)
    out = []
    for name in config.channels:
        if name == "freqpos":  # row i of n holds 2 i / (n - 1) - 1 in every frame
            out.append(np.repeat(2.0 * np.arange(config.n_mels)[:, None] / (config.n_mels - 1) - 1.0, base.shape[1], axis=1))
            continue
        source, _, suffix = name.partition("_")
        feat = sources[source]
        if suffix:
            feat = librosa.feature.delta(feat, width=config.delta_width, order=2 if suffix == "delta2" else 1)
        feat = normalize(feat, mode=config.normalize)
        out.append(np.pad(feat, ((0, config.n_mels - feat.shape[0]), (0, 0))))
    return np.stack(out)


@pytest.mark.parametrize(
    "config",
    [
        FeatureConfig(preemphasis=0.97, channels=CHANNELS),
        FeatureConfig(scale="pcen", channels=("logmel", "logmel_delta", "mfcc"), normalize="minmax"),
        FeatureConfig(normalize="none", top_db=80.0),
    ],
    ids=["db-all-channels", "pcen-minmax", "raw-db"],
)
def test_frontend_equals_librosa_pipeline(config, nips4b_clip):
    y = nips4b_clip("train_audio/erirub/trainfile004.ogg", config.sample_rate)[: 3 * config.sample_rate]
    expected = _librosa_frontend(y, config)
    np.testing.assert_allclose(extract_features(y=y, config=config), expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    torch_out = FeatureExtractor(config)(torch.from_numpy(y)[None])[0].numpy()
    np.testing.assert_allclose(torch_out, expected, rtol=0, atol=2e-4 * np.abs(expected).max())
