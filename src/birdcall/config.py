"""Helpers for frozen config dataclasses: to_dict / from_dict / YAML round trips, ``key=value`` overrides, and
the checks every config runs on its fields.

Each component has one frozen dataclass (``FeatureConfig``, ``TrainConfig``...). These helpers are the only
(de)serialisation code, so a config saved beside a run or inside a checkpoint always reads back the same.

Validation has two halves. :func:`check_fields` (called first in each config's ``__post_init__``, so direct
construction is checked as well as YAML) checks every field against its annotation: a nested config must be
that config (or a mapping of it), a tuple field a list/tuple of the right element types, a scalar a scalar,
a float a finite number. Ranges (``lr > 0``, probabilities in [0, 1]...) follow in each ``__post_init__``,
with :func:`check_number` and :func:`check_choice`. Every error is one :class:`ParameterError` line that
names ``Class.key`` and the bad value.

A field may also hold a value class that is not a dataclass (``AugmentConfig``'s
:class:`~birdcall.augment.TransformSpec`): it defines ``to_dict()`` (its plain form) and a classmethod
``from_dict(data, *, where)`` (``where`` names the field in errors). A nested config may take ``key=value``
overrides of its own keys by defining a classmethod ``apply_override(data, key, value, index)`` that returns its
plain form with the change (``AugmentConfig`` does, for its lists and its older flat keys).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import operator
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ParameterError

T = TypeVar("T")

__all__ = [
    "apply_overrides",
    "check_choice",
    "check_fields",
    "check_number",
    "check_value",
    "from_dict",
    "from_yaml",
    "parse_override",
    "to_dict",
    "to_yaml",
]


def to_dict(config: Any) -> dict[str, Any]:
    """Plain ``dict`` of a config dataclass (tuples become lists, so it is JSON/YAML friendly)."""
    if not dataclasses.is_dataclass(config):
        raise ParameterError(f"expected a config dataclass, got {type(config).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(config), default=_plain))


def _plain(value: Any) -> Any:
    """The plain form of a field value json does not know: its ``to_dict()`` (a value class of a config)."""
    if callable(getattr(value, "to_dict", None)):
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} is not a config value")


def from_dict(cls: type[T], data: dict[str, Any], *, _where: str | None = None) -> T:
    """Build ``cls`` from a dict, rejecting unknown keys and values of the wrong type (lists become tuples).

    Raises:
        ParameterError: not a mapping, an unknown key, or a bad value; the message names ``Class.key``
            (``TrainConfig.features.n_mels`` for nested configs).
    """
    where = _where or cls.__name__
    if not isinstance(data, Mapping):
        raise ParameterError(f"{where}: expected a mapping, got {_show(data)}")
    migrate = getattr(cls, "migrate_dict", None)
    if callable(migrate):  # an older layout of the config (e.g. TrainConfig's flat keys) moved to the current one
        try:
            data = migrate(data)
        except ParameterError as err:
            if _where is None:
                raise
            raise ParameterError(f"{where}: {err}") from None  # a nested config: say where it sits
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(data) - set(fields))
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    hints = _hints(cls)
    kwargs = {key: _coerce(where, key, value, hints.get(key, Any)) for key, value in data.items()}
    try:
        return cls(**kwargs)
    except ParameterError as err:
        if _where is None:
            raise
        raise ParameterError(f"{where}: {err}") from None  # a nested config: say where it sits


def check_fields(config: Any) -> None:
    """Check (and normalise in place) every field of a frozen config dataclass against its annotation.

    Ints given for float fields become floats, lists for tuple fields tuples, path objects for ``str`` fields
    strings, a mapping for a nested config that config; NaN and infinities are refused. Call it first in
    ``__post_init__``.

    Raises:
        ParameterError: ``Class.key: expected <type>, got <value>``.
    """
    cls = type(config)
    hints = _hints(cls)
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        checked = _coerce(cls.__name__, field.name, value, hints.get(field.name, Any))
        if checked is not value:
            object.__setattr__(config, field.name, checked)


def check_number(
    config: Any,
    key: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    none_ok: bool = False,
    note: str = "",
) -> None:
    """Range check of ``config.<key>`` (already type-checked by :func:`check_fields`).

    Raises:
        ParameterError: ``Class.key must be >= 0, got -1``.
    """
    value = getattr(config, key)
    if value is None and none_ok:
        return
    bounds = ((ge, operator.ge), (gt, operator.gt), (le, operator.le), (lt, operator.lt))
    if value is None or not all(bound is None or holds(value, bound) for bound, holds in bounds):
        low, high = (ge, "[") if ge is not None else (gt, "("), (le, "]") if le is not None else (lt, ")")
        if low[0] is not None and high[0] is not None:
            wanted = f"in {low[1]}{low[0]:g}, {high[0]:g}{high[1]}"
        else:
            wanted = " and ".join(f"{op} {bound:g}" for op, bound in ((">=", ge), (">", gt), ("<=", le), ("<", lt)) if bound is not None)
        wanted += " (or null)" if none_ok else ""
        raise ParameterError(f"{type(config).__name__}.{key} must be {wanted}{note}, got {_show(value)}")


def check_choice(config: Any, key: str, choices: Iterable[Any]) -> None:
    """``config.<key>`` must be one of ``choices``."""
    choices = tuple(choices)
    value = getattr(config, key)
    if value not in choices:
        raise ParameterError(f"{type(config).__name__}.{key} must be one of {', '.join(map(repr, choices))}, got {_show(value)}")


# ------------------------------------------------------------------------------------------------ type checks


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if isinstance(hint, type):
        return {float: "a finite number", int: "an integer", str: "a string", bool: "true or false"}.get(
            hint, f"{hint.__name__} (a mapping)" if dataclasses.is_dataclass(hint) else hint.__name__
        )
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            plural = getattr(args[0], "config_plural", None)  # a value class may say what a list of it holds
            return f"a list of {plural or _describe(args[0]).removeprefix('a ').removeprefix('an ') + 's'}"
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
    return str(hint)


class _Mismatch(Exception):
    """The value does not fit one type of a union; the caller reports the whole annotation."""


def check_value(owner: str, key: str, value: Any, hint: Any) -> Any:
    """``value`` converted to the type ``hint`` as a config field of that type would be (ints for floats become
    floats, lists for tuples tuples...), for values checked outside a dataclass.

    Raises:
        ParameterError: ``owner.key: expected <type>, got <value>``.
    """
    return _coerce(owner, key, value, hint)


def _coerce(owner: str, key: str, value: Any, hint: Any) -> Any:
    """``value`` converted to the field type ``hint``, or a ParameterError naming ``owner.key``."""
    try:
        return _convert(owner, key, value, hint)
    except _Mismatch:
        raise ParameterError(f"{owner}.{key}: expected {_describe(hint)}, got {_show(value)}") from None


def _convert(owner: str, key: str, value: Any, hint: Any) -> Any:
    if hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise _Mismatch
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(owner, key, value, option)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is tuple:
        if isinstance(value, str) and args == (str, Ellipsis):
            return (value,)  # one path or name for a list of them
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if len(args) == 2 and args[1] is Ellipsis:
            kinds = (args[0],) * len(value)
        elif args:
            if len(value) != len(args):
                raise _Mismatch
            kinds = args
        else:
            return tuple(value)
        converted = tuple(_convert(owner, f"{key}[{i}]", v, k) for i, (v, k) in enumerate(zip(value, kinds)))
        return value if isinstance(value, tuple) and all(a is b for a, b in zip(converted, value)) else converted
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return from_dict(hint, dict(value), _where=f"{owner}.{key}")
        raise _Mismatch
    if isinstance(hint, type) and callable(getattr(hint, "from_dict", None)) and callable(getattr(hint, "to_dict", None)):
        return value if isinstance(value, hint) else hint.from_dict(value, where=f"{owner}.{key}")  # a value class
    if hint is bool:
        if isinstance(value, bool):
            return value
        if type(value).__name__ == "bool_":  # numpy.bool_
            return bool(value)
        raise _Mismatch
    if hint is float:
        number = _number(value, float)
        if not math.isfinite(number):
            raise ParameterError(f"{owner}.{key}: must be a finite number, got {_show(value)}")
        return value if type(value) is float else number
    if hint is int:
        number = _number(value, int)
        return value if type(value) is int else number
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise _Mismatch
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _Mismatch
    return value


def _number(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (float or int). Numbers and numeric strings (YAML 1.1 reads ``2e-3`` as a string)
    convert; an int field takes a float only when it is whole. Booleans, lists, mappings... do not."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise _Mismatch
    if isinstance(value, str):
        text = value  # float() and int() skip the whitespace they know; str.strip() would also drop e.g. "\x1f"
        try:
            return kind(text)
        except ValueError:
            if kind is int:
                try:
                    as_float = float(text)
                except ValueError:
                    raise _Mismatch from None
                if math.isfinite(as_float) and as_float.is_integer():
                    return int(as_float)
            raise _Mismatch from None
    if kind is float:
        if isinstance(value, numbers.Real):
            return float(value)
        raise _Mismatch
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        return int(value)
    raise _Mismatch


# ----------------------------------------------------------------------------------------------------- files


def to_yaml(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def from_yaml(cls: type[T], path: str | Path) -> T:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ParameterError(f"{path}: cannot read config: {' '.join(str(err).split())}") from None
    try:
        return from_dict(cls, data)
    except ParameterError as err:
        raise ParameterError(f"{path}: {err}") from None


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
    """Return a copy of ``config`` with overrides applied; dotted keys reach nested configs (``features.n_mels=64``).

    A config class with ``LEGACY_KEYS`` (old name -> dotted path, or (path, index) for one end of a pair) also
    takes the old names (``lr=0.002`` for ``optim.lr=0.002``). A nested config with an ``apply_override`` classmethod
    sets the keys below it itself (``augment.waveform.gain.p=0.5``, see :class:`~birdcall.augment.AugmentConfig`).
    """
    items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides)
    data = to_dict(config)
    legacy = getattr(type(config), "LEGACY_KEYS", {})
    for key, value in items:
        index = None
        if key in legacy and not (isinstance(data.get(key), dict) and isinstance(value, Mapping)):
            key, index = (legacy[key], None) if isinstance(legacy[key], str) else legacy[key]
        _override(type(config), data, key, value, index)
    return from_dict(type(config), data)


def _override(cls: type, data: dict, key: str, value: Any, index: int | None) -> None:
    """Set the dotted ``key`` of the plain form ``data`` of ``cls`` in place (``index``: one end of a pair)."""
    node, owner = data, cls
    parts = key.split(".")
    for depth in range(len(parts)):
        hook = getattr(owner, "apply_override", None)
        if callable(hook):
            try:
                changed = hook(node, ".".join(parts[depth:]), value, index)
            except ParameterError as err:
                raise ParameterError(f"override {key!r}: {err}") from None
            node.clear()
            node.update(changed)
            return
        if depth == len(parts) - 1:
            break
        if not isinstance(node.get(parts[depth]), dict):
            raise ParameterError(f"override {key!r}: {parts[depth]!r} is not a nested config")
        node, owner = node[parts[depth]], _hints(owner).get(parts[depth]) if dataclasses.is_dataclass(owner) else None
    if parts[-1] not in node:
        raise ParameterError(f"override {key!r}: unknown key; known: {', '.join(node)}")
    if index is None:
        node[parts[-1]] = value
    else:
        node[parts[-1]] = [value if i == index else v for i, v in enumerate(node[parts[-1]])]
