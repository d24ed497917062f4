"""Diagnostic metrics on arrays, beyond the headline ones of :mod:`birdcall.metrics.scores`.

Arrays follow :mod:`birdcall.metrics.scores`: ``y_true`` is ``(n_samples, n_classes)`` of 0/1 and ``y_score`` is
``(n_samples, n_classes)`` of scores (probabilities for the calibration metrics). Clip data also has a
primary label per sample: ``primary`` is ``(n_samples,)`` of class indices, -1 where a sample has none.

Added here:

* :func:`micro_roc_auc`: ROC-AUC of all (sample, species) pairs pooled (sklearn ``average="micro"``);
* :func:`best_f1` and :func:`species_table`: per species AP, ROC-AUC, the threshold of the best F1 with the
  precision and recall there, and the support;
* :func:`top1_accuracy`: the arg-max species is the primary label;
* :func:`reliability_curve` and :func:`expected_calibration_error`: equal-width bins over every (sample, species)
  probability;
* :func:`primary_confusion` and :func:`cluster_order`: the confusion matrix of the primary label and an order
  of the species that puts the ones confused with each other side by side;
* :func:`evaluate_arrays`: all of it at once, as an :class:`EvalMetrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_auc_score

from .._validate import is_int
from ..errors import ParameterError
from .scores import check_arrays, per_species_ap, score_arrays

__all__ = [
    "EvalMetrics",
    "best_f1",
    "cluster_order",
    "evaluate_arrays",
    "expected_calibration_error",
    "micro_roc_auc",
    "primary_confusion",
    "reliability_curve",
    "row_normalise",
    "species_table",
    "top1_accuracy",
]

SPECIES_COLUMNS = ("species", "ap", "auc", "best_f1", "threshold", "precision", "recall", "support")
"""Columns of :func:`species_table` (``per_species.csv`` adds the species names when known)."""


def micro_roc_auc(y_true: Any, y_score: Any) -> float:
    """ROC-AUC over all (sample, species) pairs pooled, as ``roc_auc_score(..., average="micro")``.

    Args:
        y_true: ``(n_samples, n_classes)`` array of 0/1 labels.
        y_score: ``(n_samples, n_classes)`` array of scores.

    Returns:
        The micro-averaged AUC; NaN when the pooled labels are all 0 or all 1.

    Raises:
        ParameterError: If the arrays are not 2-D of equal shape, ``y_true`` is not 0/1 or ``y_score`` is not
            finite.
    """
    truth, score = check_arrays(y_true, y_score)
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth.ravel(), score.ravel()))


def best_f1(y_true: Any, y_score: Any) -> tuple[float, float, float, float]:
    """The threshold of one species' scores that maximises F1, over the thresholds of its PR curve.

    A sample is predicted positive when its score is ``>= threshold``. Among thresholds with the same best F1
    the lowest wins (the one with the most recall).

    Args:
        y_true: ``(n_samples,)`` 0/1 labels of one species.
        y_score: ``(n_samples,)`` scores.

    Returns:
        ``(f1, threshold, precision, recall)``; all NaN when the species has no positive sample.

    Raises:
        ParameterError: If the arrays are not 1-D of equal length, ``y_true`` is not 0/1 or ``y_score`` is not
            finite.
    """
    if np.ndim(y_true) != 1 or np.ndim(y_score) != 1:
        raise ParameterError(f"best_f1 takes 1-D arrays, got shapes {np.shape(y_true)} and {np.shape(y_score)}")
    truth, score = check_arrays(np.reshape(y_true, (-1, 1)), np.reshape(y_score, (-1, 1)))
    truth, score = truth[:, 0], score[:, 0]
    if not truth.any():
        return (float("nan"),) * 4
    precision, recall, thresholds = precision_recall_curve(truth, score)
    precision, recall = precision[:-1], recall[:-1]  # the last point (P=1, R=0) has no threshold
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    k = int(np.argmax(f1))  # thresholds ascend: the first maximum is the lowest threshold
    return float(f1[k]), float(thresholds[k]), float(precision[k]), float(recall[k])


def _species_auc(truth: np.ndarray, score: np.ndarray) -> np.ndarray:
    result = np.full(truth.shape[1], np.nan)
    for j in np.flatnonzero(truth.any(axis=0) & ~truth.all(axis=0)):
        result[j] = roc_auc_score(truth[:, j], score[:, j])
    return result


def species_table(y_true: Any, y_score: Any, *, codes: Any = None) -> pd.DataFrame:
    """Per-species metrics: AP, ROC-AUC, best F1 with its threshold, precision and recall, support.

    Args:
        y_true: ``(n_samples, n_classes)`` array of 0/1 labels.
        y_score: ``(n_samples, n_classes)`` array of scores.
        codes: ``n_classes`` species codes (default ``"0", "1", ...``).

    Returns:
        One row per species in column order, with the columns of :data:`SPECIES_COLUMNS`. ``ap`` and the F1
        columns are NaN without positives, ``auc`` is NaN without both positives and negatives; ``support`` is
        the number of positives.

    Raises:
        ParameterError: If the arrays are not 2-D of equal shape, ``y_true`` is not 0/1, ``y_score`` is not
            finite, or ``codes`` has the wrong length.
    """
    truth, score = check_arrays(y_true, y_score)
    codes = [str(j) for j in range(truth.shape[1])] if codes is None else [str(c) for c in codes]
    if len(codes) != truth.shape[1]:
        raise ParameterError(f"species_table: {len(codes)} codes for {truth.shape[1]} species columns")
    f1 = np.array([best_f1(truth[:, j], score[:, j]) for j in range(truth.shape[1])]).reshape(-1, 4)
    return pd.DataFrame(
        {
            "species": codes,
            "ap": per_species_ap(truth, score),
            "auc": _species_auc(truth, score),
            "best_f1": f1[:, 0],
            "threshold": f1[:, 1],
            "precision": f1[:, 2],
            "recall": f1[:, 3],
            "support": truth.sum(axis=0).astype(np.int64),
        },
        columns=list(SPECIES_COLUMNS),
    )


def _check_primary(primary: Any, num_samples: int, num_classes: int) -> np.ndarray:
    try:
        index = np.asarray(primary)
    except (TypeError, ValueError):
        raise ParameterError("primary must be an array of class indices") from None
    if index.shape != (num_samples,):
        raise ParameterError(f"primary must have shape ({num_samples},) (one class index per sample), got {index.shape}")
    if index.size and not np.issubdtype(index.dtype, np.integer):
        raise ParameterError(f"primary must hold integer class indices (-1 for none), got dtype {index.dtype}")
    index = index.astype(np.int64)
    if index.size and (index.min() < -1 or index.max() >= num_classes):
        raise ParameterError(f"primary indices must be in -1..{num_classes - 1}, got {index.min()}..{index.max()}")
    return index


def top1_accuracy(y_score: Any, primary: Any) -> float:
    """Fraction of samples whose highest-scoring species is their primary label.

    Args:
        y_score: ``(n_samples, n_classes)`` scores.
        primary: ``(n_samples,)`` primary class index of each sample, -1 for none (those samples are left out).

    Returns:
        The accuracy over samples with a primary label; NaN if there are none.

    Raises:
        ParameterError: If ``y_score`` is not a finite 2-D array or ``primary`` does not match it.
    """
    _, score = check_arrays(np.zeros(np.shape(y_score)), y_score)
    index = _check_primary(primary, *score.shape)
    known = index >= 0
    if not known.any():
        return float("nan")
    return float(np.mean(score[known].argmax(axis=1) == index[known]))


def _check_num_bins(num_bins: Any) -> int:
    if not is_int(num_bins) or num_bins < 1:
        raise ParameterError(f"num_bins must be an integer >= 1, got {num_bins!r}")
    return int(num_bins)


def reliability_curve(y_true: Any, y_score: Any, *, num_bins: int = 10) -> pd.DataFrame:
    """Reliability curve over every (sample, species) probability, in equal-width bins of [0, 1].

    Bin ``b`` holds the probabilities in ``[b / num_bins, (b + 1) / num_bins)``; the last bin also holds 1.

    Args:
        y_true: ``(n_samples, n_classes)`` array of 0/1 labels.
        y_score: ``(n_samples, n_classes)`` probabilities in [0, 1].
        num_bins: number of bins.

    Returns:
        One row per bin: ``lower``, ``upper``, ``count``, ``mean_score`` and ``fraction_positive`` (both NaN in
        an empty bin).

    Raises:
        ParameterError: If the arrays are invalid (see :func:`micro_roc_auc`), a score is outside [0, 1], or
            ``num_bins`` is not a positive integer.
    """
    num_bins = _check_num_bins(num_bins)
    truth, score = check_arrays(y_true, y_score)
    if score.min() < 0.0 or score.max() > 1.0:
        raise ParameterError(f"calibration needs probabilities in [0, 1], got scores in [{score.min():g}, {score.max():g}]")
    p, y = score.ravel(), truth.ravel().astype(np.float64)
    bins = np.minimum((p * num_bins).astype(np.int64), num_bins - 1)
    count = np.bincount(bins, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(bins, weights=p, minlength=num_bins) / count
        fraction = np.bincount(bins, weights=y, minlength=num_bins) / count
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "count": count, "mean_score": mean_score, "fraction_positive": fraction})


def expected_calibration_error(y_true: Any, y_score: Any, *, num_bins: int = 10) -> float:
    """Expected calibration error: ``sum_b (n_b / N) * |fraction_positive_b - mean_score_b|``.

    Over every (sample, species) probability, with the equal-width bins of :func:`reliability_curve`.

    Raises:
        ParameterError: As :func:`reliability_curve`.
    """
    return _ece(reliability_curve(y_true, y_score, num_bins=num_bins))


def _ece(curve: pd.DataFrame) -> float:
    filled = curve[curve["count"] > 0]
    weights = filled["count"].to_numpy() / filled["count"].sum()
    return float(np.sum(weights * np.abs(filled["fraction_positive"].to_numpy() - filled["mean_score"].to_numpy())))


def primary_confusion(y_score: Any, primary: Any) -> np.ndarray:
    """Counts of (true primary label, highest-scoring species) pairs.

    Args:
        y_score: ``(n_samples, n_classes)`` scores.
        primary: ``(n_samples,)`` primary class index of each sample, -1 for none (left out).

    Returns:
        ``(n_classes, n_classes)`` int64 counts: rows are the true primary label, columns the arg-max prediction.

    Raises:
        ParameterError: If ``y_score`` is not a finite 2-D array or ``primary`` does not match it.
    """
    _, score = check_arrays(np.zeros(np.shape(y_score)), y_score)
    index = _check_primary(primary, *score.shape)
    known = index >= 0
    counts = np.zeros((score.shape[1], score.shape[1]), dtype=np.int64)
    np.add.at(counts, (index[known], score[known].argmax(axis=1)), 1)
    return counts


def row_normalise(counts: Any) -> np.ndarray:
    """Each row divided by its sum (rows summing to 0 stay 0), float64."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def cluster_order(confusion: Any) -> np.ndarray:
    """An order of the species that puts those confused with each other next to each other.

    The row-normalised confusion ``M`` gives a similarity ``S = (M + M.T) / 2`` and a distance ``1 - S``
    between two species; average-linkage hierarchical clustering with optimal leaf ordering
    (``scipy.cluster.hierarchy``) gives the order of its leaves.

    Args:
        confusion: ``(n, n)`` counts (or rates), rows the true label.

    Returns:
        ``(n,)`` int64 permutation of ``0 .. n - 1``.

    Raises:
        ParameterError: If ``confusion`` is not a square matrix of finite non-negative numbers.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    matrix = np.asarray(confusion, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ParameterError(f"cluster_order needs a square matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise ParameterError("cluster_order needs finite, non-negative counts")
    n = matrix.shape[0]
    if n <= 2:
        return np.arange(n, dtype=np.int64)
    rates = row_normalise(matrix)
    distance = np.clip(1.0 - (rates + rates.T) / 2.0, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average", optimal_ordering=True)
    return leaves_list(tree).astype(np.int64)


@dataclass(frozen=True)
class EvalMetrics:
    """Everything :func:`evaluate_arrays` computes.

    Attributes:
        summary: ``padded_cmap``, ``cmap``, ``macro_auc`` (as :func:`birdcall.metrics.score_arrays`, with its
            counts), ``micro_auc``, ``top1_accuracy`` (NaN without primary labels), ``ece`` (NaN when the scores
            are not probabilities), ``num_bins``.
        species: :func:`species_table`.
        reliability: :func:`reliability_curve`, or None when the scores are not probabilities.
        confusion: :func:`primary_confusion` counts, or None without primary labels.
        confusion_order: :func:`cluster_order` of ``confusion`` restricted to ``confusion_species``.
        confusion_species: indices of the species in the confusion matrix plot: those that are a primary label
            or a prediction of a sample with one.
    """

    summary: dict[str, Any]
    species: pd.DataFrame
    reliability: pd.DataFrame | None = None
    confusion: np.ndarray | None = None
    confusion_species: np.ndarray | None = None
    confusion_order: np.ndarray | None = None


def evaluate_arrays(
    y_true: Any, y_score: Any, *, codes: Any = None, primary: Any = None, padding_factor: int = 5, num_bins: int = 10
) -> EvalMetrics:
    """All the metrics of an evaluation report.

    Args:
        y_true: ``(n_samples, n_classes)`` array of 0/1 labels.
        y_score: ``(n_samples, n_classes)`` array of scores.
        codes: species codes, one per column.
        primary: ``(n_samples,)`` primary class index per sample (-1 for none), or None (soundscape windows).
        padding_factor: rows of ones appended for padded cmAP.
        num_bins: bins of the reliability curve and ECE.

    Returns:
        An :class:`EvalMetrics`.

    Raises:
        ParameterError: If the arrays are invalid, or ``primary``, ``codes``, ``padding_factor`` or
            ``num_bins`` is.
    """
    truth, score = check_arrays(y_true, y_score)
    num_bins = _check_num_bins(num_bins)
    summary = score_arrays(truth, score, padding_factor=padding_factor)
    summary["micro_auc"] = micro_roc_auc(truth, score)
    species = species_table(truth, score, codes=codes)
    reliability = None
    summary["ece"] = float("nan")
    summary["num_bins"] = num_bins
    if score.min() >= 0.0 and score.max() <= 1.0:
        reliability = reliability_curve(truth, score, num_bins=num_bins)
        summary["ece"] = _ece(reliability)
    summary["top1_accuracy"] = float("nan")
    summary["num_primary"] = 0
    confusion = shown = order = None
    if primary is not None:
        index = _check_primary(primary, *score.shape)
        summary["num_primary"] = int((index >= 0).sum())
        if summary["num_primary"]:
            summary["top1_accuracy"] = top1_accuracy(score, index)
            confusion = primary_confusion(score, index)
            shown = np.flatnonzero(confusion.sum(axis=0) + confusion.sum(axis=1) > 0)
            order = cluster_order(confusion[np.ix_(shown, shown)])
    return EvalMetrics(summary, species, reliability, confusion, shown, order)
