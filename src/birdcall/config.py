"""Helpers for frozen config dataclasses: to_dict / from_dict / YAML round trips and ``key=value`` overrides.

Each component has one frozen dataclass (``FeatureConfig``, ``TrainConfig``...). These helpers are the only
(de)serialisation code, so a config saved beside a run or inside a checkpoint always reads back the same.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ParameterError

T = TypeVar("T")

__all__ = ["to_dict", "from_dict", "to_yaml", "from_yaml", "apply_overrides", "parse_override"]


def to_dict(config: Any) -> dict[str, Any]:
    """Plain ``dict`` of a config dataclass (tuples become lists, so it is JSON/YAML friendly)."""
    if not dataclasses.is_dataclass(config):
        raise ParameterError(f"expected a config dataclass, got {type(config).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a dict, rejecting unknown keys and converting lists back to tuples."""
    if not isinstance(data, dict):
        raise ParameterError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParameterError(f"{cls.__name__}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        hint = hints.get(key)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        else:
            value = _coerce(cls, key, value, hint)
        kwargs[key] = value
    return cls(**kwargs)


def _coerce(cls: type, key: str, value: Any, hint: Any) -> Any:
    """Convert scalars to the field's declared type where YAML guessed otherwise (``2e-3`` is a str in
    YAML 1.1, ``1`` an int for a float field); anything that does not convert is an error naming the key."""
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    for target in (float, int, str, bool):
        if target in allowed and isinstance(value, target) and not (target is int and isinstance(value, bool)):
            return value
    for target in (int, float):
        if target in allowed and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            try:
                converted = target(value)
            except ValueError:
                continue
            if target is int and isinstance(value, float) and converted != value:
                continue
            return converted
    if any(t in allowed for t in (float, int, str, bool)):
        raise ParameterError(f"{cls.__name__}.{key}: expected {hint}, got {value!r}")
    return value


def to_yaml(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def from_yaml(cls: type[T], path: str | Path) -> T:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ParameterError(f"{path}: cannot read config: {err}") from None
    return from_dict(cls, data)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value``; the value is read as YAML (so ``3``, ``0.5``, ``true``, ``[a, b]`` work)."""
    if "=" not in text:
        raise ParameterError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def apply_overrides(config: T, overrides: list[str] | dict[str, Any]) -> T:
    """Return a copy of ``config`` with overrides applied; dotted keys reach nested configs (``features.n_mels=64``)."""
    items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides)
    data = to_dict(config)
    for key, value in items:
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ParameterError(f"override {key!r}: {part!r} is not a nested config")
            node = node[part]
        if parts[-1] not in node:
            raise ParameterError(f"override {key!r}: unknown key; known: {', '.join(node)}")
        node[parts[-1]] = value
    return from_dict(type(config), data)
