"""Post-processing of prediction tables (index ``file``, ``start_time``, ``end_time``; one probability column
per species, as :func:`birdcall.infer.predict_file` returns them).

Every function returns a new table with the same index, columns, column dtypes and row order as its input;
windows are grouped by file and ordered by ``start_time`` inside each file, whatever the row order.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ParameterError

__all__ = ["PostprocessConfig", "file_level_boost", "postprocess", "smooth_neighbours"]


def _check_table(scores: pd.DataFrame, *, levels: Sequence[str]) -> None:
    if not isinstance(scores, pd.DataFrame):
        raise ParameterError(f"expected a prediction table (DataFrame), got {type(scores).__name__}")
    missing = [name for name in levels if name not in scores.index.names]
    if missing:
        raise ParameterError(f"prediction table index needs level(s) {missing}, has {list(scores.index.names)}")
    not_numeric = [str(c) for c, dtype in scores.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
    if not_numeric:
        raise ParameterError(f"prediction table has non-numeric columns {not_numeric}")


def _like(values: np.ndarray, scores: pd.DataFrame) -> pd.DataFrame:
    """``values`` as a table shaped like ``scores``; float columns keep their dtype, others become float64."""
    out = pd.DataFrame(values, index=scores.index, columns=scores.columns)
    dtypes = {c: (d if pd.api.types.is_float_dtype(d) else np.float64) for c, d in scores.dtypes.items()}
    return out.astype(dtypes)


def _check_boost(threshold: float, factor: float) -> None:
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool) or not math.isfinite(threshold):
        raise ParameterError(f"boost threshold must be a finite number, got {threshold!r}")
    if not isinstance(factor, numbers.Real) or isinstance(factor, bool) or not math.isfinite(factor) or factor < 1:
        raise ParameterError(f"boost factor must be a finite number >= 1, got {factor!r}")


def _check_weights(weights: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        raise ParameterError(f"smoothing weights must be 3 numbers (previous, self, next), got {weights!r}") from None
    if len(values) != 3 or not all(math.isfinite(w) and w >= 0 for w in values) or sum(values) <= 0:
        raise ParameterError(f"smoothing weights must be 3 finite numbers >= 0 with a positive sum, got {weights!r}")
    return values  # type: ignore[return-value]


def file_level_boost(scores: pd.DataFrame, *, threshold: float = 0.96, factor: float = 1.5) -> pd.DataFrame:
    """Raise every score of a species in a file where that species is detected with confidence somewhere.

    For each file and species whose maximum over the file's windows is ``>= threshold``, all the scores of that
    species in that file are multiplied by ``factor`` and capped at 1.0; the other scores are unchanged.

    Args:
        scores: prediction table (index with a ``file`` level, one column per species).
        threshold: a file's maximum score that triggers the boost.
        factor: multiplier (>= 1).

    Returns:
        The boosted table (same index, columns and row order).

    Raises:
        ParameterError: a table without a ``file`` index level or with non-numeric columns, a non-finite
            threshold, or a factor below 1.
    """
    _check_boost(threshold, factor)
    _check_table(scores, levels=("file",))
    # compared in each column's own dtype, so a float32 score printed as 0.96 reaches threshold=0.96
    file_max = scores.groupby(level="file", sort=False).transform("max")
    boosted = (file_max >= threshold).to_numpy()
    values = scores.to_numpy(dtype=np.float64)
    return _like(np.where(boosted, np.minimum(values * factor, 1.0), values), scores)


def smooth_neighbours(scores: pd.DataFrame, *, weights: Sequence[float] = (0.25, 0.5, 0.25)) -> pd.DataFrame:
    """Average each window with its neighbours in the same file.

    Per file, in ``start_time`` order, a window's score becomes ``prev * w0 + self * w1 + next * w2``. At a
    file's first (last) window the missing neighbour's weight is dropped and the remaining weights are
    renormalised; a one-window file is unchanged, and so is any window whose remaining weights are all 0
    (such as the last window with weights ``(0, 0, 1)``). Windows with equal ``start_time`` keep their row order.

    Args:
        scores: prediction table (index with ``file`` and ``start_time`` levels, one column per species).
        weights: ``(previous, self, next)`` weights, non-negative with a positive sum (normalised).

    Returns:
        The smoothed table (same index, columns and row order).

    Raises:
        ParameterError: invalid weights, a table without ``file``/``start_time`` index levels or with
            non-numeric columns.
    """
    w_prev, w_self, w_next = _check_weights(weights)
    _check_table(scores, levels=("file", "start_time"))
    values = scores.to_numpy(dtype=np.float64)
    n = len(values)
    if n == 0:
        return _like(values, scores)
    file_codes, _ = pd.factorize(scores.index.get_level_values("file"))
    start = scores.index.get_level_values("start_time").to_numpy(dtype=np.float64)
    order = np.lexsort((start, file_codes))  # stable: by file, then start_time, then row order
    v = values[order]
    codes = file_codes[order]
    has_prev = np.zeros(n, dtype=bool)
    has_prev[1:] = codes[1:] == codes[:-1]
    has_next = np.zeros(n, dtype=bool)
    has_next[:-1] = codes[:-1] == codes[1:]
    prev = np.zeros_like(v)
    prev[1:] = v[:-1]
    nxt = np.zeros_like(v)
    nxt[:-1] = v[1:]
    weight_prev = np.where(has_prev, w_prev, 0.0)[:, None]
    weight_next = np.where(has_next, w_next, 0.0)[:, None]
    total = weight_prev + w_self + weight_next
    alone = (total <= 0) | ~(has_prev | has_next)[:, None]  # nothing to average with: keep the window
    mixed = (weight_prev * prev + w_self * v + weight_next * nxt) / np.where(total > 0, total, 1.0)
    smoothed = np.where(alone, v, mixed)
    out = np.empty_like(values)
    out[order] = smoothed
    return _like(out, scores)


@dataclass(frozen=True)
class PostprocessConfig:
    """Which post-processing :func:`postprocess` applies; None disables a step.

    Attributes:
        boost_threshold: :func:`file_level_boost` threshold (None: no boost).
        boost_factor: :func:`file_level_boost` factor.
        smooth_weights: :func:`smooth_neighbours` ``(previous, self, next)`` weights (None: no smoothing).
    """

    boost_threshold: float | None = None
    boost_factor: float = 1.5
    smooth_weights: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        _check_boost(0.0 if self.boost_threshold is None else self.boost_threshold, self.boost_factor)
        if self.smooth_weights is not None:
            object.__setattr__(self, "smooth_weights", _check_weights(self.smooth_weights))


def postprocess(scores: pd.DataFrame, config: PostprocessConfig) -> pd.DataFrame:
    """Apply the steps of ``config``: :func:`smooth_neighbours`, then :func:`file_level_boost`.

    Smoothing comes first so that the boost decides on, and caps, the final per-window scores: a species is
    boosted in a file only if it stays confident after its window has been averaged with its neighbours (an
    isolated one-window spike is damped instead of spreading a boost over the whole file), and the boosted
    values are not averaged again, so the cap at 1.0 and the factor hold exactly in the output.

    Args:
        scores: prediction table (index ``file``, ``start_time``, ``end_time``; one column per species).
        config: the steps to apply.

    Returns:
        The processed table (same index, columns and row order).
    """
    if not isinstance(config, PostprocessConfig):
        raise ParameterError(f"postprocess: config must be a PostprocessConfig, got {type(config).__name__}")
    out = scores.copy()
    if config.smooth_weights is not None:
        out = smooth_neighbours(out, weights=config.smooth_weights)
    if config.boost_threshold is not None:
        out = file_level_boost(out, threshold=config.boost_threshold, factor=config.boost_factor)
    return out
