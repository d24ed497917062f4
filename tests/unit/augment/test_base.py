"""Contract shared by every transform: p, determinism, no global random state, checks, repr/to_dict round trip."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
import yaml

from birdcall.augment import (
    AddBackgroundNoise,
    AddColorNoise,
    AddGaussianNoise,
    AddGaussianSNR,
    AddPinkNoise,
    Compose,
    CutMix,
    FrequencyMask,
    Gain,
    Mixup,
    OneOf,
    PitchShift,
    RandomCrop,
    SomeOf,
    TimeMask,
    TimeShift,
    transform_from_dict,
)
from birdcall.errors import ParameterError

SAMPLE_RATE = 16_000  # the rate of the conftest fixtures

WAVEFORM = {
    "gain": lambda d: Gain(min_gain_db=3.0, max_gain_db=6.0, p=1.0),
    "gaussian_noise": lambda d: AddGaussianNoise(p=1.0),
    "gaussian_snr": lambda d: AddGaussianSNR(p=1.0),
    "color_noise": lambda d: AddColorNoise(min_f_decay=-6.0, max_f_decay=0.0, p=1.0),
    "pink_noise": lambda d: AddPinkNoise(p=1.0),
    "background_noise": lambda d: AddBackgroundNoise(d, p=1.0),
    "pitch_shift": lambda d: PitchShift(min_semitones=1.0, max_semitones=3.0, p=1.0),
    "time_shift": lambda d: TimeShift(p=1.0),
    "random_crop": lambda d: RandomCrop(duration=0.25),
    "compose": lambda d: Compose(
        [Gain(p=0.5), OneOf([AddPinkNoise(p=1.0), AddBackgroundNoise([d], p=1.0)]), TimeShift(p=0.7)]
    ),
    "some_of": lambda d: SomeOf((1, None), [Gain(p=1.0), AddGaussianSNR(p=1.0), PitchShift(p=1.0)]),
}
BATCH = {
    "mixup": lambda: Mixup(p=0.7),
    "cutmix": lambda: CutMix(p=0.7),
    "time_mask": lambda: TimeMask(max_width=5),
    "frequency_mask": lambda: FrequencyMask(max_width=3),
    "compose": lambda: Compose([OneOf([Mixup(p=1.0), CutMix(p=1.0)]), TimeMask(p=0.5), FrequencyMask(p=0.5)]),
}


@pytest.mark.parametrize("name", WAVEFORM)
def test_waveform_same_seed_same_output_whatever_the_global_state(name, clip, noise_dir):
    t = WAVEFORM[name](noise_dir)
    random_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    a = t(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(7))
    # the call left every global generator alone...
    assert random.getstate() == random_state and torch.equal(torch.random.get_rng_state(), torch_state)
    assert all(np.array_equal(u, v) for u, v in zip(np.random.get_state(), np_state, strict=True))
    # ...and does not read them
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    b = t(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(7))
    assert a.dtype == np.float32 and np.array_equal(a, b)
    c = t(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(8))
    assert a.shape != c.shape or not np.array_equal(a, c)


@pytest.mark.parametrize("name", WAVEFORM)
def test_waveform_p_zero_is_identity_p_one_applies(name, clip, noise_dir):
    t = WAVEFORM[name](noise_dir)
    out = t(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(1))
    assert out.shape != clip.shape or not np.allclose(out, clip)
    t.p = 0.0
    assert t(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(1)) is clip


@pytest.mark.parametrize("name", WAVEFORM)
def test_waveform_repr_and_to_dict_round_trip(name, noise_dir):
    t = WAVEFORM[name](noise_dir)
    data = t.to_dict()
    assert yaml.safe_load(yaml.safe_dump(data)) == data and json.loads(json.dumps(data)) == data  # plain types
    back = transform_from_dict(yaml.safe_load(yaml.safe_dump(data)))
    assert back == t and repr(back) == repr(t) and type(back) is type(t)
    assert repr(t).startswith(type(t).__name__ + "(") and "p=" in repr(t)


@pytest.mark.parametrize("name", BATCH)
def test_batch_same_generator_same_output_and_round_trip(name):
    t = BATCH[name]()
    x, y = torch.randn(6, 1, 12, 30, generator=torch.Generator().manual_seed(0)), torch.eye(6)
    state = torch.random.get_rng_state()
    a = t(x, y, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(123)
    b = t(x, y, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == x.shape and a[1].shape == y.shape and a[0].dtype == x.dtype
    assert transform_from_dict(yaml.safe_load(yaml.safe_dump(t.to_dict()))) == t
    t.p = 0.0
    same = t(x, y, generator=torch.Generator().manual_seed(5))
    assert same[0] is x and same[1] is y


@pytest.mark.parametrize(
    "make",
    [
        lambda: Gain(min_gain_db=1.0, max_gain_db=0.0),
        lambda: AddGaussianNoise(min_amplitude=0.2, max_amplitude=0.1),
        lambda: AddGaussianNoise(min_amplitude=-0.1, max_amplitude=0.1),
        lambda: AddGaussianSNR(min_snr_db=20.0, max_snr_db=10.0),
        lambda: AddColorNoise(min_snr_db=20.0, max_snr_db=10.0),
        lambda: AddColorNoise(min_f_decay=0.0, max_f_decay=-3.0),
        lambda: AddPinkNoise(min_snr_db=20.0, max_snr_db=10.0),
        lambda: PitchShift(min_semitones=2.0, max_semitones=1.0),
        lambda: PitchShift(min_semitones=-30.0, max_semitones=1.0),
        lambda: PitchShift(method="rubberband"),
        lambda: TimeShift(min_shift=0.5, max_shift=0.1),
        lambda: TimeShift(min_shift=-2.0, max_shift=0.1),
        lambda: TimeShift(shift_unit="samples"),
        lambda: TimeShift(fade_duration=0.0001),
        lambda: RandomCrop(duration=0.0),
        lambda: RandomCrop(duration=1.0, mode="start"),
        lambda: TimeMask(min_width=5, max_width=4),
        lambda: FrequencyMask(min_width=5, max_width=4),
        lambda: TimeMask(fill="median"),
        lambda: Mixup(alpha=0.0),
        lambda: Mixup(label_mode="sum"),
        lambda: CutMix(alpha=-1.0),
        lambda: Gain(p=1.5),
        lambda: Gain(p=-0.1),
        lambda: Gain(min_gain_db=float("nan")),
    ],
)
def test_invalid_arguments_raise_parameter_error(make):
    with pytest.raises(ParameterError):
        make()


def test_background_noise_min_above_max_raises(noise_dir):
    with pytest.raises(ParameterError, match="min_snr_db"):
        AddBackgroundNoise(noise_dir, min_snr_db=10.0, max_snr_db=5.0)


def test_bad_calls_raise_parameter_error(clip):
    t = Gain(p=1.0)
    with pytest.raises(ParameterError, match="rng"):
        t(clip, sample_rate=SAMPLE_RATE, rng=np.random.RandomState(0))
    with pytest.raises(ParameterError, match="num_samples"):
        t(np.stack([clip, clip]), sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0))
    with pytest.raises(ParameterError, match="sample_rate"):
        t(clip, sample_rate=0, rng=np.random.default_rng(0))
    with pytest.raises(ParameterError, match="generator"):
        Mixup()(torch.zeros(2, 3), torch.zeros(2, 2), generator=np.random.default_rng(0))
    with pytest.raises(ParameterError, match="targets"):
        Mixup()(torch.zeros(2, 3), None, generator=torch.Generator())
    with pytest.raises(ParameterError, match="targets"):
        CutMix()(torch.zeros(2, 3), torch.zeros(3, 2), generator=torch.Generator())
    with pytest.raises(ParameterError, match="unknown transform"):
        transform_from_dict({"name": "Reverb"})
    with pytest.raises(ParameterError):
        transform_from_dict({"name": "Gain", "gain": 3})


def test_float64_and_int_input_comes_out_float32(clip):
    out = Gain(p=1.0)(clip.astype(np.float64), sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0))
    assert out.dtype == np.float32
    assert (
        Gain(p=0.0)(clip.astype(np.float64), sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0)).dtype == np.float32
    )


def test_p_is_the_fraction_of_calls_applied(clip):
    t = Gain(min_gain_db=6.0, max_gain_db=6.0, p=0.3)
    rng = np.random.default_rng(0)
    applied = [not np.array_equal(t(clip, sample_rate=SAMPLE_RATE, rng=rng), clip) for _ in range(2000)]
    assert abs(np.mean(applied) - 0.3) < 0.03
