"""Training recipes shipped with the package: ``birdcall/recipes/<name>.yaml``, each a :class:`TrainConfig` in YAML.

``birdcall train`` without ``--recipe`` or ``--config`` trains :data:`DEFAULT_RECIPE`, the recipe the benchmarks
measured (``benchmarks/RESULTS.md``). Each file opens with a comment whose first sentence describes it.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from ..config import from_yaml
from ..errors import ParameterError
from .config import TrainConfig

__all__ = ["DEFAULT_RECIPE", "list_recipes", "load_recipe", "recipe_path", "resolve_config"]

DEFAULT_RECIPE = "cpu_default"
"""The recipe ``birdcall train`` uses when given neither ``--recipe`` nor ``--config``."""


def _folder() -> Path:
    return Path(str(resources.files("birdcall") / "recipes"))


def _names() -> list[str]:
    return sorted(p.stem for p in _folder().glob("*.yaml"))


def _description(path: Path) -> str:
    """First sentence of the file's leading comment block (one line)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(" ".join(lines).split())
    match = re.match(r"(.*?\.)(\s|$)", text)
    return match.group(1) if match else text


def list_recipes() -> dict[str, str]:
    """``{name: one-line description}`` of every shipped recipe, sorted by name."""
    return {name: _description(recipe_path(name)) for name in _names()}


def recipe_path(name: str) -> Path:
    """The YAML file of the shipped recipe ``name``.

    Raises:
        ParameterError: no such recipe (the message lists the known names).
    """
    names = _names()
    if name not in names:
        raise ParameterError(f"unknown recipe {name!r}; known: {', '.join(names)} (`birdcall recipes` describes them)")
    return _folder() / f"{name}.yaml"


def load_recipe(name: str) -> TrainConfig:
    """The shipped recipe ``name`` as a :class:`TrainConfig`."""
    return from_yaml(TrainConfig, recipe_path(name))


def resolve_config(*, recipe: str | None = None, config_file: str | Path | None = None) -> TrainConfig:
    """The config a training run starts from: a shipped recipe, a YAML file, or :data:`DEFAULT_RECIPE` when
    neither is given.

    Raises:
        ParameterError: both given, an unknown recipe, or a file that does not load.
    """
    if recipe is not None and config_file is not None:
        raise ParameterError("--recipe names a shipped recipe and --config a YAML file: give one of them")
    if config_file is not None:
        return from_yaml(TrainConfig, config_file)
    return load_recipe(recipe if recipe is not None else DEFAULT_RECIPE)
