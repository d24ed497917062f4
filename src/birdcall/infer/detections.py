"""Detection tables: the (window, species) pairs of a prediction table that pass a threshold and species filters.

A prediction table is indexed by (``file``, ``start_time``, ``end_time``) with one probability column per
species code, as :func:`birdcall.infer.predict_file` returns it. A detection table has one row per kept
(window, species) pair and the columns :data:`DETECTION_COLUMNS`; :mod:`birdcall.infer.writers` writes it
as CSV, Parquet, a Raven selection table or Audacity labels.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.labels import LabelSet
from ..errors import DataError, ParameterError
from ..types import Pathlike

__all__ = ["DETECTION_COLUMNS", "empty_detections", "read_species_list", "to_detections"]

DETECTION_COLUMNS = ("file", "start_time", "end_time", "code", "scientific_name", "common_name", "confidence")
_STRING_COLUMNS = ("file", "code", "scientific_name", "common_name")
_INDEX_LEVELS = ("file", "start_time", "end_time")


def _frame(file, start_time, end_time, code, scientific_name, common_name, confidence) -> pd.DataFrame:
    """A detection table with the canonical dtypes: ``str`` text, float64 times, float32 confidence."""
    return pd.DataFrame(
        {
            "file": pd.array(file, dtype="str"),
            "start_time": np.asarray(start_time, dtype=np.float64),
            "end_time": np.asarray(end_time, dtype=np.float64),
            "code": pd.array(code, dtype="str"),
            "scientific_name": pd.array(scientific_name, dtype="str"),
            "common_name": pd.array(common_name, dtype="str"),
            "confidence": np.asarray(confidence, dtype=np.float32),
        }
    )


def empty_detections() -> pd.DataFrame:
    """A zero-row detection table with the columns and dtypes :func:`to_detections` returns."""
    return _frame([], [], [], [], [], [], [])


def _check_codes(codes: Collection[str] | None, labels: LabelSet, name: str) -> list[str] | None:
    if codes is None:
        return None
    if isinstance(codes, str):
        raise ParameterError(f"{name} must be a collection of species codes, got the string {codes!r}")
    codes = [str(c) for c in codes]
    unknown = sorted({c for c in codes if c not in labels})
    if unknown:
        raise ParameterError(f"{name}: unknown species code(s) {unknown} (the model knows {len(labels)} codes)")
    return codes


def to_detections(
    scores: pd.DataFrame,
    *,
    labels: LabelSet,
    min_confidence: float = 0.1,
    top_k: int | None = None,
    include: Collection[str] | None = None,
    exclude: Collection[str] | None = None,
) -> pd.DataFrame:
    """One row per (window, species) of ``scores`` that passes the species filters and the threshold.

    A species is a candidate in a window when it is in ``include`` (every species if None), not in
    ``exclude``, and its score is ``>= min_confidence`` (a NaN score never is). ``top_k`` then keeps the
    ``top_k`` highest-scoring candidates of each window (ties go to the species earlier in ``scores``).

    Args:
        scores: prediction table indexed by (``file``, ``start_time``, ``end_time``), one probability column
            per species code; a zero-row table with any index is accepted.
        labels: the model's species; gives the names and decides which codes ``include``/``exclude`` may use.
        min_confidence: lowest score kept, in [0, 1].
        top_k: species kept per window at most (None: no limit).
        include: codes to keep (None: all).
        exclude: codes to drop; applied after ``include``.

    Returns:
        DataFrame with columns :data:`DETECTION_COLUMNS` (``str`` text, float64 times, float32 confidence;
        names are ``""`` when ``labels`` has none), sorted by ``file``, ``start_time``, then ``confidence``
        descending, with a fresh RangeIndex.

    Raises:
        ParameterError: unknown codes in ``include``/``exclude`` or in the columns of ``scores``, an index
            without the (file, start_time, end_time) levels, ``min_confidence`` outside [0, 1], ``top_k < 1``.

    Example:
        >>> labels = LabelSet(("erirub", "turmer"), common_names=("European Robin", "Eurasian Blackbird"))
        >>> index = pd.MultiIndex.from_tuples([("a.wav", 0.0, 5.0)], names=["file", "start_time", "end_time"])
        >>> scores = pd.DataFrame([[0.25, 0.75]], index=index, columns=["erirub", "turmer"])
        >>> to_detections(scores, labels=labels, min_confidence=0.5)[["code", "common_name", "confidence"]]
             code         common_name  confidence
        0  turmer  Eurasian Blackbird        0.75
    """
    if not isinstance(scores, pd.DataFrame):
        raise ParameterError(f"to_detections: expected a prediction table (DataFrame), got {type(scores).__name__}")
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, numbers.Real) or not 0.0 <= min_confidence <= 1.0:
        raise ParameterError(f"to_detections: min_confidence must be a number in [0, 1], got {min_confidence!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1):
        raise ParameterError(f"to_detections: top_k must be an integer >= 1 or None, got {top_k!r}")
    include = _check_codes(include, labels, "include")
    exclude = _check_codes(exclude, labels, "exclude")
    columns = [str(c) for c in scores.columns]
    unknown = sorted({c for c in columns if c not in labels})
    if unknown:
        raise ParameterError(f"to_detections: score columns {unknown} are not species codes of the LabelSet")
    if len(scores) == 0:
        return empty_detections()
    missing = [name for name in _INDEX_LEVELS if name not in scores.index.names]
    if missing:
        raise ParameterError(f"to_detections: prediction table index needs level(s) {missing}, has {list(scores.index.names)}")

    values = scores.to_numpy(dtype=np.float64)  # (windows, species)
    keep_column = np.ones(len(columns), dtype=bool)
    if include is not None:
        keep_column &= np.isin(columns, include)
    if exclude is not None:
        keep_column &= ~np.isin(columns, exclude)
    with np.errstate(invalid="ignore"):
        keep = keep_column[None, :] & (values >= min_confidence)  # NaN compares False
    if top_k is not None and top_k < len(columns):
        ranked = np.where(keep, values, -np.inf)
        order = np.argsort(-ranked, axis=1, kind="stable")  # best first; ties keep column order
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(len(columns))[None, :], axis=1)
        keep &= rank < top_k
    rows, cols = np.nonzero(keep)  # row-major: window order, then column order

    label_index = np.array([labels.index(c) for c in columns], dtype=np.int64)
    scientific = np.asarray(labels.scientific_names or ("",) * len(labels), dtype=object)[label_index]
    common = np.asarray(labels.common_names or ("",) * len(labels), dtype=object)[label_index]
    files = np.asarray(scores.index.get_level_values("file").astype(str), dtype=object)
    starts = np.asarray(scores.index.get_level_values("start_time"), dtype=np.float64)
    ends = np.asarray(scores.index.get_level_values("end_time"), dtype=np.float64)
    confidence = values[rows, cols]
    file_rank = pd.factorize(files[rows], sort=True)[0]
    order = np.lexsort((-confidence, starts[rows], file_rank))  # stable: last key is the primary one
    rows, cols, confidence = rows[order], cols[order], confidence[order]
    return _frame(
        files[rows], starts[rows], ends[rows], np.asarray(columns, dtype=object)[cols], scientific[cols], common[cols], confidence
    )


def read_species_list(path: Pathlike) -> list[str]:
    """Species codes from a text file: one code per line; ``#`` starts a comment, blank lines are skipped.

    Returns:
        The codes in file order, each once.

    Raises:
        DataError: the file is missing, not a regular file, unreadable or not UTF-8 text (one line naming it).
    """
    p = Path(path)
    if not p.exists():
        raise DataError(p, "species list not found")
    if not p.is_file():
        raise DataError(p, "species list is not a regular file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(p, "species list is not UTF-8 text") from None
    except OSError as err:
        raise DataError(p, f"cannot read species list ({err.strerror or err})") from None
    codes = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return list(dict.fromkeys(c for c in codes if c))
