"""The recipes shipped as package data (``birdcall/recipes/*.yaml``): each loads into TrainConfig, ``birdcall
recipes`` lists them, ``train --recipe NAME`` equals ``--config <its file>``, and cpu_default is the default."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

import birdcall
from birdcall.cli import app
from birdcall.config import from_yaml
from birdcall.errors import ParameterError
from birdcall.train import TrainConfig
from birdcall.train.recipes import (
    DEFAULT_RECIPE,
    list_recipes,
    load_recipe,
    recipe_path,
    resolve_config,
)

FOLDER = Path(birdcall.__file__).parent / "recipes"
CONFIGS = sorted(FOLDER.glob("*.yaml"))
runner = CliRunner()


def test_there_are_recipes_and_pyproject_ships_them():
    assert {p.name for p in CONFIGS} >= {"cpu_default.yaml", "birdclef_gpu.yaml"}
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())
    assert "recipes/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["birdcall"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_recipe_loads(path):
    config = from_yaml(TrainConfig, path)
    assert config.folds == 5 and config != TrainConfig()
    assert load_recipe(path.stem) == config


def test_recipes_command_lists_every_shipped_file_with_its_description():
    result = runner.invoke(app, ["recipes"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == [p.stem for p in CONFIGS]
    described = list_recipes()
    assert all(description and "\n" not in description for description in described.values())
    assert described["cpu_default"].startswith("Default CPU-friendly recipe")
    assert any(line.startswith("cpu_default (default)  Default CPU-friendly recipe") for line in lines)


def test_default_is_cpu_default_and_recipe_equals_config_file():
    assert DEFAULT_RECIPE == "cpu_default"
    by_file = from_yaml(TrainConfig, recipe_path("cpu_default"))
    assert resolve_config() == by_file == resolve_config(recipe="cpu_default") == resolve_config(config_file=FOLDER / "cpu_default.yaml")
    assert by_file.model == "cnn_mobilenetv3_large" and by_file.select == "last" and by_file.features.pad == "wrap"


def test_unknown_recipe_and_both_sources_are_one_line_errors():
    with pytest.raises(ParameterError, match=r"unknown recipe 'nope'; known: birdclef_gpu, .*cpu_default"):
        resolve_config(recipe="nope")
    with pytest.raises(ParameterError, match="give one of them"):
        resolve_config(recipe="cpu_default", config_file=FOLDER / "cpu_default.yaml")


def test_train_cli_recipe_errors(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--recipe", "nope"])
    assert result.exit_code == 2 and "unknown recipe 'nope'; known: " in result.output and "cpu_default" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--recipe", "cpu_default",
                                 "--config", str(FOLDER / "cpu_default.yaml")])
    assert result.exit_code == 2 and "give one of them" in result.output


def test_train_cli_uses_the_default_recipe(tmp_path, monkeypatch):
    """Without --recipe/--config the run gets cpu_default (overrides on top); --recipe X equals --config X.yaml."""
    from birdcall import train

    seen = []

    def fake_fit_folds(table, config, out_dir, **kw):
        seen.append(config)
        return []

    monkeypatch.setattr(train, "fit_folds", fake_fit_folds)
    monkeypatch.setattr("birdcall.data.read_clip_table", lambda *a, **kw: type("T", (), {"problems": []})())
    for extra in ([], ["--recipe", "cpu_default"], ["--config", str(FOLDER / "cpu_default.yaml")]):
        result = runner.invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--quiet", *extra, "epochs=2"])
        assert result.exit_code == 0, result.output
    expected = from_yaml(TrainConfig, FOLDER / "cpu_default.yaml")
    assert len(seen) == 3 and all(c.epochs == 2 and c.model == expected.model and c.optim.lr == expected.optim.lr for c in seen)
    assert seen[0] == seen[1] == seen[2]


def test_train_help_names_the_select_rule():
    result = runner.invoke(app, ["train", "--help"])
    assert "select" in result.output and "--recipe" in result.output


# Each recipe's augment block before augment became lists of registered transforms (issue 18).
OLD_AUGMENT = {
    **{name: {"background_noise_p": 0.5} for name in ("birdclef_gpu", "birdclef_gpu_distill", "birdnet_finetune", "birdnet_mlp", "birdnet_probe")},
    **{name: {"background_noise_p": 0.5, "background_noise_snr_db": [3.0, 30.0]} for name in ("cnn_distill", "cpu_default")},
}
# What the flat code keyed the BirdNET heads' cached views on for that block (birdcall.train.probe): the cache stays valid.
OLD_VIEWS_KEY = (
    "(0.5, 3.0, 30.0, AugmentConfig(time_shift_p=0.0, time_shift=(-0.5, 0.5), time_shift_unit='fraction', time_shift_rollover=True, "
    "pitch_shift_p=0.0, pitch_shift_semitones=(-2.0, 2.0), background_noise_p=0.0, background_noise_paths=(), background_noise_snr_db=(3.0, 30.0), "
    "background_noise_cache=False, pink_noise_p=0.0, pink_noise_snr_db=(10.0, 40.0), gaussian_snr_p=0.0, gaussian_snr_db=(10.0, 40.0), "
    "gaussian_noise_p=0.0, gaussian_noise_amplitude=(0.001, 0.015), gain_p=0.0, gain_db=(-6.0, 6.0), mixup_p=0.0, mixup_alpha=0.4, "
    "mixup_labels='union', mixup_domain='waveform', cutmix_p=0.0, cutmix_alpha=1.0, cutmix_labels='weighted', cutmix_domain='spectrogram', "
    "cutmix_frequency=True, freq_mask_p=0.0, freq_mask_num_masks=2, freq_mask_max_width=8, time_mask_p=0.0, time_mask_num_masks=2, "
    "time_mask_max_width=20, mask_fill=0.0))"
)  # fmt: skip


@pytest.mark.parametrize("name", sorted(OLD_AUGMENT))
def test_each_recipe_augments_as_its_flat_block_did(name, legacy_stages, tmp_path):
    import numpy as np
    import torch

    from birdcall.audio import write_audio
    from birdcall.augment import AugmentConfig, build_batch_augment, build_spectrogram_augment
    from birdcall.config import from_dict
    from birdcall.testing.signals import pink_noise
    from birdcall.train.loop import waveform_augment
    from birdcall.train.probe import _augment_key

    config = load_recipe(name)
    assert config.augment == from_dict(AugmentConfig, OLD_AUGMENT[name])
    assert _augment_key(config.augment) == OLD_VIEWS_KEY
    background = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for i, path in enumerate(background):
        write_audio(path, pink_noise(rng=np.random.default_rng(i), duration=1.0 + i, sample_rate=16_000, rms=0.1), 16_000, subtype="FLOAT")
    old_wave, old_batch, old_spec = legacy_stages(OLD_AUGMENT[name], background)
    new_wave = waveform_augment(config, background)
    assert (new_wave, build_batch_augment(config.augment), build_spectrogram_augment(config.augment)) == (old_wave, old_batch, old_spec)
    for seed in range(4):  # the same outputs, and the generator left where the old pipeline left it
        clip = np.random.default_rng(100 + seed).standard_normal(8000).astype(np.float32) * 0.1
        rng_old, rng_new = np.random.default_rng(seed), np.random.default_rng(seed)
        assert np.array_equal(old_wave(clip, sample_rate=16_000, rng=rng_old), new_wave(clip, sample_rate=16_000, rng=rng_new))
        assert rng_old.random() == rng_new.random()
    g_old, g_new = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 100), torch.eye(4)
    assert all(torch.equal(a, b) for a, b in zip(old_batch(x, y, generator=g_old), build_batch_augment(config.augment)(x, y, generator=g_new)))
    assert torch.equal(torch.rand(3, generator=g_old), torch.rand(3, generator=g_new))
