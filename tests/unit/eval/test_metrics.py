"""Extended metrics against scikit-learn and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from birdcall.errors import ParameterError
from birdcall.metrics import (
    best_f1,
    cluster_order,
    evaluate_arrays,
    expected_calibration_error,
    micro_roc_auc,
    primary_confusion,
    reliability_curve,
    score_arrays,
    species_table,
    top1_accuracy,
)


def test_micro_auc_matches_sklearn(scores):
    y_true, y_score, _ = scores
    assert micro_roc_auc(y_true, y_score) == pytest.approx(roc_auc_score(y_true, y_score, average="micro"), abs=1e-12)


def test_micro_auc_is_nan_without_both_classes():
    assert math.isnan(micro_roc_auc([[0, 0], [0, 0]], [[0.1, 0.2], [0.3, 0.4]]))


def test_best_f1_hand_computed():
    # thresholds 0.1: P 2/4 R 1 F1 2/3; 0.3: P 2/3 R 1 F1 0.8; 0.8: P 1/2 R 1/2; 0.9: P 1 R 1/2 F1 2/3.
    f1, threshold, precision, recall = best_f1([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1])
    assert (f1, threshold, precision, recall) == pytest.approx((0.8, 0.3, 2 / 3, 1.0))


def test_best_f1_takes_the_lowest_of_tied_thresholds():
    # 0.6: P 2/4 R 1 F1 2/3; 0.7: P 1/3 R 1/2 F1 0.4; 0.8: P 1/2 R 1/2 F1 0.5; 0.9: P 1 R 1/2 F1 2/3 -> 0.6
    assert best_f1([1, 0, 0, 1], [0.9, 0.8, 0.7, 0.6]) == pytest.approx((2 / 3, 0.6, 0.5, 1.0))


def test_best_f1_without_positives_is_nan_and_rejects_2d():
    assert all(math.isnan(v) for v in best_f1([0, 0], [0.2, 0.4]))
    with pytest.raises(ParameterError, match="1-D"):
        best_f1([[1, 0]], [[0.2, 0.4]])


def test_species_table_matches_sklearn(scores):
    y_true, y_score, _ = scores
    table = species_table(y_true, y_score, codes=["a", "b", "c"])
    assert table["species"].tolist() == ["a", "b", "c"]
    for j in range(3):
        assert table["ap"][j] == pytest.approx(average_precision_score(y_true[:, j], y_score[:, j]))
        assert table["auc"][j] == pytest.approx(roc_auc_score(y_true[:, j], y_score[:, j]))
        assert table["support"][j] == y_true[:, j].sum()
        predicted = y_score[:, j] >= table["threshold"][j]
        tp = int((predicted & (y_true[:, j] == 1)).sum())
        assert table["precision"][j] == pytest.approx(tp / predicted.sum())
        assert table["recall"][j] == pytest.approx(tp / y_true[:, j].sum())
    assert table["support"].dtype == np.int64


def test_species_table_nan_for_species_without_positives():
    table = species_table([[1, 0], [0, 0]], [[0.9, 0.5], [0.1, 0.2]])
    assert table["ap"].isna().tolist() == [False, True] and table["auc"].isna().tolist() == [False, True]
    assert table["support"].tolist() == [1, 0]
    with pytest.raises(ParameterError, match="codes"):
        species_table([[1, 0]], [[0.9, 0.5]], codes=["a"])


def test_top1_accuracy_hand_computed():
    y_score = [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.3, 0.3, 0.9]]
    assert top1_accuracy(y_score, [0, 1, 2, -1]) == pytest.approx(2 / 3)  # the last sample has no primary label
    assert math.isnan(top1_accuracy(y_score, [-1, -1, -1, -1]))
    with pytest.raises(ParameterError, match="shape"):
        top1_accuracy(y_score, [0, 1])
    with pytest.raises(ParameterError, match="-1..2"):
        top1_accuracy(y_score, [0, 1, 3, 0])


def test_reliability_and_ece_hand_computed():
    # 4 bins. Probabilities 0.1, 0.2 (bin 0), 0.3 (bin 1), 0.6 (bin 2), 0.9, 1.0 (bin 3).
    y_true = [[0, 1], [0, 1], [1, 1]]
    y_score = [[0.1, 0.9], [0.2, 1.0], [0.3, 0.6]]
    curve = reliability_curve(y_true, y_score, num_bins=4)
    assert curve["count"].tolist() == [2, 1, 1, 2]
    np.testing.assert_allclose(curve["mean_score"], [0.15, 0.3, 0.6, 0.95])
    np.testing.assert_allclose(curve["fraction_positive"], [0.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(curve["lower"], [0, 0.25, 0.5, 0.75])
    # ECE = (2 * 0.15 + 1 * 0.7 + 1 * 0.4 + 2 * 0.05) / 6 = 1.5 / 6
    assert expected_calibration_error(y_true, y_score, num_bins=4) == pytest.approx(0.25)


def test_ece_matches_a_direct_loop(rng):
    y_score = rng.uniform(size=(50, 4))
    y_true = (rng.uniform(size=(50, 4)) < y_score).astype(int)
    p, y = y_score.ravel(), y_true.ravel()
    total = 0.0
    for b in range(10):
        inside = (p >= b / 10) & ((p < (b + 1) / 10) | (b == 9))
        if inside.any():
            total += inside.sum() / p.size * abs(y[inside].mean() - p[inside].mean())
    assert expected_calibration_error(y_true, y_score) == pytest.approx(total)


def test_reliability_rejects_non_probabilities_and_bad_bins():
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        reliability_curve([[1, 0]], [[1.5, 0.2]])
    with pytest.raises(ParameterError, match="num_bins"):
        reliability_curve([[1, 0]], [[0.5, 0.2]], num_bins=0)


def test_primary_confusion_counts_hand_made():
    y_score = [
        [0.9, 0.1, 0.0],  # true 0 -> 0
        [0.8, 0.3, 0.1],  # true 1 -> 0
        [0.1, 0.7, 0.2],  # true 1 -> 1
        [0.1, 0.2, 0.6],  # true 1 -> 2
        [0.1, 0.9, 0.2],  # true 2 -> 1
        [0.9, 0.9, 0.9],  # no primary: left out
    ]
    counts = primary_confusion(y_score, [0, 1, 1, 1, 2, -1])
    np.testing.assert_array_equal(counts, [[1, 0, 0], [1, 1, 1], [0, 1, 0]])
    assert counts.dtype == np.int64


def test_cluster_order_puts_confused_species_together():
    # a <-> c confused, b <-> d confused, nothing else
    counts = np.array([[5, 0, 5, 0], [0, 6, 0, 4], [4, 0, 6, 0], [0, 5, 0, 5]])
    order = cluster_order(counts).tolist()
    assert sorted(order) == [0, 1, 2, 3]
    position = {species: i for i, species in enumerate(order)}
    assert abs(position[0] - position[2]) == 1 and abs(position[1] - position[3]) == 1
    assert cluster_order([[3]]).tolist() == [0]
    with pytest.raises(ParameterError, match="square"):
        cluster_order([[1, 2]])


def test_evaluate_arrays_combines_everything(scores):
    y_true, y_score, primary = scores
    result = evaluate_arrays(y_true, y_score, codes=["a", "b", "c"], primary=primary, padding_factor=3, num_bins=5)
    base = score_arrays(y_true, y_score, padding_factor=3)
    for key, value in base.items():
        assert result.summary[key] == pytest.approx(value)
    assert result.summary["micro_auc"] == pytest.approx(roc_auc_score(y_true, y_score, average="micro"))
    assert result.summary["top1_accuracy"] == pytest.approx(np.mean(y_score.argmax(1) == primary))
    assert result.summary["ece"] == pytest.approx(expected_calibration_error(y_true, y_score, num_bins=5))
    assert result.summary["num_primary"] == 12 and len(result.reliability) == 5
    np.testing.assert_array_equal(result.confusion, primary_confusion(y_score, primary))
    assert sorted(result.confusion_order.tolist()) == list(range(len(result.confusion_species)))


def test_evaluate_arrays_without_primary_or_probabilities():
    result = evaluate_arrays([[1, 0], [0, 1]], [[2.0, -1.0], [0.5, 3.0]])
    assert result.confusion is None and result.reliability is None
    assert math.isnan(result.summary["ece"]) and math.isnan(result.summary["top1_accuracy"])
