from typer.testing import CliRunner

from birdcall.cli import app
from birdcall.config import from_yaml
from birdcall.features import FeatureConfig
from birdcall.train import TrainConfig


def test_write_default_round_trips(tmp_path):
    runner = CliRunner()
    for component, cls in (("train", TrainConfig), ("features", FeatureConfig)):
        path = tmp_path / f"{component}.yaml"
        result = runner.invoke(app, ["config", "write-default", component, str(path)])
        assert result.exit_code == 0, result.output
        assert from_yaml(cls, path) == cls()
    result = runner.invoke(app, ["config", "write-default", "nope", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2 and "unknown component 'nope'" in result.output


def test_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("synth", "score", "train", "predict", "demo", "models", "config"):
        assert command in result.output
