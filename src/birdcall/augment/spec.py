"""Registered augmentations and the entries of a recipe that name them.

A recipe's augmentation (:class:`~birdcall.augment.AugmentConfig`) is three lists of :class:`TransformSpec`, a
registered name with its parameters (``{name: gain, p: 0.5, gain_db: [-6, 6]}`` in YAML). The registry,
:data:`AUGMENTATIONS`, maps each name to its entry point: a function (or class) whose keyword arguments are the
parameters, with their types and defaults, and which returns the transform. It also says which stages the
transform fits: ``waveform`` (one clip, numpy), ``batch`` (a batch of waveforms, torch) and ``spectrogram`` (a
batch of features, torch). Register your own with :func:`register_augmentation`::

    @register_augmentation(stages=("waveform",))
    def clip_peaks(*, limit: float = 0.5, p: float = 0.5) -> ClipPeaks:
        return ClipPeaks(limit=limit, p=p)

and name it in a recipe (``{name: clip_peaks, limit: 0.8, p: 0.3}``) after importing the module that registers it.

:func:`resolve_spec` checks an entry against its entry point (the name, the stage, every parameter's type, the
entry point's own checks) and fills the defaults in, so that a resolved entry lists every parameter and a saved
config compares equal to the one it was loaded from. :func:`create_augmentation` builds the transform.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import re
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .._validate import is_number
from ..config import check_value
from ..errors import ParameterError
from ..registry import Registry
from .base import BaseTransform

__all__ = [
    "AUGMENTATIONS",
    "STAGES",
    "Augmentation",
    "TransformSpec",
    "create_augmentation",
    "naming",
    "register_augmentation",
    "resolve_spec",
]

STAGES = ("waveform", "batch", "spectrogram")


class TransformSpec:
    """One entry of an augmentation stage: a registered ``name`` and its parameters (immutable).

    Example:
        >>> spec = TransformSpec("gain", p=0.5, gain_db=(-3.0, 3.0))
        >>> spec["p"], spec.to_dict()
        (0.5, {'name': 'gain', 'p': 0.5, 'gain_db': [-3.0, 3.0]})
    """

    __slots__ = ("_name", "_params")
    config_plural = "transforms like {name: gain, p: 0.5}"  # "expected a list of ..." in config errors

    def __init__(self, name: str, /, **params: Any):
        if not isinstance(name, str) or not name:
            raise ParameterError(f"TransformSpec: name must be a registered augmentation name, got {name!r}")
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_params", {key: _frozen(value) for key, value in params.items()})

    @property
    def name(self) -> str:
        return self._name

    @property
    def params(self) -> Mapping[str, Any]:
        """The parameters, read-only (lists given are tuples here)."""
        return MappingProxyType(self._params)

    def __getitem__(self, key: str) -> Any:
        return self._params[key]

    def replace(self, **params: Any) -> TransformSpec:
        """A copy with some parameters changed or added."""
        return TransformSpec(self._name, **{**self._params, **params})

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., **params}`` in plain (YAML/JSON) types."""
        return {"name": self._name, **{key: _plain(value) for key, value in self._params.items()}}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "TransformSpec") -> TransformSpec:
        """The entry of a mapping ``{name: ..., <parameter>: <value>...}`` (as in a YAML recipe).

        Raises:
            ParameterError: ``<where>: ...`` when ``data`` is not such a mapping.
        """
        if isinstance(data, TransformSpec):
            return data
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str) or not data["name"]:
            raise ParameterError(f"{where}: expected a mapping with a name and parameters, like {{name: gain, p: 0.5}}, got {_show(data)}")
        keys = [key for key in data if not isinstance(key, str)]
        if keys:
            raise ParameterError(f"{where}: parameter names must be strings, got {keys[0]!r}")
        return cls(data["name"], **{key: value for key, value in data.items() if key != "name"})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TransformSpec) and (self._name, self._params) == (other._name, other._params)

    def __hash__(self) -> int:
        return hash((self._name, tuple(sorted(self._params.items()))))

    def __repr__(self) -> str:
        args = "".join(f", {key}={value!r}" for key, value in self._params.items())
        return f"TransformSpec({self._name!r}{args})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("TransformSpec is immutable; use replace()")

    def __reduce__(self):
        return (_spec, (self._name, self._params))


def _spec(name: str, params: dict[str, Any]) -> TransformSpec:
    return TransformSpec(name, **params)


def _frozen(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class Augmentation:
    """A registered augmentation.

    Attributes:
        name: the name recipes use.
        build: the entry point: keyword arguments (the parameters, ``p`` among them) -> the transform.
        stages: the stages it fits, of :data:`STAGES`.
        check: checks the parameters without building (for an entry point that reads files); None: building is
            the check.
    """

    name: str
    build: Callable[..., BaseTransform]
    stages: tuple[str, ...]
    check: Callable[..., Any] | None = None

    @functools.cached_property
    def parameters(self) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(self.build).parameters)

    @functools.cached_property
    def hints(self) -> dict[str, Any]:
        target = self.build.__init__ if isinstance(self.build, type) else self.build
        try:
            return typing.get_type_hints(target)
        except Exception:  # noqa: BLE001 - annotations that do not resolve: the values are taken as they are
            return {}


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


def register_augmentation(
    fn: Callable[..., BaseTransform] | None = None,
    *,
    stages: tuple[str, ...] | list[str],
    name: str | None = None,
    check: Callable[..., Any] | None = None,
):
    """Decorator: make an entry point (a function or a transform class) known to recipes by ``name`` (default:
    the function's name).

    Its parameters must all be keyword arguments, ``p`` (the probability per clip or per example) among them;
    annotate them so that values from YAML are checked and converted (``tuple[float, float]`` for a range).

    Args:
        stages: where it may be listed: ``"waveform"`` for a transform of one clip
            (:class:`~birdcall.augment.WaveformTransform`), ``"batch"`` and/or ``"spectrogram"`` for a batch
            transform on waveforms or features.
        name: the name in recipes.
        check: a function taking the same arguments that checks them without building (for an entry point that
            reads files); by default the config builds the transform to check it.

    Raises:
        ParameterError: a name registered twice, an unknown stage, or a signature without ``p`` or with
            positional-only or variable arguments.
    """
    stages = tuple(stages) if isinstance(stages, (list, tuple)) else (stages,)
    if not stages or any(stage not in STAGES for stage in stages):
        raise ParameterError(f"register_augmentation: stages must be some of {', '.join(STAGES)}, got {stages!r}")

    def wrap(f: Callable[..., BaseTransform]) -> Callable[..., BaseTransform]:
        key = name or getattr(f, "__name__", None)
        entry = Augmentation(name=key, build=f, stages=stages, check=check)
        params = entry.parameters
        bad = [n for n, p in params.items() if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if bad or "p" not in params:
            raise ParameterError(f"register_augmentation: {key} must take keyword parameters only, p among them; got ({', '.join(params)})")
        AUGMENTATIONS.register(entry, name=key)
        return f

    return wrap(fn) if fn is not None else wrap


class _NamedError(ParameterError):
    """An entry point's error attributed to some of its parameters (see :func:`naming`)."""

    def __init__(self, params: tuple[str, ...], message: str):
        super().__init__(message)
        self.params, self.message = params, message


_ARGUMENT = re.compile(r"^[\w.]+: (\w+)")  # birdcall's messages: "<Class>: <argument> ..."


@contextlib.contextmanager
def naming(*params: str, **arguments: str) -> Iterator[None]:
    """Attribute an error raised inside (building a transform) to one of the entry point's ``params``, so the
    config names that key.

    The error's message names the transform's argument first (``TimeMask: max_width must be ...``); the parameter
    is the one whose name, or ``min_``/``max_`` and its name, is that argument; ``arguments`` gives an argument
    named otherwise (``unit="shift_unit"``). When none matches, the error names all ``params``. (Without this,
    the config tries the same match on all the entry point's parameters, else names the entry.)
    """
    try:
        yield
    except _NamedError:
        raise
    except (ParameterError, TypeError, ValueError) as err:
        raise _NamedError(_named(str(err), params, arguments) or params, str(err)) from None


def _named(message: str, params: tuple[str, ...], arguments: Mapping[str, str]) -> tuple[str, ...]:
    """The parameter whose argument the message names first, as a 1-tuple, or ``()``."""
    match = _ARGUMENT.match(message)
    word = match.group(1) if match else None
    hit = [p for p in params if word in {(a := arguments.get(p, p)), f"min_{a}", f"max_{a}"}]
    return tuple(hit[:1])


def resolve_spec(spec: TransformSpec, stage: str, *, owner: str, keys: Mapping[str, str] | None = None) -> TransformSpec:
    """``spec`` checked for ``stage``, with every parameter of its entry point (defaults filled in, values converted
    to the annotated types).

    Args:
        owner: names the entry in errors (``AugmentConfig.waveform[1]``); a parameter is ``<owner>.<key>``.
        keys: the key shown for a parameter, when not its own name (the flat keys of older configs).

    Raises:
        ParameterError: one line naming the key: an unknown name or parameter, a stage the transform does not fit,
            a value of the wrong type or out of range.
    """
    keys = keys or {}
    if spec.name not in AUGMENTATIONS:
        raise ParameterError(f"{owner}: unknown augmentation {spec.name!r}; registered: {', '.join(AUGMENTATIONS.names())}")
    entry = AUGMENTATIONS.get(spec.name)
    if stage not in entry.stages:
        raise ParameterError(f"{owner}: {spec.name} is not a {stage} augmentation (it fits: {', '.join(entry.stages)})")
    unknown = [key for key in spec.params if key not in entry.parameters]
    if unknown:
        raise ParameterError(f"{owner}.{keys.get(unknown[0], unknown[0])}: unknown parameter of {spec.name}; known: {', '.join(entry.parameters)}")
    params = {}
    for key, parameter in entry.parameters.items():
        if key in spec.params:
            params[key] = check_value(owner, keys.get(key, key), spec.params[key], entry.hints.get(key, Any))
        elif parameter.default is not inspect.Parameter.empty:
            params[key] = parameter.default
        else:
            raise ParameterError(f"{owner}.{keys.get(key, key)}: required by {spec.name}")
    params = {"p": params.pop("p"), **params}  # p first: YAML reads name, p, then the rest
    p = params["p"]
    if not is_number(p) or not (math.isfinite(p) and 0 <= p <= 1):
        raise ParameterError(f"{owner}.{keys.get('p', 'p')} must be in [0, 1], got {_show(p)}")
    try:
        built = (entry.check or entry.build)(**params)
    except _NamedError as err:
        raise ParameterError(f"{owner}.{'/'.join(keys.get(k, k) for k in err.params)}: {err.message}") from None
    except (ParameterError, TypeError, ValueError) as err:  # an entry point without naming(): the message may name it
        named = _named(str(err), tuple(params), {})
        where = f"{owner}.{keys.get(named[0], named[0])}" if named else f"{owner} ({spec.name})"
        raise ParameterError(f"{where}: {err}") from None
    if entry.check is None and not isinstance(built, BaseTransform):
        raise ParameterError(f"{owner} ({spec.name}): the entry point returned {type(built).__name__}, not a birdcall transform")
    return TransformSpec(spec.name, **params)


def create_augmentation(spec: TransformSpec, *, owner: str | None = None, **params: Any) -> BaseTransform:
    """The transform of a (resolved) entry; ``params`` replace some of its parameters.

    Raises:
        ParameterError: the entry point refuses them (e.g. background noise paths without audio files).
    """
    entry = AUGMENTATIONS.get(spec.name)
    try:
        return entry.build(**{**spec.params, **params})
    except (ParameterError, TypeError, ValueError) as err:
        message = err.message if isinstance(err, _NamedError) else str(err)
        raise ParameterError(f"{owner or spec.name}: {message}") from None
