import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from birdcall.data import read_clip_table
from birdcall.data.folds import (
    TRAIN_ONLY,
    fold_report,
    fold_split,
    iterative_stratified_folds,
    make_folds,
)
from birdcall.errors import ParameterError


def _long_tail(rng, n=300, n_classes=30):
    """Multi-label matrix with a long tail: class c has frequency ~ 0.3 / (c + 1), one to three labels a row."""
    p = 0.3 / np.arange(1, n_classes + 1)
    y = rng.random((n, n_classes)) < p
    y[~y.any(axis=1), 0] = True
    return y


def _deviation(y, folds, n_splits):
    """Mean |validation count - support / n_splits| over (species, fold): 0 is perfectly stratified."""
    val = np.stack([y[folds == j].sum(axis=0) for j in range(n_splits)])
    return np.abs(val - y.sum(axis=0) / n_splits).mean()


def _check_rules(y, folds, n_splits):
    y = np.asarray(y) > 0
    assert folds.shape == (len(y),) and folds.dtype == np.int64
    assert set(np.unique(folds)) <= {TRAIN_ONLY, *range(n_splits)}
    support = y.sum(axis=0)
    for j in range(n_splits):
        train, val = fold_split(folds, j)
        assert len(val) > 0
        assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(y)))  # partition
        held = y[val].sum(axis=0)
        assert (held[support == 1] == 0).all()  # single-clip species never validated
        assert (held[(support >= 2) & (support < n_splits)] <= 1).all()  # rare species: one clip per fold at most
        assert (y[train].sum(axis=0)[support > 0] >= 1).all()  # every species keeps a clip in training


def test_partition_and_rules_on_long_tail(rng):
    y = _long_tail(rng)
    folds = iterative_stratified_folds(y, n_splits=5, seed=0)
    _check_rules(y, folds, 5)
    sizes = np.bincount(folds[folds >= 0])
    assert (np.abs(sizes - sizes.mean()) <= 0.15 * sizes.mean()).all()  # sizes are only a tie-breaker


def test_iterative_beats_random_split(rng):
    y = _long_tail(rng)
    iterative = iterative_stratified_folds(y, n_splits=5, seed=3)
    random = np.random.default_rng(3).permutation(np.arange(len(y)) % 5)
    assert _deviation(y, iterative, 5) < 0.5 * _deviation(y, random, 5)


def test_single_clip_species_is_train_only_and_rare_species_spread():
    y = np.zeros((40, 3), dtype=int)
    y[:, 0] = 1  # common
    y[7, 1] = 1  # one clip
    y[[3, 11, 20], 2] = 1  # three clips, fewer than 5 folds
    folds = iterative_stratified_folds(y, n_splits=5, seed=1)
    assert folds[7] == TRAIN_ONLY and (folds == TRAIN_ONLY).sum() == 1
    assert len(set(folds[[3, 11, 20]])) == 3  # distinct folds: two of them always in training
    _check_rules(y, folds, 5)


def test_clip_whose_rare_species_cannot_be_placed_is_train_only():
    # Species 1, 2, 3 have two clips each, on clips {0, 1}, {1, 2}, {0, 2}: with two folds, clips 0, 1 and 2
    # cannot all be in different folds, so one of them stays in training.
    y = np.array([[1, 1, 0, 1], [1, 1, 1, 0], [1, 0, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]])
    for seed in range(10):
        folds = iterative_stratified_folds(y, n_splits=2, seed=seed)
        assert (folds[:3] == TRAIN_ONLY).sum() == 1 and (folds[3:] != TRAIN_ONLY).all()
        _check_rules(y, folds, 2)


def test_unlabelled_rows_are_dealt_out():
    y = np.zeros((10, 2), dtype=bool)
    y[:4, 0] = True
    folds = iterative_stratified_folds(y, n_splits=2, seed=0)
    assert np.bincount(folds).tolist() == [5, 5]


def test_deterministic_for_a_seed(rng):
    y = _long_tail(rng, n=120)
    a = iterative_stratified_folds(y, n_splits=4, seed=7)
    assert np.array_equal(a, iterative_stratified_folds(y, n_splits=4, seed=7))
    assert not np.array_equal(a, iterative_stratified_folds(y, n_splits=4, seed=8))


def test_tiny_golden_vector():
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 1]])
    assert iterative_stratified_folds(y, n_splits=2, seed=0).tolist() == [1, 0, 1, 1, 0, 0]


@pytest.mark.parametrize("n_splits", [1, 0, -3, 2.5, True, "5", 7])
def test_bad_n_splits(n_splits):
    with pytest.raises(ParameterError):
        iterative_stratified_folds(np.eye(6), n_splits=n_splits)


@pytest.mark.parametrize("y", [np.ones(5), np.ones((0, 3)), np.ones((5, 0)), -np.ones((5, 2)),
                               np.full((5, 2), np.nan), np.array([["a", "b"]] * 5)])
def test_bad_label_matrix(y):
    with pytest.raises(ParameterError):
        iterative_stratified_folds(y, n_splits=2)


def test_too_many_folds_for_the_validatable_clips():
    y = np.zeros((6, 2), dtype=int)
    y[:, 0] = 1
    y[0, 1] = 1  # clip 0 is train-only: 5 clips left for 6 folds
    with pytest.raises(ParameterError, match="without validation samples"):
        iterative_stratified_folds(y, n_splits=6)


def test_fold_split_errors():
    folds = np.array([0, 1, -1, 1])
    train, val = fold_split(folds, 1)
    assert train.tolist() == [0, 2] and val.tolist() == [1, 3]
    for bad in (2, -1, 1.0):
        with pytest.raises(ParameterError):
            fold_split(folds, bad)


@settings(max_examples=40, deadline=None)
@given(y=arrays(bool, st.tuples(st.integers(12, 40), st.integers(1, 6))), n_splits=st.integers(2, 4), seed=st.integers(0, 2**32 - 1))
def test_invariants_randomized(y, n_splits, seed):
    try:
        folds = iterative_stratified_folds(y, n_splits=n_splits, seed=seed)
    except ParameterError as err:
        assert "without validation samples" in str(err)
        return
    _check_rules(y, folds, n_splits)


def test_make_folds_and_report_from_a_frame():
    frame = pd.DataFrame({"filename": [f"{i}.ogg" for i in range(12)],
                          "labels": ["aaa"] * 6 + ["aaa bbb"] * 3 + ["ccc"] * 2 + [["ddd", "aaa"]]})
    folds = make_folds(frame, n_splits=3, seed=0)
    assert folds.columns.tolist() == ["filename", "labels", "fold"]
    assert folds["filename"].tolist() == frame["filename"].tolist() and folds["labels"].iloc[-1] == "ddd aaa"
    report = fold_report(folds)
    assert report.index.tolist() == ["aaa", "bbb", "ccc", "ddd", "(all clips)"]
    assert report.loc["ddd", "train_only"] == 1 and report.loc["ddd", ["val_0", "val_1", "val_2"]].sum() == 0
    assert report.loc["ccc", ["val_0", "val_1", "val_2"]].max() == 1
    assert report.loc["(all clips)", "total"] == 12
    for j in range(3):
        assert (report[f"train_{j}"] + report[f"val_{j}"] == report["total"]).all()
    assert (report[[f"val_{j}" for j in range(3)]].sum(axis=1) + report["train_only"] == report["total"]).all()


def test_make_folds_errors():
    with pytest.raises(ParameterError, match="'filename' and 'labels'"):
        make_folds(pd.DataFrame({"filename": ["a"]}))
    with pytest.raises(ParameterError, match="duplicate"):
        make_folds(pd.DataFrame({"filename": ["a", "a", "b"], "labels": ["x", "x", "x"]}), n_splits=2)
    with pytest.raises(ParameterError, match="not in codes"):
        fold_report(pd.DataFrame({"labels": ["x"], "fold": [0]}), codes=["y"])


def test_nips4b_labels(nips4b_dir):
    table = read_clip_table(nips4b_dir, check_files=False)  # reads only the CSV files
    folds = make_folds(table, n_splits=5, seed=0)
    y = table.labels.encode(table.frame["labels"]) > 0
    _check_rules(y, folds["fold"].to_numpy(), 5)
    assert np.bincount(folds["fold"] + 1).tolist()[0] == 0  # no species with a single clip in NIPS4B
    report = fold_report(folds, codes=table.labels.codes)
    assert len(report) == 61 + 1 and (report["total"].iloc[:-1] >= 4).all()
    random = np.random.default_rng(0).permutation(np.arange(len(y)) % 5)
    assert _deviation(y, folds["fold"].to_numpy(), 5) < 0.5 * _deviation(y, random, 5)
    val = report[[f"val_{j}" for j in range(5)]].iloc[:-1]
    assert ((val == 0) & (report["total"].iloc[:-1] >= 5).to_numpy()[:, None]).to_numpy().sum() == 0  # every fold scores every species with >= 5 clips
    assert make_folds(pd.read_csv(nips4b_dir / "train_metadata.csv"), n_splits=5, seed=0)["fold"].tolist() == folds["fold"].tolist()
