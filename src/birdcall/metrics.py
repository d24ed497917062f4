"""Scoring metrics for multi-label species predictions: padded cmAP, cmAP, macro ROC-AUC.

Two levels:

* **Arrays** (used by training evaluation): ``y_true`` is ``(n_samples, n_classes)`` of 0/1 and ``y_score`` is
  ``(n_samples, n_classes)`` of real scores (probabilities for :func:`padded_cmap`). Bad arrays raise
  :class:`~birdcall.errors.ParameterError`.
* **BirdCLEF files**: a ``row_id`` column plus one column per species. :func:`read_solution`,
  :func:`read_submission`, :func:`score_submission` and :func:`score_files` align the submission to the solution
  by ``row_id`` and species name. Bad files raise :class:`~birdcall.errors.DataError` naming the file.

The headline metric is the BirdCLEF 2023 padded cmAP: ``padding_factor`` rows of ones are appended to both truth
and scores, then macro average precision is taken over every species. Padding gives a species with no positives
an AP of 1 (when its real scores are below 1) instead of an undefined value, and damps the effect of species with
few positives.
"""

from __future__ import annotations

import collections
import csv
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from .errors import DataError, ParameterError
from .types import Pathlike

__all__ = [
    "ROW_ID",
    "check_arrays",
    "padded_cmap",
    "cmap",
    "macro_roc_auc",
    "per_species_ap",
    "score_arrays",
    "read_solution",
    "read_submission",
    "score_submission",
    "score_files",
]

ROW_ID = "row_id"
"""Name of the key column in BirdCLEF solution and submission files."""

_NUM_EXAMPLES = 3


# --------------------------------------------------------------------------------------------------------------
# Array level
# --------------------------------------------------------------------------------------------------------------


def check_arrays(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to ``(int8 truth, float64 scores)``, both ``(n_samples, n_classes)``.

    The one validator behind every metric here and in :mod:`birdcall.eval`; raises `ParameterError`.
    """
    try:
        truth = np.asarray(y_true, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"y_true must be a numeric array of 0/1 values: {err}") from None
    try:
        score = np.asarray(y_score, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"y_score must be a numeric array: {err}") from None
    if truth.ndim != 2 or score.ndim != 2:
        raise ParameterError(
            f"y_true and y_score must be 2-D (n_samples, n_classes), got shapes {truth.shape} and {score.shape}; "
            "reshape a single class with .reshape(-1, 1)"
        )
    if truth.shape != score.shape:
        raise ParameterError(f"y_true and y_score must have the same shape, got {truth.shape} and {score.shape}")
    if truth.shape[0] == 0 or truth.shape[1] == 0:
        raise ParameterError(f"y_true and y_score must have at least one sample and one class, got shape {truth.shape}")
    if not np.isin(truth, (0.0, 1.0)).all():
        bad = truth[~np.isin(truth, (0.0, 1.0))]
        raise ParameterError(f"y_true must contain only 0 and 1, found {bad[0]!r}")
    if not np.isfinite(score).all():
        num_bad = int((~np.isfinite(score)).sum())
        raise ParameterError(f"y_score must be finite, found {num_bad} NaN or infinite values")
    return truth.astype(np.int8), score


def _check_padding_factor(padding_factor: Any) -> int:
    if isinstance(padding_factor, bool) or not isinstance(padding_factor, (int, np.integer)) or padding_factor < 0:
        raise ParameterError(f"padding_factor must be an integer >= 0, got {padding_factor!r}")
    return int(padding_factor)


def _padded_cmap(truth: np.ndarray, score: np.ndarray, padding_factor: int) -> float:
    if padding_factor:
        ones = np.ones((padding_factor, truth.shape[1]))
        truth = np.concatenate([truth, ones])
        score = np.concatenate([score, ones])
    with warnings.catch_warnings():
        # Only reachable with padding_factor=0: a species without positives gets AP 0, as in sklearn.
        warnings.filterwarnings("ignore", message="No positive class found in y_true")
        return float(average_precision_score(truth, score, average="macro"))


def _per_species_ap(truth: np.ndarray, score: np.ndarray) -> np.ndarray:
    result = np.full(truth.shape[1], np.nan)
    for j in np.flatnonzero(truth.any(axis=0)):
        result[j] = average_precision_score(truth[:, j], score[:, j])
    return result


def _macro_roc_auc(truth: np.ndarray, score: np.ndarray) -> tuple[float, int]:
    both = np.flatnonzero(truth.any(axis=0) & ~truth.all(axis=0))
    if both.size == 0:
        return float("nan"), 0
    aucs = [roc_auc_score(truth[:, j], score[:, j]) for j in both]
    return float(np.mean(aucs)), int(both.size)


def _nanmean_or_nan(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def padded_cmap(y_true: Any, y_score: Any, *, padding_factor: int = 5) -> float:
    """BirdCLEF 2023 padded class-mean average precision.

    Appends ``padding_factor`` rows of ones to both ``y_true`` and ``y_score``, then takes
    ``sklearn.metrics.average_precision_score(..., average="macro")`` over all species. This is the Kaggle
    BirdCLEF 2023 ``padded_cmap``. The padding rows score 1, so ``y_score`` should hold probabilities in [0, 1]:
    a real row scored at or above 1 ties with (or outranks) the padding.

    Args:
        y_true: ``(n_samples, n_classes)`` array of 0/1 labels.
        y_score: ``(n_samples, n_classes)`` array of scores.
        padding_factor: Number of all-ones rows to append. With 0 the result is plain macro AP and a species
            without positives scores 0.

    Returns:
        The padded cmAP, a float in [0, 1].

    Raises:
        ParameterError: If the arrays are not 2-D of equal shape, ``y_true`` is not 0/1, ``y_score`` is not
            finite, or ``padding_factor`` is negative.

    Example:
        >>> padded_cmap([[1, 0], [0, 0]], [[0.9, 0.2], [0.1, 0.3]])
        1.0
    """
    truth, score = check_arrays(y_true, y_score)
    return _padded_cmap(truth, score, _check_padding_factor(padding_factor))


def per_species_ap(y_true: Any, y_score: Any) -> np.ndarray:
    """Average precision of each species (class), without padding.

    Args:
        y_true: ``(n_samples, n_classes)`` array of 0/1 labels.
        y_score: ``(n_samples, n_classes)`` array of scores.

    Returns:
        ``(n_classes,)`` float64 array; NaN for a class with no positive sample (its AP is undefined).

    Raises:
        ParameterError: If the arrays are not 2-D of equal shape, ``y_true`` is not 0/1 or ``y_score`` is not
            finite.
    """
    truth, score = check_arrays(y_true, y_score)
    return _per_species_ap(truth, score)


def cmap(y_true: Any, y_score: Any) -> float:
    """Class-mean average precision over the species that have at least one positive sample.

    Args:
        y_true: ``(n_samples, n_classes)`` array of 0/1 labels.
        y_score: ``(n_samples, n_classes)`` array of scores.

    Returns:
        Mean of :func:`per_species_ap` over species with positives; NaN if no species has a positive.

    Raises:
        ParameterError: If the arrays are not 2-D of equal shape, ``y_true`` is not 0/1 or ``y_score`` is not
            finite.
    """
    truth, score = check_arrays(y_true, y_score)
    return _nanmean_or_nan(_per_species_ap(truth, score))


def macro_roc_auc(y_true: Any, y_score: Any) -> float:
    """Macro ROC-AUC over the species that have both positive and negative samples.

    Args:
        y_true: ``(n_samples, n_classes)`` array of 0/1 labels.
        y_score: ``(n_samples, n_classes)`` array of scores.

    Returns:
        Mean per-species ``sklearn.metrics.roc_auc_score``; NaN if no species has both classes.

    Raises:
        ParameterError: If the arrays are not 2-D of equal shape, ``y_true`` is not 0/1 or ``y_score`` is not
            finite.
    """
    truth, score = check_arrays(y_true, y_score)
    return _macro_roc_auc(truth, score)[0]


def _score_checked(truth: np.ndarray, score: np.ndarray, padding_factor: int) -> tuple[dict[str, Any], np.ndarray]:
    ap = _per_species_ap(truth, score)
    macro_auc, num_auc = _macro_roc_auc(truth, score)
    summary = {
        "padded_cmap": _padded_cmap(truth, score, padding_factor),
        "cmap": _nanmean_or_nan(ap),
        "macro_auc": macro_auc,
        "padding_factor": padding_factor,
        "num_samples": int(truth.shape[0]),
        "num_species": int(truth.shape[1]),
        "num_species_scored": int((~np.isnan(ap)).sum()),
        "num_species_auc": num_auc,
    }
    return summary, ap


def score_arrays(y_true: Any, y_score: Any, *, padding_factor: int = 5) -> dict[str, Any]:
    """All array-level metrics at once (the arrays are validated once).

    Args:
        y_true: ``(n_samples, n_classes)`` array of 0/1 labels.
        y_score: ``(n_samples, n_classes)`` array of scores.
        padding_factor: Rows of ones appended for :func:`padded_cmap`.

    Returns:
        Dict with ``padded_cmap``, ``cmap``, ``macro_auc`` (floats, NaN when undefined), ``padding_factor``,
        ``num_samples``, ``num_species``, ``num_species_scored`` (species with a positive, the ones ``cmap``
        averages) and ``num_species_auc`` (species with both classes, the ones ``macro_auc`` averages).

    Raises:
        ParameterError: If the arrays are not 2-D of equal shape, ``y_true`` is not 0/1, ``y_score`` is not
            finite, or ``padding_factor`` is negative.
    """
    truth, score = check_arrays(y_true, y_score)
    return _score_checked(truth, score, _check_padding_factor(padding_factor))[0]


# --------------------------------------------------------------------------------------------------------------
# BirdCLEF solution / submission files
# --------------------------------------------------------------------------------------------------------------


def _examples(items: Any) -> str:
    items = list(items)
    shown = ", ".join(repr(str(item)) for item in items[:_NUM_EXAMPLES])
    return shown + (", ..." if len(items) > _NUM_EXAMPLES else "")


def _read_csv(path: Pathlike) -> pd.DataFrame:
    """Read one BirdCLEF-layout CSV with ``row_id`` as strings, mapping every failure to a DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file")
    if not path.is_file():
        raise DataError(path, "not a regular file")
    try:
        frame = pd.read_csv(path, dtype={ROW_ID: str})
    except pd.errors.EmptyDataError:
        raise DataError(path, "file is empty") from None
    except UnicodeDecodeError:
        raise DataError(path, "cannot parse CSV: not UTF-8 text") from None
    except OSError as err:
        raise DataError(path, f"cannot read file: {err.strerror or err}") from None
    except (pd.errors.ParserError, ValueError) as err:
        raise DataError(path, f"cannot parse CSV: {err}") from None
    # pandas renames a repeated header ("a", "a.1"); look at the raw header to report it.
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    repeated = [name for name, count in collections.Counter(header).items() if count > 1]
    if repeated:
        raise DataError(path, f"repeated column names: {_examples(repeated)}")
    return frame


def _check_layout(frame: pd.DataFrame, name: Pathlike) -> list[Any]:
    """Check the row_id column and return the species column names."""
    if not isinstance(frame, pd.DataFrame):
        raise ParameterError(f"{os.fspath(name)}: expected a pandas DataFrame, got {type(frame).__name__}")
    if ROW_ID not in frame.columns:
        raise DataError(name, f"no {ROW_ID!r} column (columns: {_examples(frame.columns)})")
    species = [column for column in frame.columns if column != ROW_ID]
    if not species:
        raise DataError(name, f"no species columns besides {ROW_ID!r}")
    if frame.columns.duplicated().any():
        raise DataError(name, f"repeated column names: {_examples(frame.columns[frame.columns.duplicated()])}")
    if len(frame) == 0:
        raise DataError(name, "no data rows")
    row_ids = frame[ROW_ID]
    if row_ids.isna().any():
        raise DataError(name, f"{int(row_ids.isna().sum())} row(s) with an empty {ROW_ID}")
    row_ids = row_ids.astype(str)
    duplicated = row_ids[row_ids.duplicated()].unique()
    if len(duplicated):
        raise DataError(name, f"{len(duplicated)} duplicate {ROW_ID}(s), e.g. {_examples(duplicated)}")
    return species


def _numeric_block(frame: pd.DataFrame, columns: list[Any], name: Pathlike, what: str) -> np.ndarray:
    """``frame[columns]`` as a float64 array; a DataError names the first non-numeric or missing value."""
    blocks = []
    for column in columns:
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            coerced = pd.to_numeric(values, errors="coerce")
            bad = coerced.isna() & values.notna()
            if bad.any():
                first = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    name,
                    f"non-numeric {what} {values.iloc[first]!r} in column {column!r} "
                    f"at {ROW_ID} {str(frame[ROW_ID].iloc[first])!r}",
                )
            values = coerced
        blocks.append(values.to_numpy(dtype=np.float64, na_value=np.nan))
    array = np.column_stack(blocks)
    for label, mask in (("missing (NaN)", np.isnan(array)), ("infinite", np.isinf(array))):
        if mask.any():
            row, col = np.argwhere(mask)[0]
            raise DataError(
                name,
                f"{int(mask.sum())} {label} {what}s, first in column {columns[col]!r} "
                f"at {ROW_ID} {str(frame[ROW_ID].iloc[row])!r}",
            )
    return array


def _truth_block(frame: pd.DataFrame, columns: list[Any], name: Pathlike) -> np.ndarray:
    array = _numeric_block(frame, columns, name, "truth value")
    bad = ~np.isin(array, (0.0, 1.0))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            name,
            f"truth values must be 0 or 1, found {array[row, col]:g} in column {columns[col]!r} "
            f"at {ROW_ID} {str(frame[ROW_ID].iloc[row])!r}",
        )
    return array.astype(np.int8)


def read_solution(path: Pathlike) -> pd.DataFrame:
    """Read and check a BirdCLEF solution CSV: ``row_id`` plus one 0/1 column per species.

    Args:
        path: CSV file.

    Returns:
        The table as read, ``row_id`` as strings, in file order.

    Raises:
        DataError: If the file is missing, empty or not CSV, lacks ``row_id`` or species columns, has no rows,
            repeated column names, empty or duplicate row_ids, or a truth value that is not 0 or 1.
    """
    frame = _read_csv(path)
    _truth_block(frame, _check_layout(frame, path), path)
    return frame


def read_submission(path: Pathlike) -> pd.DataFrame:
    """Read and check a BirdCLEF submission CSV: ``row_id`` plus one score column per species.

    Args:
        path: CSV file.

    Returns:
        The table as read, ``row_id`` as strings, in file order.

    Raises:
        DataError: If the file is missing, empty or not CSV, lacks ``row_id`` or species columns, has no rows,
            repeated column names, empty or duplicate row_ids, or a score that is non-numeric, NaN or infinite.
    """
    frame = _read_csv(path)
    _numeric_block(frame, _check_layout(frame, path), path, "score")
    return frame


def score_submission(
    solution: pd.DataFrame,
    submission: pd.DataFrame,
    *,
    padding_factor: int = 5,
    solution_name: Pathlike = "solution",
    submission_name: Pathlike = "submission",
) -> dict[str, Any]:
    """Score a BirdCLEF submission table against a solution table.

    Submission rows are matched to solution rows by ``row_id`` (compared as strings; order does not matter) and
    columns by species name. Species columns and rows of the submission that are not in the solution are
    ignored and counted in the result.

    Args:
        solution: ``row_id`` plus one 0/1 column per species.
        submission: ``row_id`` plus one score column per solution species (probabilities).
        padding_factor: Rows of ones appended for :func:`padded_cmap`.
        solution_name: Names the solution in error messages (``score_files`` passes the path).
        submission_name: Names the submission in error messages.

    Returns:
        The :func:`score_arrays` dict (``num_samples`` is the number of solution rows) plus
        ``num_extra_species`` and ``num_extra_rows`` (ignored submission columns and rows) and ``per_species``:
        a list, in solution column order, of ``{"species", "ap", "support"}`` with the unpadded AP (NaN when
        ``support``, the number of positives, is 0).

    Raises:
        DataError: If either table is malformed (see :func:`read_solution`, :func:`read_submission`), or the
            submission lacks solution species columns or row_ids.
        ParameterError: If ``padding_factor`` is negative or an argument is not a DataFrame.
    """
    padding_factor = _check_padding_factor(padding_factor)
    species = _check_layout(solution, solution_name)
    submitted = _check_layout(submission, submission_name)
    truth = _truth_block(solution, species, solution_name)

    missing_species = [name for name in species if name not in submission.columns]
    if missing_species:
        raise DataError(
            submission_name,
            f"{len(missing_species)} of {len(species)} solution species columns are missing, "
            f"e.g. {_examples(missing_species)}",
        )
    solution_ids = solution[ROW_ID].astype(str)
    indexed = submission.set_index(pd.Index(submission[ROW_ID].astype(str), name=None))
    present = solution_ids.isin(indexed.index)
    if not present.all():
        missing_rows = solution_ids[~present]
        raise DataError(
            submission_name,
            f"{len(missing_rows)} of {len(solution_ids)} solution {ROW_ID}s are missing, "
            f"e.g. {_examples(missing_rows)}",
        )
    aligned = indexed.loc[solution_ids.to_numpy(), [ROW_ID, *species]]
    score = _numeric_block(aligned, species, submission_name, "score")

    result, ap = _score_checked(truth, score, padding_factor)
    result["num_extra_species"] = len(set(submitted) - set(species))
    result["num_extra_rows"] = int(len(indexed) - len(solution_ids))
    support = truth.sum(axis=0)
    result["per_species"] = [
        {"species": str(name), "ap": float(ap[j]), "support": int(support[j])} for j, name in enumerate(species)
    ]
    return result


def score_files(solution_path: Pathlike, submission_path: Pathlike, *, padding_factor: int = 5) -> dict[str, Any]:
    """Read a solution and a submission CSV and score them.

    Args:
        solution_path: Solution CSV (see :func:`read_solution`).
        submission_path: Submission CSV (see :func:`read_submission`).
        padding_factor: Rows of ones appended for :func:`padded_cmap`.

    Returns:
        The :func:`score_submission` dict (with per-species AP and support) plus ``solution`` and ``submission``,
        the two paths as strings.

    Raises:
        DataError: If a file is malformed or they do not match; the message names the file.
        ParameterError: If ``padding_factor`` is negative.
    """
    padding_factor = _check_padding_factor(padding_factor)
    solution = read_solution(solution_path)
    submission = read_submission(submission_path)
    result = score_submission(
        solution,
        submission,
        padding_factor=padding_factor,
        solution_name=solution_path,
        submission_name=submission_path,
    )
    return {"solution": os.fspath(solution_path), "submission": os.fspath(submission_path), **result}
