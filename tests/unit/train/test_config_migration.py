"""Older runs' ``config.yaml`` still loads, resumes and takes the old ``key=value`` names: the flat TrainConfig
(before its component configs were nested; train_config_flat*.yaml) and the nested one whose ``augment`` was still
flat (before it became lists of registered transforms; train_config_flat_augment.yaml)."""

from pathlib import Path

import pytest
import yaml

from birdcall.augment import TransformSpec
from birdcall.config import apply_overrides, from_dict, from_yaml, to_dict
from birdcall.errors import ParameterError
from birdcall.train import TrainConfig
from birdcall.train.config import LEGACY_KEYS, migrate_flat
from birdcall.train.recipes import load_recipe
from birdcall.train.rundir import check_resume

DATA = Path(__file__).resolve().parents[2] / "data"
FLAT = DATA / "train_config_flat.yaml"  # the cpu_default recipe with some values changed, as a run saved it
FLAT_DEFAULTS = DATA / "train_config_flat_defaults.yaml"  # the flat TrainConfig()
FLAT_AUGMENT = DATA / "train_config_flat_augment.yaml"  # cpu_default (shrunk to test_cnn) with most augmentations on, flat augment


def test_flat_defaults_are_the_nested_defaults():
    assert from_yaml(TrainConfig, FLAT_DEFAULTS) == TrainConfig()


def test_every_flat_key_lands_in_its_nested_place():
    flat = yaml.safe_load(FLAT.read_text())
    config = from_yaml(TrainConfig, FLAT)
    nested = to_dict(config)
    for key, target in LEGACY_KEYS.items():
        path, index = (target, None) if isinstance(target, str) else target
        group, name = path.split(".")
        node = config.augment.to_flat() if group == "augment" else nested[group]  # augment: its old flat fields
        value = node[name] if index is None else node[name][index]
        assert value == flat[key], key
    assert config.optim.lr == 0.002 and config.net.pool == "avgmax" and config.data.crop == "energy"
    assert config.augment.waveform == (TransformSpec("background_noise", p=0.5, snr_db=(5.0, 30.0), paths=(), cache=False),)
    assert not set(nested) & {k for k in LEGACY_KEYS if k != "loss"}


def test_nested_form_passes_through_and_a_key_given_twice_is_refused():
    nested = to_dict(TrainConfig())
    assert migrate_flat(nested) == nested
    with pytest.raises(ParameterError, match="lr is given twice"):
        from_dict(TrainConfig, {"lr": 0.1, "optim": {"lr": 0.2}})


def test_both_kinds_of_background_noise_cannot_be_migrated(tmp_path):
    flat = yaml.safe_load(FLAT.read_text())
    flat["augment"].update(background_noise_p=0.5, background_noise_paths=[str(tmp_path)])
    with pytest.raises(ParameterError, match="noise_p and augment.background_noise_p are both on"):
        from_dict(TrainConfig, flat)
    flat["noise_p"] = 0.0  # the old augment's own noise files only: kept as they were
    config = from_dict(TrainConfig, flat)
    assert config.augment.waveform == (TransformSpec("background_noise", p=0.5, snr_db=(3.0, 30.0), paths=(str(tmp_path),), cache=False),)
    flat["noise_p"], flat["noise_min_snr_db"] = 0.0, 40.0  # off, and still checked as before
    with pytest.raises(ParameterError, match=r"^TrainConfig\.noise_min_snr_db/noise_max_snr_db: AddBackgroundNoise: min_snr_db \(40\.0\) > max"):
        from_dict(TrainConfig, flat)


def test_old_flat_overrides_still_work():
    config = apply_overrides(TrainConfig(), ["lr=0.01", "loss=focal", "noise_max_snr_db=20", "pool=avgmax", "mix_p=0", "optim.momentum=0.5"])
    assert config.optim.lr == 0.01 and config.loss.loss == "focal" and config.augment.waveform[0]["snr_db"] == (3.0, 20.0)
    assert config.net.pool == "avgmax" and config.data.mix_p == 0.0 and config.optim.momentum == 0.5
    assert apply_overrides(TrainConfig(), ["loss.focal_gamma=1"]).loss.focal_gamma == 1.0
    assert apply_overrides(TrainConfig(), ["noise_p=0"]).augment.waveform == ()  # the data set's noise off: no entry


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["augment.time_shift_p=0.3"], ["augment.waveform.time_shift.p=0.3"]),
        (["augment.gain_p=0.5", "augment.gain_db=[-3, 3]"], ["augment.waveform.gain={p: 0.5, gain_db: [-3, 3]}"]),
        (["augment.mixup_p=0.5", "augment.mixup_domain=spectrogram"], ["augment.spectrogram.mixup.p=0.5"]),
        (["augment.cutmix_p=0.5", "augment.cutmix_domain=waveform", "augment.freq_mask_p=1"], ["augment.spectrogram.freq_mask.p=1", "augment.batch.cutmix.p=0.5"]),
        (["noise_min_snr_db=10", "augment.background_noise_p=0.2"], ["augment.waveform.background_noise={p: 0.2, snr_db: [10, 30]}"]),
        (["augment.background_noise_p=0"], ["augment.waveform.background_noise=null"]),
    ],
)  # fmt: skip
def test_augment_overrides_old_and_new_spellings_agree(old, new):
    base = load_recipe("cpu_default")
    assert apply_overrides(base, old) == apply_overrides(base, new) != base


def test_a_saved_config_with_the_flat_augment_loads_in_the_old_order():
    config = from_yaml(TrainConfig, FLAT_AUGMENT)
    assert [s.name for s in config.augment.waveform] == ["background_noise", "time_shift", "pink_noise", "gain"]
    assert [s.name for s in config.augment.batch] == ["mixup"] and [s.name for s in config.augment.spectrogram] == ["cutmix", "freq_mask", "time_mask"]
    assert config.augment.spectrogram[1] == TransformSpec("freq_mask", p=0.8, num_masks=2, max_width=4, min_width=0, fill=0.0)
    flat = {k: list(v) if isinstance(v, tuple) else v for k, v in config.augment.to_flat().items()}
    assert flat == yaml.safe_load(FLAT_AUGMENT.read_text())["augment"]  # and back to the very fields it was saved with


def test_a_run_saved_with_the_flat_augment_resumes_with_the_lists(tmp_path):
    saved = yaml.safe_load(FLAT_AUGMENT.read_text())  # the fingerprint's config, as fit stored it in train_state.pt
    lists = dict(saved, augment={
        "waveform": [{"name": "background_noise", "p": 0.5, "snr_db": [3, 30]}, {"name": "time_shift", "p": 0.5},
                     {"name": "pink_noise", "p": 0.3}, {"name": "gain", "p": 0.5}],
        "batch": [{"name": "mixup", "p": 0.5}],
        "spectrogram": [{"name": "cutmix", "p": 0.5}, {"name": "freq_mask", "p": 0.8, "max_width": 4}, {"name": "time_mask", "p": 0.8, "max_width": 4}],
    })  # the same recipe written in the new form
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(lists))
    config = from_yaml(TrainConfig, tmp_path / "recipe.yaml")
    assert config == from_yaml(TrainConfig, FLAT_AUGMENT)
    data = {"files": "a", "labels": "b", "split": "c"}
    state = {"fingerprint": {"config": saved, "data": dict(data)}}
    check_resume(Path("train_state.pt"), state, {"config": to_dict(config), "data": data})
    changed = apply_overrides(config, ["augment.spectrogram.time_mask.max_width=5", "augment.waveform.gain=null"])
    with pytest.raises(ParameterError, match=r"config differs in augment\.waveform \(\['background_noise', 'time_shift', 'pink_noise', 'gain'\] -> "
                                             r"\['background_noise', 'time_shift', 'pink_noise'\]\), augment\.spectrogram\.time_mask\.max_width \(4 -> 5\), "
                                             r"augment\.waveform\.gain\.p \(0\.5 -> '<unset>'\), augment\.waveform\.gain\.gain_db \(\[-6\.0, 6\.0\] -> '<unset>'\)$"):
        check_resume(Path("train_state.pt"), state, {"config": to_dict(changed), "data": data})  # named as overrides spell them


def test_resume_accepts_the_state_of_an_old_flat_run_and_still_sees_a_change():
    flat = yaml.safe_load(FLAT.read_text())
    config = from_dict(TrainConfig, flat)
    data = {"files": "a", "labels": "b", "split": "c"}
    current = {"config": to_dict(config), "data": data}
    state = {"fingerprint": {"config": flat, "data": dict(data)}}  # what fit saved in train_state.pt before
    check_resume(Path("train_state.pt"), state, current)
    changed = {"config": to_dict(apply_overrides(config, ["optim.lr=0.5"])), "data": data}
    with pytest.raises(ParameterError, match=r"config differs in optim\.lr \(0\.002 -> 0\.5\)"):
        check_resume(Path("train_state.pt"), state, changed)
