"""Checks of scalar arguments, with one rule for what counts as an integer or a number.

The rule: an integer is a Python ``int`` or a NumPy integer (``np.int64(3)`` from an array or a data frame is
fine), never a ``bool`` (``True`` is an ``int`` to Python but never a count, rate or size). A number is an integer
or a Python/NumPy float. Failures raise `ParameterError` with one line naming the parameter, and the owner
(``"Gain: p must be ..."``) when given.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import numpy as np

from .errors import ParameterError

__all__ = ["check_choice", "check_float", "check_int", "is_int", "is_number"]


def is_int(value: Any) -> bool:
    """True for an ``int`` or NumPy integer, False for a bool (Python's or NumPy's) and anything else."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for an integer (`is_int`) or a Python/NumPy float, NaN and infinities included."""
    return is_int(value) or isinstance(value, (float, np.floating))


def _prefix(owner: str | None) -> str:
    return f"{owner}: " if owner else ""


def check_int(name: str, value: Any, *, min: int | None = None, max: int | None = None, owner: str | None = None) -> int:  # noqa: A002
    """``value`` as an ``int`` if it is an integer (`is_int`) within ``[min, max]``.

    Raises:
        ParameterError: ``"<owner>: <name> must be a positive integer, got <value!r>"`` (``min=1``), or "an
            integer >= min", "an integer <= max", "an integer in min..max", "an integer".
    """
    if is_int(value) and (min is None or value >= min) and (max is None or value <= max):
        return int(value)
    if min == 1 and max is None:
        what = "a positive integer"
    elif min is not None and max is not None:
        what = f"an integer in {min}..{max}"
    elif min is not None:
        what = f"an integer >= {min}"
    elif max is not None:
        what = f"an integer <= {max}"
    else:
        what = "an integer"
    raise ParameterError(f"{_prefix(owner)}{name} must be {what}, got {value!r}")


def check_float(
    name: str,
    value: Any,
    *,
    min: float | None = None,  # noqa: A002
    max: float | None = None,  # noqa: A002
    min_inclusive: bool = True,
    owner: str | None = None,
) -> float:
    """``value`` as a ``float`` if it is a finite number (`is_number`) within the bounds.

    Args:
        min_inclusive: False to require ``value > min`` (a duration, a rate).

    Raises:
        ParameterError: ``"<owner>: <name> must be a finite number > 0, got <value!r>"`` and the like.
    """
    if is_number(value) and math.isfinite(value):
        above = min is None or (value >= min if min_inclusive else value > min)
        if above and (max is None or value <= max):
            return float(value)
    bounds = []
    if min is not None:
        bounds.append(f"{'>=' if min_inclusive else '>'} {min}")
    if max is not None:
        bounds.append(f"<= {max}")
    raise ParameterError(f"{_prefix(owner)}{name} must be a finite number{' ' + ' and '.join(bounds) if bounds else ''}, got {value!r}")


def check_choice(name: str, value: Any, choices: Collection, *, owner: str | None = None) -> Any:
    """``value`` if it is one of ``choices``.

    Raises:
        ParameterError: ``"<owner>: <name> must be one of <choices>, got <value!r>"``.
    """
    if value not in choices:
        raise ParameterError(f"{_prefix(owner)}{name} must be one of {choices}, got {value!r}")
    return value
