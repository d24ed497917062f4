"""AugmentConfig: off by default, YAML round trip, what each stage builds, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from birdcall.augment import (
    AddBackgroundNoise,
    AddGaussianSNR,
    AddPinkNoise,
    AugmentConfig,
    Compose,
    CutMix,
    FrequencyMask,
    Gain,
    Mixup,
    PitchShift,
    TimeMask,
    TimeShift,
    build_batch_augment,
    build_spectrogram_augment,
    build_waveform_augment,
)
from birdcall.config import apply_overrides, from_dict, from_yaml, to_dict, to_yaml
from birdcall.errors import ParameterError

SAMPLE_RATE = 16_000


def test_default_config_changes_nothing(clip):
    config = AugmentConfig()
    for build in (build_waveform_augment, build_batch_augment, build_spectrogram_augment):
        stage = build(config)
        assert isinstance(stage, Compose) and len(stage) == 0
    assert build_waveform_augment(config)(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0)) is clip


def test_full_config_builds_the_stages_in_order(clip, noise_dir, tmp_path):
    probabilities = dict(
        time_shift_p=0.5, pitch_shift_p=0.3, background_noise_p=0.5, pink_noise_p=0.2, gaussian_snr_p=0.2
    )
    probabilities.update(gain_p=0.5, mixup_p=0.5, cutmix_p=0.3, time_mask_p=0.5, freq_mask_p=0.5)
    config = AugmentConfig(background_noise_paths=(str(noise_dir),), **probabilities)
    waveform = build_waveform_augment(config)
    assert [type(t) for t in waveform.transforms] == [
        TimeShift,
        PitchShift,
        AddBackgroundNoise,
        AddPinkNoise,
        AddGaussianSNR,
        Gain,
    ]
    assert waveform.transforms[-1].p == 0.5 and (
        waveform.transforms[-1].min_gain_db,
        waveform.transforms[-1].max_gain_db,
    ) == (-6.0, 6.0)
    a = waveform(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(1))
    assert a.shape == clip.shape and np.array_equal(
        a, waveform(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(1))
    )
    assert [type(t) for t in build_batch_augment(config).transforms] == [Mixup]
    spec = build_spectrogram_augment(config)
    assert [type(t) for t in spec.transforms] == [CutMix, FrequencyMask, TimeMask]
    features, targets = spec(torch.randn(4, 1, 16, 40), torch.eye(4), generator=torch.Generator().manual_seed(0))
    assert features.shape == (4, 1, 16, 40) and targets.shape == (4, 4)
    # YAML round trip (tuples come back as tuples), and a plain dict builds the same pipeline
    to_yaml(config, tmp_path / "augment.yaml")
    assert from_yaml(AugmentConfig, tmp_path / "augment.yaml") == config
    assert build_waveform_augment(to_dict(config)) == waveform


def test_domains_move_mixers_between_stages():
    config = AugmentConfig(
        mixup_p=0.5, mixup_domain="spectrogram", cutmix_p=0.5, cutmix_domain="waveform", cutmix_labels="union"
    )
    assert [type(t) for t in build_batch_augment(config).transforms] == [CutMix]
    assert build_batch_augment(config).transforms[0].label_mode == "union"
    assert [type(t) for t in build_spectrogram_augment(config).transforms] == [Mixup]


def test_overrides_and_a_single_path_string(noise_dir):
    config = apply_overrides(
        AugmentConfig(),
        ["gain_p=0.5", "gain_db=[-3, 3]", f"background_noise_paths={noise_dir}", "background_noise_p=1"],
    )
    assert config.gain_db == (-3, 3) and config.background_noise_paths == (str(noise_dir),)
    assert isinstance(from_dict(AugmentConfig, {"background_noise_paths": "x"}).background_noise_paths, tuple)


@pytest.mark.parametrize(
    "overrides",
    [
        {"mixup_domain": "logits"},
        {"gain_p": 0.5, "gain_db": (6.0, -6.0)},
        {"gain_p": -0.5},
        {"background_noise_p": 0.5, "background_noise_snr_db": (30.0, 3.0)},  # without paths: the data set's background/ clips
        {"mixup_p": 0.5, "mixup_labels": "sum"},
        {"time_mask_p": 0.5, "time_mask_max_width": -1},
        {"pitch_shift_p": 0.5, "pitch_shift_semitones": (1.0,)},
        {"unknown_p": 0.5},
    ],
)
def test_invalid_config_raises_parameter_error(overrides):
    with pytest.raises(ParameterError):
        from_dict(AugmentConfig, overrides)
