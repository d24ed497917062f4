"""The BirdCLEF headline metrics on arrays: padded cmAP, cmAP, macro ROC-AUC, per-species AP.

``y_true`` is ``(n_samples, n_classes)`` of 0/1 and ``y_score`` is ``(n_samples, n_classes)`` of real scores
(probabilities for :func:`padded_cmap`). Bad arrays raise :class:`~birdcall.errors.ParameterError`.

The headline metric is the BirdCLEF 2023 padded cmAP: ``padding_factor`` rows of ones are appended to both truth
and scores, then macro average precision is taken over every species. Padding gives a species with no positives
an AP of 1 (when its real scores are below 1) instead of an undefined value, and damps the effect of species with
few positives.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from .._validate import check_int
from ..errors import ParameterError

__all__ = [
    "check_arrays",
    "check_padding_factor",
    "cmap",
    "macro_roc_auc",
    "padded_cmap",
    "per_species_ap",
    "score_arrays",
    "score_checked",
]


def check_arrays(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to ``(int8 truth, float64 scores)``, both ``(n_samples, n_classes)``.

    The one validator behind every metric of :mod:`birdcall.metrics` and :mod:`birdcall.eval`; raises `ParameterError`.
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


def check_padding_factor(padding_factor: Any) -> int:
    """``padding_factor`` as an int; raises `ParameterError` unless it is an integer >= 0 (not a bool)."""
    return check_int("padding_factor", padding_factor, min=0)


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
    return _padded_cmap(truth, score, check_padding_factor(padding_factor))


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


def score_checked(truth: np.ndarray, score: np.ndarray, padding_factor: int) -> tuple[dict[str, Any], np.ndarray]:
    """`score_arrays` of arrays already validated (`check_arrays`, `check_padding_factor`), plus the per-species AP."""
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
    return score_checked(truth, score, check_padding_factor(padding_factor))[0]
