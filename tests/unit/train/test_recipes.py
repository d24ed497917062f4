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
    pyproject = (Path(__file__).resolve().parents[3] / "pyproject.toml").read_text()
    assert '[tool.setuptools.package-data]\nbirdcall = ["recipes/*.yaml"]' in pyproject


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
