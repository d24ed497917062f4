"""The shipped recipes under configs/ load into TrainConfig (unknown keys or bad values would raise)."""

from pathlib import Path

import pytest

from birdcall.config import from_yaml
from birdcall.train import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs").glob("*.yaml"))


def test_there_are_recipes():
    assert {p.name for p in CONFIGS} >= {"cpu_default.yaml", "birdclef_gpu.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_recipe_loads(path):
    config = from_yaml(TrainConfig, path)
    assert config.folds == 5 and config != TrainConfig()
