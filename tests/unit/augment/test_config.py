"""AugmentConfig: the default, YAML round trip, what each stage builds and in which order, the data set's
background noise, overrides in both spellings, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

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
    TransformSpec,
    build_batch_augment,
    build_spectrogram_augment,
    build_waveform_augment,
)
from birdcall.config import apply_overrides, from_dict, from_yaml, to_dict, to_yaml
from birdcall.errors import ParameterError

SAMPLE_RATE = 16_000

FULL = """
waveform:
  - {name: time_shift, p: 0.5}
  - {name: pitch_shift, p: 0.3}
  - {name: background_noise, p: 0.5, paths: [NOISE]}
  - {name: pink_noise, p: 0.2}
  - {name: gaussian_snr, p: 0.2}
  - {name: gain, p: 0.5}
batch:
  - {name: mixup, p: 0.5}
spectrogram:
  - {name: cutmix, p: 0.3}
  - {name: freq_mask, p: 0.5}
  - {name: time_mask, p: 0.5}
"""


def test_default_is_the_data_sets_background_noise_only(clip):
    config = AugmentConfig()
    assert config.waveform == (TransformSpec("background_noise", p=0.5, snr_db=(3.0, 30.0), paths=(), cache=False),)
    assert config.batch == config.spectrogram == ()
    for build in (build_waveform_augment, build_batch_augment, build_spectrogram_augment):
        stage = build(config)
        assert isinstance(stage, Compose) and len(stage) == 0  # without a data set, its background noise adds nothing
    assert build_waveform_augment(config)(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0)) is clip


def test_full_config_builds_the_stages_in_list_order(clip, noise_dir, tmp_path):
    config = from_dict(AugmentConfig, yaml.safe_load(FULL.replace("NOISE", str(noise_dir))))
    waveform = build_waveform_augment(config)
    assert [type(t) for t in waveform.transforms] == [TimeShift, PitchShift, AddBackgroundNoise, AddPinkNoise, AddGaussianSNR, Gain]
    assert waveform.transforms[-1] == Gain(min_gain_db=-6.0, max_gain_db=6.0, p=0.5)
    a = waveform(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(1))
    assert a.shape == clip.shape and np.array_equal(a, waveform(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(1)))
    assert build_batch_augment(config).transforms == (Mixup(alpha=0.4, label_mode="union", p=0.5),)
    spec = build_spectrogram_augment(config)
    assert [type(t) for t in spec.transforms] == [CutMix, FrequencyMask, TimeMask]
    features, targets = spec(torch.randn(4, 1, 16, 40), torch.eye(4), generator=torch.Generator().manual_seed(0))
    assert features.shape == (4, 1, 16, 40) and targets.shape == (4, 4)
    # YAML round trip (every parameter written out, tuples come back as tuples), and a plain dict builds the same
    to_yaml(config, tmp_path / "augment.yaml")
    saved = yaml.safe_load((tmp_path / "augment.yaml").read_text())
    assert saved["waveform"][0] == {"name": "time_shift", "p": 0.5, "shift": [-0.5, 0.5], "unit": "fraction", "rollover": True, "fade_duration": 0.005}
    assert from_yaml(AugmentConfig, tmp_path / "augment.yaml") == config
    assert build_waveform_augment(to_dict(config)) == waveform


def test_the_list_order_is_the_order_applied():
    config = AugmentConfig(waveform=[{"name": "gain", "p": 1.0, "gain_db": [6, 6]}, {"name": "time_shift", "p": 1.0}])
    assert [type(t) for t in build_waveform_augment(config).transforms] == [Gain, TimeShift]
    masks = AugmentConfig(spectrogram=[{"name": "time_mask"}, {"name": "freq_mask"}, {"name": "time_mask", "max_width": 3}])
    assert [type(t) for t in build_spectrogram_augment(masks).transforms] == [TimeMask, FrequencyMask, TimeMask]


def test_the_list_a_mixer_sits_in_is_its_domain():
    config = AugmentConfig(batch=[{"name": "cutmix", "labels": "union"}], spectrogram=[{"name": "mixup"}])
    assert build_batch_augment(config).transforms == (CutMix(alpha=1.0, label_mode="union", p=0.5),)
    assert [type(t) for t in build_spectrogram_augment(config).transforms] == [Mixup]


def test_an_entry_with_p_zero_is_checked_but_not_applied():
    config = AugmentConfig(waveform=[{"name": "gain", "p": 0}], spectrogram=[{"name": "time_mask", "p": 0.0}])
    assert len(build_waveform_augment(config)) == 0 and len(build_spectrogram_augment(config)) == 0
    with pytest.raises(ParameterError, match=r"AugmentConfig\.waveform\[0\]\.gain_db: Gain: min_gain_db \(6\.0\) > max_gain_db \(-6\.0\)"):
        AugmentConfig(waveform=[{"name": "gain", "p": 0, "gain_db": [6, -6]}])


def test_the_data_sets_background_noise_is_nested_as_training_always_nested_it(noise_dir):
    clips = sorted(p for p in noise_dir.rglob("*") if p.suffix in (".wav", ".flac"))
    on = AugmentConfig(waveform=[{"name": "background_noise", "snr_db": [5, 20]}, {"name": "gain"}, {"name": "time_shift"}])
    pipeline = build_waveform_augment(on, background=clips)
    noise = AddBackgroundNoise(clips, min_snr_db=5, max_snr_db=20, cache=True, p=0.5)
    assert pipeline == Compose([noise, Compose([Gain(min_gain_db=-6.0, max_gain_db=6.0), TimeShift()])])
    assert build_waveform_augment(on, background=[]) == Compose([Compose([Gain(min_gain_db=-6.0, max_gain_db=6.0), TimeShift()])])
    assert build_waveform_augment(on) == Compose([Gain(min_gain_db=-6.0, max_gain_db=6.0), TimeShift()])
    later = AugmentConfig(waveform=[{"name": "gain"}, {"name": "background_noise", "snr_db": [5, 20]}, {"name": "time_shift"}])
    assert build_waveform_augment(later, background=clips) == Compose([Gain(min_gain_db=-6.0, max_gain_db=6.0), noise, Compose([TimeShift()])])


def test_overrides_set_add_and_remove_entries(noise_dir):
    base = AugmentConfig()
    config = apply_overrides(base, ["waveform.gain.p=0.5", "waveform.gain.gain_db=[-3, 3]", f"waveform.background_noise.paths={noise_dir}"])
    assert [s.name for s in config.waveform] == ["background_noise", "gain"]
    assert config.waveform[1]["gain_db"] == (-3.0, 3.0) and config.waveform[0]["paths"] == (str(noise_dir),)
    config = apply_overrides(config, ["waveform.time_shift.p=0.2", "spectrogram.time_mask={max_width: 5}", "spectrogram.mixup.p=0.1"])
    assert [s.name for s in config.waveform] == ["time_shift", "background_noise", "gain"]  # where the flat layout applied it:
    # time shift before background noise from files (noise from the data set, without paths, came first)
    assert [s.name for s in config.spectrogram] == ["mixup", "time_mask"] and config.spectrogram[1]["max_width"] == 5
    assert apply_overrides(config, ["waveform.1.snr_db=[1, 2]"]).waveform[1]["snr_db"] == (1.0, 2.0)
    assert [s.name for s in apply_overrides(config, ["waveform.gain=null"]).waveform] == ["time_shift", "background_noise"]
    assert apply_overrides(config, ["batch=[{name: cutmix}]"]).batch == (TransformSpec("cutmix", p=0.5, alpha=1.0, labels="weighted", cut_frequency=True),)
    assert apply_overrides(config, ["waveform=[]"]).waveform == ()
    with pytest.raises(ParameterError, match=r"^AugmentConfig\.waveform\[2\]\.gain: unknown parameter of gain; known: gain_db, p$"):
        apply_overrides(config, ["waveform.gain.gain=2"])
    with pytest.raises(ParameterError, match=r"override 'wave\.gain\.p': unknown key; augment takes waveform, batch, spectrogram"):
        apply_overrides(config, ["wave.gain.p=2"])
    twice = AugmentConfig(spectrogram=[{"name": "time_mask"}, {"name": "time_mask"}])
    with pytest.raises(ParameterError, match=r"time_mask is listed 2 times; name it by position \(spectrogram\.0\.<param>\)"):
        apply_overrides(twice, ["spectrogram.time_mask.p=1"])
    assert apply_overrides(twice, ["spectrogram.1.p=1"]).spectrogram[1]["p"] == 1.0


def test_old_flat_override_names_still_work_and_match_the_new_ones():
    old = apply_overrides(AugmentConfig(), ["gain_p=0.5", "gain_db=[-3, 3]", "mixup_p=0.2", "mixup_domain=spectrogram", "freq_mask_p=0.5", "mask_fill=-1"])
    new = apply_overrides(AugmentConfig(), ["spectrogram.freq_mask={p: 0.5, fill: -1}", "waveform.gain={p: 0.5, gain_db: [-3, 3]}", "spectrogram.mixup.p=0.2"])
    assert old == new and [s.name for s in old.spectrogram] == ["mixup", "freq_mask"]
    assert apply_overrides(old, ["gain_p=0"]).waveform == old.waveform[:1]  # switched off: no entry, as migrated
    custom = AugmentConfig(waveform=[{"name": "gain"}, {"name": "background_noise"}])  # an order the flat layout lacks
    with pytest.raises(ParameterError, match=r"override 'gain_p': gain_p is a flat key of older versions, which these lists .* augment\.waveform\.gain\.p=0\.5"):
        apply_overrides(custom, ["gain_p=0.1"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"mixup_domain": "logits"}, r"AugmentConfig\.mixup_domain must be one of 'waveform', 'spectrogram', got 'logits'"),
        ({"gain_p": 0.5, "gain_db": (6.0, -6.0)}, r"AugmentConfig\.gain_db: Gain: min_gain_db \(6\.0\) > max_gain_db \(-6\.0\)"),
        ({"gain_p": -0.5}, r"AugmentConfig\.gain_p must be in \[0, 1\], got -0\.5"),
        ({"background_noise_p": 0.5, "background_noise_snr_db": (30.0, 3.0)}, r"AugmentConfig\.background_noise_snr_db: AddBackgroundNoise"),
        ({"mixup_p": 0.5, "mixup_labels": "sum"}, r"AugmentConfig\.mixup_labels: Mixup: label_mode must be one of"),
        ({"time_mask_p": 0.5, "time_mask_max_width": -1}, r"AugmentConfig\.time_mask_max_width: TimeMask: max_width must be"),
        ({"pitch_shift_p": 0.5, "pitch_shift_semitones": (1.0,)}, r"AugmentConfig\.pitch_shift_semitones: expected a list of 2 values"),
        ({"time_shift_p": 0.0, "time_shift": (2.0, 3.0)}, r"AugmentConfig\.time_shift: TimeShift: shift range"),  # off, still checked
        ({"unknown_p": 0.5}, r"AugmentConfig: unknown key\(s\) unknown_p; known: waveform, batch, spectrogram"),
        ({"gain_p": 0.5, "unknown_p": 0.5}, r"AugmentConfig: unknown key\(s\) unknown_p in the flat layout of older versions"),
        ({"gain_p": 0.5, "waveform": []}, r"AugmentConfig: the stage lists \(waveform\) and the flat keys of older versions \(gain_p\) cannot be mixed"),
        ({"waveform": [{"name": "gainz"}]}, r"AugmentConfig\.waveform\[0\]: unknown augmentation 'gainz'"),
        ({"waveform": [{"name": "gain"}, {"name": "mixup"}]}, r"AugmentConfig\.waveform\[1\]: mixup is not a waveform augmentation"),
        ({"waveform": [{"name": "gain", "gain": 3}]}, r"AugmentConfig\.waveform\[0\]\.gain: unknown parameter of gain; known: gain_db, p"),
        ({"waveform": [{"p": 0.5}]}, r"AugmentConfig\.waveform\[0\]: expected a mapping with a name and parameters"),
        ({"waveform": {"name": "gain"}}, r"AugmentConfig\.waveform: expected a list of transforms like \{name: gain, p: 0\.5\}"),
        ({"spectrogram": [{"name": "time_mask", "fill": [0]}]}, r"AugmentConfig\.spectrogram\[0\]\.fill: expected a finite number or a string"),
    ],
)  # fmt: skip
def test_invalid_config_is_one_line_naming_the_key(data, message):
    with pytest.raises(ParameterError, match=message) as info:
        from_dict(AugmentConfig, data)
    assert "\n" not in str(info.value)
    if not any(key.endswith(("_p", "_domain")) for key in data):  # direct construction is checked too
        with pytest.raises(ParameterError):
            AugmentConfig(**data)
