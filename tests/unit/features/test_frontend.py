"""FeatureExtractor and its numpy reference: channel stacking, shapes, dtype, normalisation, determinism,
batch independence, export friendliness, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from birdcall.errors import ParameterError
from birdcall.features import CHANNELS, FeatureConfig, FeatureExtractor, extract_features

SAMPLE_RATE = 32000


@pytest.fixture
def waveforms(rng) -> np.ndarray:
    """(3, 1 s): a tone in noise, noise alone, and a quiet sweep over faint noise.

    Every signal has a noise floor within ~60 dB of its peak, as recordings do: a float32 STFT cannot resolve
    bins far below a frame's loud content (see tests/parity/test_logmel_librosa.py), so a noiseless synthetic
    signal would test float32 rounding rather than the front end.
    """
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    return np.stack(
        [
            0.3 * np.sin(2 * np.pi * 2500 * t) + 0.01 * rng.standard_normal(t.size),
            0.05 * rng.standard_normal(t.size),
            0.02 * np.sin(2 * np.pi * (500 + 3000 * t) * t) + 1e-4 * rng.standard_normal(t.size),
        ]
    ).astype(np.float32)


@pytest.mark.parametrize(
    "channels",
    [("logmel",), ("logmel", "logmel_delta", "logmel_delta2"), ("mfcc",), ("mfcc", "logmel"), CHANNELS],
)
def test_channel_stacking_shapes(channels, waveforms):
    config = FeatureConfig(channels=channels)
    out = FeatureExtractor(config)(torch.from_numpy(waveforms))
    assert out.shape == (3, len(channels), 128, config.num_frames(SAMPLE_RATE)) == (3, len(channels), 128, 63)
    assert out.dtype == torch.float32
    assert extract_features(y=waveforms, config=config).shape == tuple(out.shape)


def test_mfcc_channels_are_zero_padded_to_n_mels(waveforms):
    config = FeatureConfig(channels=("logmel", "mfcc", "mfcc_delta"), n_mfcc=20)
    out = FeatureExtractor(config)(torch.from_numpy(waveforms)).numpy()
    assert np.all(out[:, 1:, 20:, :] == 0.0)
    assert np.all(np.abs(out[:, 1:, :20, :]).max(axis=(-2, -1)) > 0.5)
    # each channel is normalised over its own n_mfcc rows, not over the padding
    np.testing.assert_allclose(out[:, 1:, :20].mean(axis=(-2, -1)), 0.0, atol=1e-4)
    np.testing.assert_allclose(out[:, 1:, :20].std(axis=(-2, -1)), 1.0, rtol=1e-4)


@pytest.mark.parametrize("mode", ["standardize", "minmax"])
def test_each_channel_is_normalised(mode, waveforms):
    config = FeatureConfig(channels=("logmel", "logmel_delta"), normalize=mode)
    out = FeatureExtractor(config)(torch.from_numpy(waveforms)).numpy().astype(np.float64)
    if mode == "standardize":
        np.testing.assert_allclose(out.mean(axis=(-2, -1)), 0.0, atol=1e-4)
        np.testing.assert_allclose(out.std(axis=(-2, -1)), 1.0, rtol=1e-4)
    else:
        np.testing.assert_allclose(out.min(axis=(-2, -1)), 0.0, atol=1e-6)
        np.testing.assert_allclose(out.max(axis=(-2, -1)), 1.0, rtol=1e-4)


def test_first_channel_without_normalisation_is_the_log_mel(waveforms):
    from birdcall.features import log_mel

    config = FeatureConfig(normalize="none")
    out = FeatureExtractor(config)(torch.from_numpy(waveforms)).numpy()
    np.testing.assert_allclose(out[:, 0], log_mel(y=waveforms, config=config), atol=1e-3)


@pytest.mark.parametrize(
    "config",
    [
        FeatureConfig(),
        FeatureConfig(preemphasis=0.97, channels=CHANNELS),
        FeatureConfig(scale="pcen", channels=("logmel", "logmel_delta", "mfcc"), normalize="minmax"),
        FeatureConfig(scale="pcen", normalize="none"),
        FeatureConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=40, fmin=0.0, fmax=8000.0, top_db=60.0,
                      channels=("logmel", "mfcc_delta2"), n_mfcc=13, delta_width=5),
    ],
    ids=["recipe", "db-all", "pcen-minmax", "pcen-raw", "small"],
)
def test_torch_matches_numpy_reference(config, waveforms):
    expected = extract_features(y=waveforms, config=config)
    assert expected.dtype == np.float32
    out = FeatureExtractor(config)(torch.from_numpy(waveforms)).numpy()
    np.testing.assert_allclose(out, expected, rtol=0, atol=2e-4 * max(1.0, np.abs(expected).max()))


def test_deterministic_and_batch_independent(waveforms):
    module = FeatureExtractor(FeatureConfig(channels=CHANNELS, preemphasis=0.97))
    x = torch.from_numpy(waveforms)
    first, second = module(x), module(x)
    assert torch.equal(first, second)
    for i in range(len(waveforms)):
        torch.testing.assert_close(module(x[i : i + 1])[0], first[i], rtol=0, atol=1e-4)


@pytest.mark.parametrize("num_samples", [5 * SAMPLE_RATE, 5 * SAMPLE_RATE + 511, 4096])
def test_frame_count(num_samples):
    config = FeatureConfig(channels=("logmel", "logmel_delta"))
    out = FeatureExtractor(config)(torch.zeros(2, num_samples))
    assert out.shape[-1] == config.num_frames(num_samples) == 1 + num_samples // 512
    assert torch.isfinite(out).all()  # silence: constant maps normalise to zeros, not NaN


@pytest.mark.integration
def test_exports_with_a_dynamic_batch(waveforms):
    """torch.export is the front end of torch.onnx.export in torch 2.x: no data-dependent control flow."""
    module = FeatureExtractor(FeatureConfig(scale="pcen", channels=("logmel", "logmel_delta", "mfcc"))).eval()
    x = torch.from_numpy(waveforms)
    batch = torch.export.Dim("batch", min=1, max=64)
    exported = torch.export.export(module, (x[:2],), dynamic_shapes={"waveform": {0: batch}})
    torch.testing.assert_close(exported.module()(x), module(x), rtol=0, atol=1e-5)


def test_buffers_and_config():
    module = FeatureExtractor(FeatureConfig(scale="pcen", channels=("logmel", "mfcc")))
    assert module.num_channels == 2 and FeatureExtractor.config_type is FeatureConfig
    buffers = set(dict(module.named_buffers()))
    assert {"logmel.window", "logmel.mel_basis", "mfcc.dct", "pcen.intra"} <= buffers
    assert not list(module.parameters())  # a fixed front end: nothing to train


def test_errors():
    module = FeatureExtractor(FeatureConfig(channels=("logmel", "logmel_delta")))
    with pytest.raises(ParameterError):
        module(torch.zeros(1, 2, 32000))
    with pytest.raises(ParameterError):
        module(torch.zeros(32000))
    with pytest.raises(ParameterError):
        module(torch.zeros(1, 8 * 512 - 1))  # 8 frames < delta_width 9
    with pytest.raises(ParameterError):
        extract_features(y=np.zeros(8 * 512 - 1), config=module.config)
    with pytest.raises(ParameterError):
        FeatureExtractor(FeatureConfig())(torch.zeros(1, 1))
    with pytest.raises(ParameterError):
        FeatureConfig(channels=("logmel", "spectral_flux"))
    with pytest.raises(ParameterError):
        FeatureConfig(scale="log")


@pytest.mark.parametrize("mode", ["standardize", "minmax", "none"])
def test_freqpos_is_the_unnormalised_mel_row_coordinate(mode, waveforms):
    config = FeatureConfig(channels=("freqpos", "logmel"), normalize=mode)
    out = FeatureExtractor(config)(torch.from_numpy(waveforms)).numpy()
    ramp = out[:, 0]
    assert ramp[:, 0, :].max() == ramp[:, 0, :].min() == -1.0 and ramp[:, -1, :].min() == 1.0
    rows = ramp[0, :, 0]
    np.testing.assert_allclose(np.diff(rows), 2.0 / (config.n_mels - 1), rtol=1e-5)  # evenly spaced, increasing
    assert (ramp == ramp[:, :, :1]).all()  # the same in every frame and every example
    np.testing.assert_array_equal(out[:, 1], FeatureExtractor(FeatureConfig(normalize=mode))(torch.from_numpy(waveforms)).numpy()[:, 0])
    np.testing.assert_allclose(extract_features(y=waveforms, config=config), out, rtol=0, atol=1e-3)
