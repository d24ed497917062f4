"""BirdNET features with the deterministic stand-in model: sub-windows, pooling, resampling, clip = window."""

import numpy as np
import pytest
import soxr

from birdcall.birdnet import (
    BirdNetFeatureConfig,
    clip_features,
    feature_dim,
    window_features,
)
from birdcall.errors import ParameterError
from birdcall.testing.birdnet import StandInBirdNet

RATE = 48_000
SEGMENT = 3 * RATE


@pytest.fixture(scope="module")
def model():
    return StandInBirdNet(embedding_dim=16, num_classes=5)


def noise(rng, seconds, rate=RATE):
    return (0.1 * rng.standard_normal(int(round(seconds * rate)))).astype(np.float32)


def meanmax(embeddings: np.ndarray) -> np.ndarray:
    """The pooling written out: mean (in float64) then max over the sub-windows."""
    return np.concatenate([embeddings.mean(axis=0, dtype=np.float64).astype(np.float32), embeddings.max(axis=0)])


@pytest.mark.parametrize(
    ("kwargs", "starts"),
    [
        ({}, (0.0, 1.0, 2.0)),
        ({"step": 2.0}, (0.0, 2.0)),
        ({"step": 0.5}, (0.0, 0.5, 1.0, 1.5, 2.0)),
        ({"window": 4.0, "step": 2.0}, (0.0,)),  # 2 + 3 > 4: one sub-window
        ({"window": 3.0}, (0.0,)),  # segment == window
        ({"step": 0.7}, (0.0, 0.7, 1.4)),  # 2.1 + 3 > 5
    ],
)
def test_sub_windows_start_every_step_while_they_fit(kwargs, starts):
    assert BirdNetFeatureConfig(**kwargs).starts == pytest.approx(starts)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0.0}, {"window": float("nan")}, {"segment": -3.0}, {"step": 0.0}, {"step": float("inf")},
        {"window": 2.0},  # a 3-s segment does not fit
        {"pool": "median"}, {"logits": "yes"}, {"step": True},
    ],
)
def test_invalid_settings_are_refused(kwargs):
    with pytest.raises(ParameterError, match="BirdNetFeatureConfig"):
        BirdNetFeatureConfig(**kwargs)


def test_meanmax_pools_the_three_sub_windows_of_each_window(model, rng):
    windows = np.stack([noise(rng, 5.0), noise(rng, 5.0)])
    got = window_features(windows, sample_rate=RATE, model=model)
    assert got.dtype == np.float32 and got.shape == (2, 32) == (2, feature_dim(BirdNetFeatureConfig(), embedding_dim=16, num_classes=5))
    for window, row in zip(windows, got):
        embeddings, _ = model(np.stack([window[s * RATE : s * RATE + SEGMENT] for s in (0, 1, 2)]))
        np.testing.assert_allclose(row, meanmax(embeddings), rtol=1e-6, atol=1e-7)
    # a sub-window at the wrong place would change the stand-in's block statistics
    embeddings, _ = model(np.stack([windows[0][s : s + SEGMENT] for s in (0, RATE // 2, RATE)]))
    assert not np.allclose(got[0], meanmax(embeddings), atol=1e-3)


def test_mean_max_and_logits_pools(model, rng):
    window = noise(rng, 5.0)
    embeddings, logits = model(np.stack([window[s * RATE : s * RATE + SEGMENT] for s in (0, 1, 2)]))
    mean = window_features(window[None], sample_rate=RATE, model=model, config=BirdNetFeatureConfig(pool="mean"))[0]
    top = window_features(window[None], sample_rate=RATE, model=model, config=BirdNetFeatureConfig(pool="max"))[0]
    both = window_features(window[None], sample_rate=RATE, model=model, config=BirdNetFeatureConfig(logits=True))[0]
    np.testing.assert_allclose(mean, embeddings.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(top, embeddings.max(axis=0))
    assert both.shape == (16 + 16 + 5,)
    np.testing.assert_array_equal(both[32:], logits.max(axis=0))
    assert model.calls > 0


def test_one_model_call_per_batch_of_windows(rng):
    model = StandInBirdNet(embedding_dim=4, num_classes=3)
    window_features(np.stack([noise(rng, 5.0) for _ in range(4)]), sample_rate=RATE, model=model)
    assert model.calls == 1  # 4 windows x 3 sub-windows in one call


def test_windows_at_another_rate_are_resampled_to_48k(model, rng):
    windows = np.stack([noise(rng, 5.0, 32_000), noise(rng, 5.0, 32_000)])
    got = window_features(windows, sample_rate=32_000, model=model)
    at_48k = np.stack([soxr.resample(w, 32_000, RATE, quality="HQ") for w in windows]).astype(np.float32)
    assert at_48k.shape == (2, 5 * RATE)
    np.testing.assert_array_equal(got, window_features(at_48k, sample_rate=RATE, model=model))


def test_training_and_inference_features_of_a_5_s_clip_are_identical(model, rng):
    """The issue's requirement: the pooling a classifier is trained on is the pooling it is applied to."""
    for rate in (RATE, 32_000):
        clip = noise(rng, 5.0, rate)
        trained_on = clip_features(clip, rate, model)
        applied_to = window_features(clip[None], sample_rate=rate, model=model)[0]
        assert trained_on.dtype == applied_to.dtype == np.float32
        np.testing.assert_array_equal(trained_on, applied_to)


def test_a_short_clip_is_tiled_to_the_window(model, rng):
    clip = noise(rng, 2.0)
    tiled = np.resize(clip, 5 * RATE)  # repeats cyclically, as features.pad="wrap"
    np.testing.assert_array_equal(clip_features(clip, RATE, model), window_features(tiled[None], sample_rate=RATE, model=model)[0])


def test_a_long_clip_pools_every_sub_window_holding_half_a_segment(model, rng):
    clip = noise(rng, 12.0)  # windows at 0, 5, 10 s (the last zero-padded)
    padded = np.concatenate([clip, np.zeros(3 * RATE, np.float32)])
    kept = (0, 1, 2, 5, 6, 7, 10)  # 11 s holds 1 s of the clip and 12 s none: < 1.5 s, left out
    embeddings, _ = model(np.stack([padded[s * RATE : s * RATE + SEGMENT] for s in kept]))
    np.testing.assert_allclose(clip_features(clip, RATE, model), meanmax(embeddings), rtol=1e-6, atol=1e-7)


def test_bad_shapes_and_segments_are_refused(model, rng):
    with pytest.raises(ParameterError, match=r"expected \(batch, 240000\) windows"):
        window_features(noise(rng, 4.0)[None], sample_rate=RATE, model=model)
    with pytest.raises(ParameterError, match="2-s segments|takes 3-s segments"):
        window_features(noise(rng, 5.0)[None], sample_rate=RATE, model=model, config=BirdNetFeatureConfig(segment=2.0))
    with pytest.raises(ParameterError, match="non-empty"):
        clip_features(np.zeros(0, np.float32), RATE, model)
    assert window_features(np.zeros((0, 5 * RATE), np.float32), sample_rate=RATE, model=model).shape == (0, 32)


def test_stack_keeps_every_sub_window_in_order_and_a_long_clip_gives_its_first_window(model, rng):
    """``pool="stack"`` (the birdnet_finetune family's training features): no pooling, sub-windows in order."""
    config = BirdNetFeatureConfig(pool="stack")
    assert feature_dim(config, embedding_dim=16, num_classes=5) == 3 * 16
    window = noise(rng, 5.0)
    got = window_features(window[None], sample_rate=RATE, model=model, config=config)[0]
    for k, start in enumerate((0, 1, 2)):
        own, _ = model(window[None, start * RATE : start * RATE + SEGMENT])
        np.testing.assert_allclose(got[k * 16 : (k + 1) * 16], own[0], atol=1e-6)
    long_clip = np.concatenate([window, noise(rng, 7.0)])
    np.testing.assert_array_equal(clip_features(long_clip, RATE, model, config), got)
    with pytest.raises(ParameterError, match="stack"):
        BirdNetFeatureConfig(pool="stack", logits=True)
