"""Older runs' flat ``config.yaml`` (TrainConfig before its component configs were nested) still loads, resumes and
takes the old ``key=value`` names; the files under tests/data/ were written by that flat TrainConfig."""

from pathlib import Path

import pytest
import yaml

from birdcall.config import apply_overrides, from_dict, from_yaml, to_dict
from birdcall.errors import ParameterError
from birdcall.train import TrainConfig
from birdcall.train.config import LEGACY_KEYS, migrate_flat
from birdcall.train.rundir import check_resume

DATA = Path(__file__).resolve().parents[2] / "data"
FLAT = DATA / "train_config_flat.yaml"  # the cpu_default recipe with some values changed, as a run saved it
FLAT_DEFAULTS = DATA / "train_config_flat_defaults.yaml"  # the flat TrainConfig()


def test_flat_defaults_are_the_nested_defaults():
    assert from_yaml(TrainConfig, FLAT_DEFAULTS) == TrainConfig()


def test_every_flat_key_lands_in_its_nested_place():
    flat = yaml.safe_load(FLAT.read_text())
    config = from_yaml(TrainConfig, FLAT)
    nested = to_dict(config)
    for key, target in LEGACY_KEYS.items():
        path, index = (target, None) if isinstance(target, str) else target
        group, name = path.split(".")
        value = nested[group][name] if index is None else nested[group][name][index]
        assert value == flat[key], key
    assert config.optim.lr == 0.002 and config.net.pool == "avgmax" and config.data.crop == "energy"
    assert config.augment.background_noise_snr_db == (5.0, 30.0) and config.augment.background_noise_paths == ()
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
    assert config.augment.background_noise_p == 0.5 and config.augment.background_noise_paths == (str(tmp_path),)


def test_old_flat_overrides_still_work():
    config = apply_overrides(TrainConfig(), ["lr=0.01", "loss=focal", "noise_max_snr_db=20", "pool=avgmax", "mix_p=0", "optim.momentum=0.5"])
    assert config.optim.lr == 0.01 and config.loss.loss == "focal" and config.augment.background_noise_snr_db == (3.0, 20.0)
    assert config.net.pool == "avgmax" and config.data.mix_p == 0.0 and config.optim.momentum == 0.5
    assert apply_overrides(TrainConfig(), ["loss.focal_gamma=1"]).loss.focal_gamma == 1.0


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
