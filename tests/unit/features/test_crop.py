"""crop_or_pad: lengths, zero padding, the three modes, reproducibility, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from birdcall.errors import ParameterError
from birdcall.features import crop_or_pad


@settings(max_examples=60, deadline=None, database=None)  # no .hypothesis/ folder in the cwd
@given(
    length=st.integers(min_value=1, max_value=3000),
    num_samples=st.integers(min_value=1, max_value=3000),
    mode=st.sampled_from(["start", "random", "energy"]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_output_length_and_content(length, num_samples, mode, seed):
    y = np.arange(1, length + 1, dtype=np.float32)  # strictly increasing, no zeros: windows are identifiable
    out = crop_or_pad(y, num_samples=num_samples, mode=mode, rng=np.random.default_rng(seed))
    assert out.shape == (num_samples,) and out.dtype == np.float32
    if length <= num_samples:
        np.testing.assert_array_equal(out[:length], y)
        assert not out[length:].any()
    else:
        start = int(out[0]) - 1
        assert 0 <= start <= length - num_samples
        np.testing.assert_array_equal(out, y[start : start + num_samples])


def test_golden_examples():
    y = np.arange(5.0)
    assert crop_or_pad(y, num_samples=3).tolist() == [0.0, 1.0, 2.0]
    assert crop_or_pad(y, num_samples=7).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 0.0, 0.0]
    assert crop_or_pad(y, num_samples=5).tolist() == y.tolist()


def test_returns_a_copy():
    y = np.arange(10.0)
    out = crop_or_pad(y, num_samples=4)
    out[0] = 99.0
    assert y[0] == 0.0


def test_leading_axes_are_kept():
    y = np.arange(2 * 3 * 100, dtype=np.float64).reshape(2, 3, 100)
    out = crop_or_pad(y, num_samples=40, mode="random", rng=np.random.default_rng(0))
    assert out.shape == (2, 3, 40)
    start = int(out[0, 0, 0])
    np.testing.assert_array_equal(out, y[..., start : start + 40])  # one window for all channels
    assert crop_or_pad(y, num_samples=150).shape == (2, 3, 150)


def test_random_is_reproducible_and_uniform():
    y = np.arange(1000, dtype=np.float64)
    a = crop_or_pad(y, num_samples=100, mode="random", rng=np.random.default_rng(7))
    b = crop_or_pad(y, num_samples=100, mode="random", rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(7)
    starts = np.array([crop_or_pad(y, num_samples=100, mode="random", rng=rng)[0] for _ in range(2000)])
    assert starts.min() >= 0 and starts.max() <= 900
    assert starts.min() < 50 and starts.max() > 850  # both ends reachable
    assert abs(starts.mean() - 450) < 25  # uniform over 0..900: mean 450, sd of the mean ~ 5.8


def test_start_mode_needs_no_rng():
    assert crop_or_pad(np.arange(10.0), num_samples=4, mode="start", rng=None).tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.integration
def test_energy_mode_picks_the_loud_part(rng):
    sample_rate = 32000
    y = 0.01 * rng.standard_normal(20 * sample_rate)
    loud = slice(14 * sample_rate, 15 * sample_rate)  # a 1-s call in 20 s of faint noise
    y[loud] += np.sin(2 * np.pi * 3000 * np.arange(sample_rate) / sample_rate)
    clip = 5 * sample_rate
    position = {value: i for i, value in enumerate(y.tolist())}  # noise samples are distinct floats
    starts = [position[crop_or_pad(y, num_samples=clip, mode="energy", rng=rng)[0]] for _ in range(200)]
    starts = np.array(starts)
    overlaps = (starts < loud.stop) & (starts + clip > loud.start)
    assert overlaps.mean() > 0.95  # random starts would overlap the call 6/16 = 37% of the time
    # and reproducible with the same seed
    a = crop_or_pad(y, num_samples=clip, mode="energy", rng=np.random.default_rng(3))
    b = crop_or_pad(y, num_samples=clip, mode="energy", rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


def test_energy_mode_on_silence_is_uniform():
    y = np.zeros(1000)
    out = crop_or_pad(y, num_samples=100, mode="energy", rng=np.random.default_rng(0))
    assert out.shape == (100,) and not out.any()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_samples=0),
        dict(num_samples=-5),
        dict(num_samples=2.5),
        dict(num_samples=True),
        dict(num_samples=10, mode="center"),
        dict(num_samples=10, mode="random"),
        dict(num_samples=10, mode="energy", rng=np.random.RandomState(0)),
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ParameterError):
        crop_or_pad(np.ones(100), **kwargs)


def test_empty_input_raises():
    with pytest.raises(ParameterError):
        crop_or_pad(np.ones(0), num_samples=10)


@settings(max_examples=40, deadline=None, database=None)
@given(length=st.integers(min_value=1, max_value=500), num_samples=st.integers(min_value=1, max_value=2000))
def test_wrap_tiles_short_input(length, num_samples):
    y = np.arange(1, length + 1, dtype=np.float32)
    out = crop_or_pad(y, num_samples=num_samples, pad="wrap")
    assert out.shape == (num_samples,) and out.dtype == np.float32
    if length <= num_samples:
        np.testing.assert_array_equal(out, y[np.arange(num_samples) % length])  # sample i is y[i mod length]
    else:  # longer input is cropped as with zero padding
        np.testing.assert_array_equal(out, y[:num_samples])


def test_wrap_keeps_leading_axes_and_rejects_unknown_pad():
    y = np.arange(6.0).reshape(2, 3)
    assert crop_or_pad(y, num_samples=7, pad="wrap").tolist() == [[0, 1, 2, 0, 1, 2, 0], [3, 4, 5, 3, 4, 5, 3]]
    with pytest.raises(ParameterError, match="pad"):
        crop_or_pad(y, num_samples=7, pad="reflect")


def test_feature_config_pad_reaches_the_training_clips(tmp_path):
    from birdcall.audio import write_audio
    from birdcall.data.dataset import ClipDataset
    from birdcall.features import FeatureConfig

    y = np.sin(np.arange(8000) / 5.0).astype(np.float32) * 0.5  # 0.5 s in a 1-s window
    path = write_audio(tmp_path / "short.wav", y, 16_000)
    for pad in ("zero", "wrap"):
        features = FeatureConfig(sample_rate=16_000, n_fft=512, hop_length=256, n_mels=32, fmax=8000.0, clip_duration=1.0, pad=pad)
        clip = ClipDataset([path], np.zeros((1, 1), np.float32), features, train=False, crop="start")[0][0].numpy()
        tail = clip[8000:]
        np.testing.assert_allclose(tail, y if pad == "wrap" else 0.0, atol=1e-4)
    with pytest.raises(ParameterError, match="pad"):
        FeatureConfig(pad="edge")
