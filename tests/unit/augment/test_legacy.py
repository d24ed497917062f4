"""The flat AugmentConfig of older versions: it migrates to lists that build the very pipelines the old code built
(same transforms, same nesting, so the same random numbers in the same order), and back to its flat fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from birdcall.augment import AugmentConfig, TransformSpec, build_batch_augment, build_spectrogram_augment, build_waveform_augment
from birdcall.augment.legacy import FLAT_DEFAULTS, flat_repr
from birdcall.config import from_dict, to_dict
from birdcall.testing.signals import chirp, white_noise

SAMPLE_RATE = 16_000

# repr(AugmentConfig()) of the flat dataclass (birdcall before the lists): the feature cache of BirdNET heads keys on it
OLD_DEFAULT_REPR = (
    "AugmentConfig(time_shift_p=0.0, time_shift=(-0.5, 0.5), time_shift_unit='fraction', time_shift_rollover=True, pitch_shift_p=0.0, "
    "pitch_shift_semitones=(-2.0, 2.0), background_noise_p=0.5, background_noise_paths=(), background_noise_snr_db=(3.0, 30.0), "
    "background_noise_cache=False, pink_noise_p=0.0, pink_noise_snr_db=(10.0, 40.0), gaussian_snr_p=0.0, gaussian_snr_db=(10.0, 40.0), "
    "gaussian_noise_p=0.0, gaussian_noise_amplitude=(0.001, 0.015), gain_p=0.0, gain_db=(-6.0, 6.0), mixup_p=0.0, mixup_alpha=0.4, "
    "mixup_labels='union', mixup_domain='waveform', cutmix_p=0.0, cutmix_alpha=1.0, cutmix_labels='weighted', cutmix_domain='spectrogram', "
    "cutmix_frequency=True, freq_mask_p=0.0, freq_mask_num_masks=2, freq_mask_max_width=8, time_mask_p=0.0, time_mask_num_masks=2, "
    "time_mask_max_width=20, mask_fill=0.0)"
)  # fmt: skip

FLAT_CONFIGS = {
    "all_with_paths": dict(time_shift_p=0.5, time_shift=[-0.3, 0.4], pitch_shift_p=0.4, background_noise_p=0.6, background_noise_paths=["NOISE"],
                           background_noise_snr_db=[5, 20], pink_noise_p=0.3, gaussian_snr_p=0.3, gaussian_noise_p=0.3, gain_p=0.5,
                           mixup_p=0.5, cutmix_p=0.4, freq_mask_p=0.7, time_mask_p=0.6, mask_fill=-1.0),
    "data_set_noise": dict(time_shift_p=0.5, time_shift_unit="seconds", time_shift=[-0.1, 0.1], time_shift_rollover=False, background_noise_p=0.7,
                           gain_p=0.5, gain_db=[-3, 2], mixup_p=0.6, mixup_domain="spectrogram", mixup_labels="weighted", cutmix_p=0.5,
                           cutmix_domain="waveform", cutmix_labels="union", freq_mask_p=0.5, freq_mask_num_masks=1, freq_mask_max_width=5,
                           time_mask_p=0.4, time_mask_num_masks=3, time_mask_max_width=7),
    "masks_and_cutmix": dict(background_noise_p=0.0, cutmix_p=0.8, cutmix_alpha=0.5, cutmix_frequency=False, mixup_p=0.3, mixup_alpha=1.0, time_mask_p=1.0),
    "defaults": dict(),
    "off": dict(background_noise_p=0.0),
}  # fmt: skip


def _flat(name: str, noise_dir) -> dict:
    flat = dict(FLAT_CONFIGS[name])
    if "background_noise_paths" in flat:
        flat["background_noise_paths"] = [str(noise_dir)]
    return flat


def _clips() -> list[np.ndarray]:
    return [(chirp(start_hz=500.0 + 300 * i, end_hz=4000.0, duration=0.5, sample_rate=SAMPLE_RATE, amplitude=0.3)
             + white_noise(rng=np.random.default_rng(i), duration=0.5, sample_rate=SAMPLE_RATE, rms=0.01)).astype(np.float32) for i in range(5)]  # fmt: skip


def draws(waveform, batch, spectrogram) -> list[np.ndarray]:
    """What a few training steps get from the three stages: every output, and where each generator stands after."""
    out = []
    for i, clip in enumerate(_clips()):
        rng = np.random.default_rng([7, i])
        out += [waveform(clip, sample_rate=SAMPLE_RATE, rng=rng), rng.random(2)]
    generator = torch.Generator().manual_seed(3)
    for step in range(3):
        seeds = [torch.Generator().manual_seed(100 * k + step) for k in (1, 2, 3)]
        waveforms, targets = torch.randn(6, 2000, generator=seeds[0]), (torch.rand(6, 5, generator=seeds[1]) > 0.6).float()
        waveforms, targets = batch(waveforms, targets, generator=generator)
        features = torch.randn(6, 1, 16, 30, generator=seeds[2])
        if len(spectrogram):  # as train_one_epoch: the stage runs only when it has transforms
            features, targets = spectrogram(features, targets, generator=generator)
        out += [t.numpy() for t in (waveforms, targets, features, torch.rand(2, generator=generator))]
    return out


@pytest.mark.parametrize("name", list(FLAT_CONFIGS))
def test_migrated_flat_configs_build_what_the_old_code_built(name, noise_dir, legacy_stages):
    flat = _flat(name, noise_dir)
    config = from_dict(AugmentConfig, flat)
    background = sorted(p for p in noise_dir.rglob("*") if p.suffix in (".wav", ".flac"))
    for clips in (background, []):  # a data set with background/ clips, and one without
        old = legacy_stages(flat, clips)
        new = (build_waveform_augment(config, background=clips), build_batch_augment(config), build_spectrogram_augment(config))
        assert new == old  # the same transforms, arguments and nesting
        for a, b in zip(draws(*old), draws(*new), strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)


def test_flat_keys_migrate_in_the_old_order():
    config = from_dict(AugmentConfig, {**FLAT_CONFIGS["data_set_noise"], "pink_noise_p": 0.1})
    assert [s.name for s in config.waveform] == ["background_noise", "time_shift", "pink_noise", "gain"]  # the data set's noise first
    assert [s.name for s in config.batch] == ["cutmix"] and [s.name for s in config.spectrogram] == ["mixup", "freq_mask", "time_mask"]
    assert config.waveform[1] == TransformSpec("time_shift", p=0.5, shift=(-0.1, 0.1), unit="seconds", rollover=False, fade_duration=0.005)
    assert config.spectrogram[1] == TransformSpec("freq_mask", p=0.5, num_masks=1, max_width=5, min_width=0, fill=0.0)
    paths = from_dict(AugmentConfig, {"time_shift_p": 0.5, "pitch_shift_p": 0.5, "background_noise_paths": "noise/", "gain_p": 0.5})
    assert [s.name for s in paths.waveform] == ["time_shift", "pitch_shift", "background_noise", "gain"]  # files: after the shifts
    assert paths.waveform[2]["paths"] == ("noise/",)


def test_flat_form_of_migrated_configs_and_its_old_repr():
    assert AugmentConfig().to_flat() == FLAT_DEFAULTS and flat_repr(AugmentConfig().to_flat()) == OLD_DEFAULT_REPR
    off = from_dict(AugmentConfig, {"background_noise_p": 0})
    assert off.to_flat() == {**FLAT_DEFAULTS, "background_noise_p": 0.0}
    for lists in (
        {"waveform": [{"name": "gain"}, {"name": "time_shift"}]},  # not the old order
        {"waveform": [{"name": "gain"}, {"name": "gain"}]},  # twice
        {"waveform": [{"name": "gain", "p": 0}]},  # an entry that is off
        {"waveform": [{"name": "color_noise"}]},  # no flat key for it
        {"waveform": [{"name": "time_shift", "fade_duration": 0}]},  # a parameter the flat layout fixed
        {"spectrogram": [{"name": "freq_mask", "fill": 1}, {"name": "time_mask", "fill": 2}]},  # one mask_fill for both
    ):
        assert AugmentConfig(**lists).to_flat() is None, lists


@settings(max_examples=40, deadline=None)
@given(
    probabilities=st.dictionaries(st.sampled_from([k for k in FLAT_DEFAULTS if k.endswith("_p")]), st.sampled_from([0.0, 0.25, 1.0])),
    domains=st.fixed_dictionaries({"mixup_domain": st.sampled_from(["waveform", "spectrogram"]), "cutmix_domain": st.sampled_from(["waveform", "spectrogram"])}),
    paths=st.sampled_from([[], ["noise/"]]),
    fill=st.sampled_from([0.0, -80.0]),
)  # fmt: skip
def test_every_flat_config_round_trips_through_the_lists(probabilities, domains, paths, fill):
    config = from_dict(AugmentConfig, {**probabilities, **domains, "background_noise_paths": paths, "mask_fill": fill})
    flat = config.to_flat()
    assert flat is not None and from_dict(AugmentConfig, flat) == config
    assert from_dict(AugmentConfig, to_dict(config)) == config
    on = {k for k, v in probabilities.items() if v > 0} | ({"background_noise_p"} if "background_noise_p" not in probabilities else set())
    assert {s.name for stage in (config.waveform, config.batch, config.spectrogram) for s in stage} == {k.removesuffix("_p") for k in on}
