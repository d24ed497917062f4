"""One generic registry: a name -> entry-point function map filled by a decorator.

Used for model architectures (``@register_model``, ``create_model(name, **kw)``) in the style of timm's
``_registry.py``; other subsystems (transforms, features) can make their own ``Registry`` instance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import ParameterError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["Registry"]


class Registry(Generic[F]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, F] = {}

    def register(self, fn: F | None = None, *, name: str | None = None):
        """Decorator: ``@registry.register`` or ``@registry.register(name="x")``."""

        def wrap(f: F) -> F:
            key = name or f.__name__
            if key in self._entries:
                raise ParameterError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = f
            return f

        return wrap(fn) if fn is not None else wrap

    def get(self, name: str) -> F:
        try:
            return self._entries[name]
        except KeyError:
            raise ParameterError(f"unknown {self.kind} {name!r}; available: {', '.join(sorted(self._entries))}") from None

    def names(self, prefix: str = "") -> list[str]:
        return sorted(n for n in self._entries if n.startswith(prefix))

    def __contains__(self, name: object) -> bool:
        return name in self._entries
