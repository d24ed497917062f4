"""Tests for birdcall.metrics.scores and birdcall.eval.submission: hand-computed values, Kaggle parity, invariants
and every error path."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics
from hypothesis import given, settings
from hypothesis import strategies as st

from birdcall.errors import DataError, ParameterError
from birdcall.eval.submission import read_solution, read_submission, score_files, score_submission
from birdcall.metrics import cmap, macro_roc_auc, padded_cmap, per_species_ap, score_arrays

# The hand-computed case: 4 rows, 2 species.
#   row  truth A  score A   truth B  score B
#   0    1        0.9       0        0.6
#   1    0        0.8       1        0.5
#   2    1        0.3       0        0.2
#   3    0        0.1       0        0.4
Y_TRUE = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
Y_SCORE = np.array([[0.9, 0.6], [0.8, 0.5], [0.3, 0.2], [0.1, 0.4]])

# AP = mean over positives of the precision at that positive's rank.
# A ranked by score: 0.9 (T), 0.8 (F), 0.3 (T), 0.1 (F)
#   positive at rank 1: precision 1/1; positive at rank 3: precision 2/3  ->  AP_A = (1 + 2/3) / 2 = 5/6
# B ranked by score: 0.6 (F), 0.5 (T), 0.4 (F), 0.2 (F)
#   positive at rank 2: precision 1/2                                      ->  AP_B = 1/2
# cmAP = (5/6 + 1/2) / 2 = 2/3
AP_A, AP_B = 5 / 6, 1 / 2
CMAP = 2 / 3

# Padded (5 rows of truth 1, score 1.0 appended; the 5 tie at the top and count as one threshold).
# sklearn AP = sum over thresholds of (R_n - R_{n-1}) * P_n.
# A has 7 positives: 1.0 -> TP 5, P 1, R 5/7; 0.9 -> TP 6, P 1, R 6/7; 0.8 -> FP; 0.3 -> TP 7, FP 1, P 7/8, R 1
#   AP = 5/7 * 1 + 1/7 * 1 + 1/7 * 7/8 = 6/7 + 1/8 = 55/56
# B has 6 positives: 1.0 -> TP 5, P 1, R 5/6; 0.6 -> FP; 0.5 -> TP 6, FP 1, P 6/7, R 1
#   AP = 5/6 * 1 + 1/6 * 6/7 = 5/6 + 1/7 = 41/42
# padded cmAP = (55/56 + 41/42) / 2 = (165/168 + 164/168) / 2 = 329/336 = 47/48
PADDED_CMAP = 47 / 48

# ROC-AUC = fraction of (positive, negative) pairs ranked correctly.
# A: positives {0.9, 0.3}, negatives {0.8, 0.1}: 0.9>0.8, 0.9>0.1, 0.3<0.8, 0.3>0.1  ->  3/4
# B: positive {0.5}, negatives {0.6, 0.2, 0.4}: 0.5<0.6, 0.5>0.2, 0.5>0.4           ->  2/3
# macro AUC = (3/4 + 2/3) / 2 = 17/24
MACRO_AUC = 17 / 24


def kaggle_padded_cmap(solution: pd.DataFrame, submission: pd.DataFrame, padding_factor: int = 5) -> float:
    """The Kaggle BirdCLEF 2023 metric, as published (pandas concat of rows of ones, then sklearn)."""
    solution = solution.drop(["row_id"], axis=1, errors="ignore")
    submission = submission.drop(["row_id"], axis=1, errors="ignore")
    new_rows = []
    for _ in range(padding_factor):
        new_rows.append([1 for _ in range(len(solution.columns))])
    new_rows = pd.DataFrame(new_rows)
    new_rows.columns = solution.columns
    padded_solution = pd.concat([solution, new_rows]).reset_index(drop=True).copy()
    padded_submission = pd.concat([submission, new_rows]).reset_index(drop=True).copy()
    return sklearn.metrics.average_precision_score(padded_solution.values, padded_submission.values, average="macro")


def frames(y_true: np.ndarray, y_score: np.ndarray, species: list[str] | None = None):
    species = species or [f"sp{j}" for j in range(y_true.shape[1])]
    row_ids = [f"soundscape_{i}" for i in range(y_true.shape[0])]
    solution = pd.DataFrame(y_true, columns=species).assign(row_id=row_ids)[["row_id", *species]]
    submission = pd.DataFrame(y_score, columns=species).assign(row_id=row_ids)[["row_id", *species]]
    return solution, submission


def nan_as_none(value):
    """Make results comparable with ``==`` (NaN != NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: nan_as_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [nan_as_none(item) for item in value]
    return value


@st.composite
def truth_and_scores(draw, min_rows: int = 1, scores=None):
    """Small 0/1 truth and scores drawn from few values so ties (also with the padding's 1.0) are common."""
    num_rows = draw(st.integers(min_rows, 10))
    num_classes = draw(st.integers(1, 5))
    cells = num_rows * num_classes
    truth = draw(st.lists(st.sampled_from([0, 1]), min_size=cells, max_size=cells))
    values = scores if scores is not None else st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    score = draw(st.lists(values, min_size=cells, max_size=cells))
    return (
        np.array(truth, dtype=np.int64).reshape(num_rows, num_classes),
        np.array(score, dtype=np.float64).reshape(num_rows, num_classes),
    )


# --------------------------------------------------------------------------------------------------------------
# Hand-computed values
# --------------------------------------------------------------------------------------------------------------


def test_per_species_ap_hand_computed():
    ap = per_species_ap(Y_TRUE, Y_SCORE)
    assert ap.dtype == np.float64
    assert ap.shape == (2,)
    np.testing.assert_allclose(ap, [AP_A, AP_B], rtol=0, atol=1e-12)


def test_cmap_hand_computed():
    assert cmap(Y_TRUE, Y_SCORE) == pytest.approx(CMAP, abs=1e-12)


def test_padded_cmap_hand_computed():
    assert padded_cmap(Y_TRUE, Y_SCORE) == pytest.approx(PADDED_CMAP, abs=1e-12)


def test_padded_cmap_zero_padding_is_plain_macro_ap():
    assert padded_cmap(Y_TRUE, Y_SCORE, padding_factor=0) == pytest.approx(CMAP, abs=1e-12)


def test_macro_roc_auc_hand_computed():
    assert macro_roc_auc(Y_TRUE, Y_SCORE) == pytest.approx(MACRO_AUC, abs=1e-12)


def test_score_arrays_hand_computed():
    result = score_arrays(Y_TRUE, Y_SCORE)
    assert result == {
        "padded_cmap": pytest.approx(PADDED_CMAP, abs=1e-12),
        "cmap": pytest.approx(CMAP, abs=1e-12),
        "macro_auc": pytest.approx(MACRO_AUC, abs=1e-12),
        "padding_factor": 5,
        "num_samples": 4,
        "num_species": 2,
        "num_species_scored": 2,
        "num_species_auc": 2,
    }
    assert all(type(result[key]) is float for key in ("padded_cmap", "cmap", "macro_auc"))


def test_perfect_ranking_scores_one():
    y_true = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    y_score = np.array([[0.9, 0.1], [0.8, 0.7], [0.2, 0.6], [0.1, 0.2]])
    assert score_arrays(y_true, y_score)["padded_cmap"] == 1.0
    assert cmap(y_true, y_score) == 1.0
    assert macro_roc_auc(y_true, y_score) == 1.0


# --------------------------------------------------------------------------------------------------------------
# Parity with the Kaggle code and with sklearn
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_factor", [1, 3, 5])
def test_padded_cmap_matches_kaggle_random(rng, padding_factor):
    y_true = (rng.random((40, 12)) < 0.15).astype(int)
    y_true[:, 3] = 0  # a species without positives
    y_score = rng.random((40, 12))
    expected = kaggle_padded_cmap(*frames(y_true, y_score), padding_factor=padding_factor)
    assert padded_cmap(y_true, y_score, padding_factor=padding_factor) == pytest.approx(expected, rel=0, abs=1e-12)


def test_padded_cmap_zero_padding_matches_sklearn(rng):
    # The Kaggle code cannot pad 0 rows; without padding the metric is sklearn's macro AP (a species without
    # positives scores 0 there, and sklearn warns about it; padded_cmap does not).
    y_true = (rng.random((40, 6)) < 0.2).astype(int)
    y_true[:, 1] = 0
    y_score = rng.random((40, 6))
    with pytest.warns(UserWarning, match="No positive class"):
        expected = sklearn.metrics.average_precision_score(y_true, y_score, average="macro")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert padded_cmap(y_true, y_score, padding_factor=0) == pytest.approx(expected, rel=0, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(truth_and_scores())
def test_padded_cmap_matches_kaggle_with_ties(data):
    y_true, y_score = data
    expected = kaggle_padded_cmap(*frames(y_true, y_score))
    assert padded_cmap(y_true, y_score) == pytest.approx(expected, rel=0, abs=1e-12)
    assert score_submission(*frames(y_true, y_score))["padded_cmap"] == pytest.approx(expected, rel=0, abs=1e-12)


def test_macro_roc_auc_matches_sklearn_per_column(rng):
    y_true = (rng.random((50, 8)) < 0.3).astype(int)
    y_true[:, 2] = 0  # no positives: skipped
    y_true[:, 5] = 1  # no negatives: skipped
    y_score = rng.random((50, 8))
    kept = [j for j in range(8) if j not in (2, 5)]
    expected = np.mean([sklearn.metrics.roc_auc_score(y_true[:, j], y_score[:, j]) for j in kept])
    assert macro_roc_auc(y_true, y_score) == pytest.approx(expected, abs=1e-12)
    assert score_arrays(y_true, y_score)["num_species_auc"] == len(kept)


def test_per_species_ap_matches_sklearn_per_column(rng):
    y_true = (rng.random((30, 6)) < 0.3).astype(int)
    y_true[:, 4] = 0
    y_score = rng.random((30, 6))
    ap = per_species_ap(y_true, y_score)
    assert math.isnan(ap[4])
    for j in (0, 1, 2, 3, 5):
        assert ap[j] == pytest.approx(sklearn.metrics.average_precision_score(y_true[:, j], y_score[:, j]), abs=1e-12)


def test_macro_roc_auc_nan_without_both_classes():
    assert math.isnan(macro_roc_auc([[1, 0], [1, 0]], [[0.2, 0.3], [0.4, 0.5]]))


# --------------------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------------------


def test_padding_gives_species_without_positives_full_credit():
    # Species C has no positives. Unpadded its AP is undefined (sklearn says 0); padded, the 5 rows of ones rank
    # above every real row (scores < 1), so precision is 1 at each positive and its AP is 1.
    y_true = np.column_stack([Y_TRUE, np.zeros(4, dtype=int)])
    y_score = np.column_stack([Y_SCORE, [0.7, 0.2, 0.9, 0.4]])
    padded = padded_cmap(y_true, y_score)
    assert padded == pytest.approx((55 / 56 + 41 / 42 + 1.0) / 3, abs=1e-12)
    assert padded > padded_cmap(Y_TRUE, Y_SCORE)
    assert padded > padded_cmap(y_true, y_score, padding_factor=0)


@settings(max_examples=40, deadline=None)
@given(truth_and_scores(scores=st.floats(0.0, 0.99)))
def test_padding_never_lowers_the_score(data):
    # Prepending k certain positives can only raise precision at every real positive (scores < 1: no ties).
    y_true, y_score = data
    assert padded_cmap(y_true, y_score, padding_factor=5) >= padded_cmap(y_true, y_score, padding_factor=0) - 1e-12


def test_cmap_ignores_species_without_positives(rng):
    y_true = (rng.random((20, 4)) < 0.4).astype(int)
    y_true[0] = 1  # every species has a positive
    y_score = rng.random((20, 4))
    with_empty = np.column_stack([y_true, np.zeros(20, dtype=int)])
    scores_empty = np.column_stack([y_score, rng.random(20)])
    assert cmap(with_empty, scores_empty) == pytest.approx(cmap(y_true, y_score), abs=1e-12)
    result = score_arrays(with_empty, scores_empty)
    assert result["num_species"] == 5
    assert result["num_species_scored"] == 4


def test_cmap_nan_without_any_positive():
    assert math.isnan(cmap([[0, 0], [0, 0]], [[0.1, 0.2], [0.3, 0.4]]))
    assert padded_cmap([[0, 0], [0, 0]], [[0.1, 0.2], [0.3, 0.4]]) == 1.0


@settings(max_examples=40, deadline=None)
@given(truth_and_scores(), st.data())
@pytest.mark.integration
def test_score_submission_row_and_column_order_invariant(data, draw):
    y_true, y_score = data
    solution, submission = frames(y_true, y_score)
    rows = draw.draw(st.permutations(range(len(submission))))
    columns = draw.draw(st.permutations(list(submission.columns)))
    shuffled = submission.iloc[list(rows)][list(columns)].reset_index(drop=True)
    expected = score_submission(solution, submission)
    assert nan_as_none(score_submission(solution, shuffled)) == nan_as_none(expected)


def test_score_submission_equals_score_arrays_and_reports_extras():
    solution, submission = frames(Y_TRUE, Y_SCORE, species=["amecro", "barswa"])
    submission = submission.assign(extra1=0.5, extra2=0.1)
    submission = pd.concat([submission, pd.DataFrame({"row_id": ["unused"], "amecro": [0.3], "barswa": [0.2]})])
    result = score_submission(solution, submission)
    assert {key: result[key] for key in score_arrays(Y_TRUE, Y_SCORE)} == score_arrays(Y_TRUE, Y_SCORE)
    assert result["num_extra_species"] == 2
    assert result["num_extra_rows"] == 1
    assert result["per_species"] == [
        {"species": "amecro", "ap": pytest.approx(AP_A, abs=1e-12), "support": 2},
        {"species": "barswa", "ap": pytest.approx(AP_B, abs=1e-12), "support": 1},
    ]


# --------------------------------------------------------------------------------------------------------------
# Array-level validation
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y_true", "y_score", "match"),
    [
        ([1, 0, 1], [0.2, 0.3, 0.4], "2-D"),
        ([[1, 0]], [[0.2, 0.3, 0.1]], "same shape"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "at least one sample"),
        ([[2, 0]], [[0.2, 0.3]], "only 0 and 1"),
        ([[np.nan, 0]], [[0.2, 0.3]], "only 0 and 1"),
        ([[1, 0]], [[np.nan, 0.3]], "finite"),
        ([[1, 0]], [[np.inf, 0.3]], "finite"),
        ([[1, 0]], [["a", 0.3]], "numeric"),
    ],
)
@pytest.mark.parametrize("function", [padded_cmap, cmap, macro_roc_auc, per_species_ap, score_arrays])
def test_array_validation(function, y_true, y_score, match):
    with pytest.raises(ParameterError, match=match):
        function(y_true, y_score)


@pytest.mark.parametrize("padding_factor", [-1, 2.5, True, "5"])
def test_padding_factor_validation(padding_factor):
    with pytest.raises(ParameterError, match="padding_factor"):
        padded_cmap(Y_TRUE, Y_SCORE, padding_factor=padding_factor)
    with pytest.raises(ParameterError, match="padding_factor"):
        score_submission(*frames(Y_TRUE, Y_SCORE), padding_factor=padding_factor)


def test_accepts_bool_and_float32_inputs():
    expected = padded_cmap(Y_TRUE, Y_SCORE)
    assert padded_cmap(Y_TRUE.astype(bool), Y_SCORE.astype(np.float32)) == pytest.approx(expected, abs=1e-6)


# --------------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------------

SOLUTION_CSV = "row_id,amecro,barswa\nr1,1,0\nr2,0,1\nr3,1,0\nr4,0,0\n"
SUBMISSION_CSV = "row_id,barswa,amecro,extra\nr4,0.4,0.1,1\nr3,0.2,0.3,1\nr2,0.5,0.8,1\nr1,0.6,0.9,1\n"


def write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_score_files_hand_computed(tmp_path):
    solution = write(tmp_path, "solution.csv", SOLUTION_CSV)
    submission = write(tmp_path, "submission.csv", SUBMISSION_CSV)
    result = score_files(solution, submission)
    assert result["solution"] == str(solution)
    assert result["submission"] == str(submission)
    assert result["padded_cmap"] == pytest.approx(PADDED_CMAP, abs=1e-12)
    assert result["cmap"] == pytest.approx(CMAP, abs=1e-12)
    assert result["macro_auc"] == pytest.approx(MACRO_AUC, abs=1e-12)
    assert result["num_extra_species"] == 1
    assert result["num_extra_rows"] == 0
    assert [(row["species"], row["support"]) for row in result["per_species"]] == [("amecro", 2), ("barswa", 1)]


def test_read_keeps_row_ids_as_strings(tmp_path):
    path = write(tmp_path, "solution.csv", "row_id,a\n001,1\n002,0\n")
    assert read_solution(path)["row_id"].tolist() == ["001", "002"]
    path = write(tmp_path, "submission.csv", "row_id,a\n001,0.5\n002,0.25\n")
    assert read_submission(path)["row_id"].tolist() == ["001", "002"]


# (bad file, its text, expected fragment of the cause); the other file is the good one above.
BAD_FILES = [
    ("submission", "id,amecro,barswa\nr1,0.1,0.2\n", "no 'row_id' column"),
    ("solution", "amecro,barswa\n1,0\n", "no 'row_id' column"),
    ("submission", "row_id,amecro,barswa\nr1,0.1,0.2\nr1,0.3,0.4\nr2,0,0\nr3,0,0\nr4,0,0\n", "1 duplicate row_id(s), e.g. 'r1'"),
    ("solution", "row_id,amecro,barswa\nr1,1,0\nr1,0,1\n", "duplicate row_id(s)"),
    ("submission", "row_id,amecro,barswa\nr1,0.1,0.2\nr2,0.3,0.4\n", "2 of 4 solution row_ids are missing, e.g. 'r3', 'r4'"),
    ("submission", "row_id,amecro\nr1,0.1\nr2,0.1\nr3,0.1\nr4,0.1\n", "1 of 2 solution species columns are missing, e.g. 'barswa'"),
    ("submission", "row_id,amecro,barswa\nr1,0.1,0.2\nr2,high,0.4\nr3,0,0\nr4,0,0\n", "non-numeric score 'high' in column 'amecro' at row_id 'r2'"),
    ("submission", "row_id,amecro,barswa\nr1,0.1,0.2\nr2,0.3,\nr3,0,0\nr4,0,0\n", "1 missing (NaN) scores, first in column 'barswa' at row_id 'r2'"),
    ("submission", "row_id,amecro,barswa\nr1,0.1,0.2\nr2,0.3,inf\nr3,0,0\nr4,0,0\n", "1 infinite scores"),
    ("solution", "row_id,amecro,barswa\nr1,1,0\nr2,2,1\n", "truth values must be 0 or 1, found 2 in column 'amecro' at row_id 'r2'"),
    ("solution", "row_id,amecro,barswa\nr1,1,0\nr2,0.5,1\n", "truth values must be 0 or 1, found 0.5"),
    ("solution", "row_id,amecro,barswa\nr1,1,0\nr2,yes,1\n", "non-numeric truth value 'yes'"),
    ("solution", "row_id,amecro,barswa\nr1,1,0\nr2,,1\n", "missing (NaN) truth values"),
    ("solution", "", "file is empty"),
    ("submission", "", "file is empty"),
    ("submission", "row_id,amecro,barswa\n", "no data rows"),
    ("solution", "row_id\nr1\n", "no species columns"),
    ("solution", "row_id,amecro,amecro\nr1,1,0\n", "repeated column names: 'amecro'"),
    ("submission", "row_id,amecro,barswa\nr1,0.1,0.2\nr2,0.1,0.2,0.3,0.4\n", "cannot parse CSV"),
    ("submission", b"\xff\xfe\x00\x81garbage\x00\x9c\n", "cannot parse CSV"),
    ("solution", "row_id,amecro,barswa\nr1,1,0\n,0,1\n", "1 row(s) with an empty row_id"),
]


@pytest.mark.parametrize(("bad", "text", "fragment"), BAD_FILES)
def test_score_files_error_names_file(tmp_path, bad, text, fragment):
    texts = {"solution": SOLUTION_CSV, "submission": SUBMISSION_CSV, bad: text}
    solution = write(tmp_path, "truth.csv", texts["solution"])
    submission = write(tmp_path, "preds.csv", texts["submission"])
    bad_path = solution if bad == "solution" else submission
    with pytest.raises(DataError) as info:
        score_files(solution, submission)
    message = str(info.value)
    assert info.value.path == str(bad_path)
    assert message.startswith(f"{bad_path}: ")
    assert fragment in message
    assert "\n" not in message


def test_missing_file_and_directory(tmp_path):
    good = write(tmp_path, "submission.csv", SUBMISSION_CSV)
    with pytest.raises(DataError, match="nope.csv: no such file"):
        score_files(tmp_path / "nope.csv", good)
    with pytest.raises(DataError, match="not a regular file"):
        read_solution(tmp_path)


def test_missing_row_ids_message_shows_only_a_few(tmp_path):
    solution = write(tmp_path, "s.csv", "row_id,a\n" + "".join(f"r{i},{i % 2}\n" for i in range(10)))
    submission = write(tmp_path, "p.csv", "row_id,a\nr0,0.5\n")
    with pytest.raises(DataError, match=r"p\.csv: 9 of 10 solution row_ids are missing, e\.g\. 'r1', 'r2', 'r3', \.\.\.$"):
        score_files(solution, submission)


def test_score_submission_in_memory_errors_use_names():
    solution, submission = frames(Y_TRUE, Y_SCORE)
    with pytest.raises(DataError, match="^submission: 1 of 2 solution species"):
        score_submission(solution, submission.drop(columns="sp1"))
    with pytest.raises(DataError, match="^val.csv: 2 of 4 solution row_ids"):
        score_submission(solution, submission.iloc[:2], submission_name="val.csv")
    with pytest.raises(ParameterError, match="DataFrame"):
        score_submission(solution, Y_SCORE)


def test_score_submission_ignores_bad_values_in_extra_columns():
    solution, submission = frames(Y_TRUE, Y_SCORE)
    result = score_submission(solution, submission.assign(notes="text"))
    assert result["num_extra_species"] == 1
    assert result["cmap"] == pytest.approx(CMAP, abs=1e-12)


def test_submission_names_moved_to_eval_submission_still_import_from_metrics_with_a_warning():
    import birdcall.eval.submission
    import birdcall.metrics

    for name in ("ROW_ID", "read_solution", "read_submission", "score_files", "score_submission"):
        with pytest.warns(DeprecationWarning, match=f"birdcall.metrics.{name} moved to birdcall.eval.submission.{name}"):
            assert getattr(birdcall.metrics, name) is getattr(birdcall.eval.submission, name)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        birdcall.metrics.nothing_here  # noqa: B018
