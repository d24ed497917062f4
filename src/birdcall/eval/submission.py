"""BirdCLEF solution and submission CSV files: read them, align them and score them.

A file has a ``row_id`` column plus one column per species (0/1 in a solution, scores in a submission).
:func:`read_solution`, :func:`read_submission`, :func:`score_submission` and :func:`score_files` align the
submission to the solution by ``row_id`` and species name and score it with :mod:`birdcall.metrics`. Bad files
raise :class:`~birdcall.errors.DataError` naming the file.
"""

from __future__ import annotations

import collections
import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, ParameterError
from ..metrics.scores import check_padding_factor, score_checked
from ..types import Pathlike

__all__ = ["ROW_ID", "read_solution", "read_submission", "score_files", "score_submission"]

ROW_ID = "row_id"
"""Name of the key column in BirdCLEF solution and submission files."""

_NUM_EXAMPLES = 3


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
    padding_factor = check_padding_factor(padding_factor)
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

    result, ap = score_checked(truth, score, padding_factor)
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
    padding_factor = check_padding_factor(padding_factor)
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
