"""Multi-label stratified K-fold: iterative stratification, with a rule for species too rare to split.

Iterative stratification (Sechidis, Tsoumakas & Vlahavas 2011, "On the stratification of multi-label data",
ECML PKDD) is what scikit-multilearn's ``IterativeStratification`` and iterstrat's
``MultilabelStratifiedKFold`` implement. It is written here in numpy (about 60 lines) rather than taken from
those packages: both are unmaintained, scikit-multilearn pulls in heavy optional dependencies, and neither
has the rare-species rule below.

The algorithm, for ``k`` folds of equal desired size: each fold wants ``support[l] / k`` clips of species
``l`` and ``n / k`` clips in all. Repeatedly take the species with the fewest clips not yet assigned (ties
broken at random) and give each of its unassigned clips, in a seeded random order, to the fold that still
wants the most clips of that species; ties go to the fold that wants the most clips in all, then at random.
A clip's assignment lowers the wants of every species it carries. Clips without any species are dealt out
last, to the folds that want the most clips. Processing the rarest species first is what keeps them spread.

Rare species (fewer clips than folds) cannot appear in every validation fold. The rule is "rare species
are kept in training folds where they cannot be split": the validation part of a fold may hold at most
``cap`` clips of a species with ``m`` clips, where

* ``m == 1``: ``cap = 0``. The clip never goes to validation: it is *train-only* (fold id ``-1``) and is in
  the training part of every fold (so a species with one clip is never scored).
* ``2 <= m < n_splits``: ``cap = 1``. Its clips go to distinct folds, so each fold validates at most one of
  them and keeps ``m - 1 >= 1`` in training; ``n_splits - m`` folds do not validate the species at all.
* ``m >= n_splits``: ``cap = m - 1``, a safety net so that a fold never validates every clip of a species
  (stratification already aims at ``m / n_splits`` per fold, so the cap practically never binds).

A clip goes to the best fold (as above) among the folds where none of its species would exceed its cap. A
clip for which no fold is allowed (it carries several rare species whose clips already fill different
folds) is also train-only. Caps use a species' total number of clips, train-only ones included.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validate import check_int, is_int
from ..errors import ParameterError
from .dataset import ClipTable

__all__ = ["TRAIN_ONLY", "fold_report", "fold_split", "iterative_stratified_folds", "make_folds"]

TRAIN_ONLY = -1
"""Fold id of a clip that is in the training part of every fold and never validated."""


def _check_targets(y) -> np.ndarray:
    """``y`` as a boolean ``(n_samples, n_classes)`` array of positives (any value > 0 counts as positive)."""
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[0] == 0 or y.shape[1] == 0:
        raise ParameterError(f"expected a non-empty (n_samples, n_classes) label matrix, got shape {y.shape}")
    if y.dtype != bool:
        if y.dtype.kind not in "iuf":
            raise ParameterError(f"expected a numeric or boolean label matrix, got dtype {y.dtype}")
        if not np.isfinite(y).all() or (y < 0).any():
            raise ParameterError("label matrix must hold finite values >= 0 (0/1, or soft targets where > 0 is positive)")
    return y > 0


def _check_n_splits(n_splits) -> int:
    return check_int("n_splits", n_splits, min=2)


def _species_caps(support: np.ndarray, n_splits: int) -> np.ndarray:
    """Most clips of each species one validation fold may hold (see the module docstring)."""
    return np.where(support < n_splits, np.minimum(support, 2) - 1, support - 1)


def iterative_stratified_folds(y: np.ndarray, *, n_splits: int = 5, seed: int = 0) -> np.ndarray:
    """Assign each sample to a validation fold by iterative stratification.

    Every fold's validation part gets close to ``1 / n_splits`` of each species' clips; species with fewer
    clips than folds follow the rare-species rule of this module's docstring.

    Args:
        y: ``(n_samples, n_classes)`` multi-hot labels (0/1 or bool; soft targets count as positive where > 0).
        n_splits: number of folds.
        seed: seeds the tie-breaking and the order clips are dealt in; the same seed gives the same folds.

    Returns:
        ``(n_samples,)`` int64 fold ids in ``0 .. n_splits - 1``, or :data:`TRAIN_ONLY` (-1) for clips that
        stay in training in every fold. Fold ``j`` validates on ``folds == j`` and trains on the rest.

    Raises:
        ParameterError: malformed ``y``, ``n_splits`` < 2 or not an integer, or more folds than samples can
            fill (some fold would validate nothing).

    Example:
        >>> y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 1]])
        >>> folds = iterative_stratified_folds(y, n_splits=2, seed=0)
        >>> sorted(np.bincount(folds).tolist())
        [3, 3]
    """
    y = _check_targets(y)
    n_splits = _check_n_splits(n_splits)
    n_samples = len(y)
    if n_splits > n_samples:
        raise ParameterError(f"n_splits={n_splits} is more than the number of samples ({n_samples})")
    rng = np.random.default_rng(seed)
    support = y.sum(axis=0)
    cap = _species_caps(support, n_splits)

    folds = np.full(n_samples, TRAIN_ONLY, dtype=np.int64)
    pending = ~(y & (cap == 0)).any(axis=1)  # clips of single-clip species are train-only from the start
    order = rng.permutation(n_samples)  # the seeded order clips are dealt in
    y_ordered = y[order]
    # The paper's desired counts, scaled by n_splits to stay integer (exact ties): fold j still wants
    # (want_species[j, l] / n_splits) clips of species l and (want_size[j] / n_splits) clips in all.
    want_species = np.tile(y[pending].sum(axis=0), (n_splits, 1)).astype(np.int64)
    want_size = np.full(n_splits, int(pending.sum()), dtype=np.int64)
    held = np.zeros((n_splits, y.shape[1]), dtype=np.int64)  # validation clips of each species per fold
    remaining = y[pending].sum(axis=0)

    def best_fold(scores: np.ndarray, allowed: np.ndarray) -> int:
        top = allowed & (scores == scores[allowed].max())
        top &= want_size == want_size[top].max()
        return int(rng.choice(np.flatnonzero(top)))

    while remaining.any():
        rarest = np.flatnonzero(remaining == remaining[remaining > 0].min())
        label = int(rng.choice(rarest))
        for i in order[y_ordered[:, label] & pending[order]]:
            labels = y[i]
            allowed = (held[:, labels] < cap[labels]).all(axis=1)
            pending[i] = False
            remaining[labels] -= 1
            if not allowed.any():
                continue  # stays TRAIN_ONLY: its rare species already fill every fold they may use
            j = best_fold(want_species[:, label], allowed)
            folds[i] = j
            held[j, labels] += 1
            want_species[j, labels] -= n_splits
            want_size[j] -= n_splits
    everywhere = np.ones(n_splits, dtype=bool)
    for i in order[pending[order]]:  # clips without any species
        folds[i] = j = best_fold(want_size, everywhere)
        want_size[j] -= n_splits
    sizes = np.bincount(folds[folds >= 0], minlength=n_splits)
    if (sizes == 0).any():
        raise ParameterError(
            f"n_splits={n_splits} leaves fold(s) {np.flatnonzero(sizes == 0).tolist()} without validation samples "
            f"({int((folds == TRAIN_ONLY).sum())} of {n_samples} samples are train-only); use fewer folds"
        )
    return folds


def fold_split(folds: np.ndarray, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices of fold ``fold``: ``(train_idx, val_idx)``, both sorted.

    Train-only samples (fold id :data:`TRAIN_ONLY`) are in ``train_idx`` of every fold.

    Raises:
        ParameterError: ``fold`` is not one of the fold ids in ``folds``.
    """
    folds = np.asarray(folds)
    n_splits = int(folds.max()) + 1 if folds.size else 0
    if not is_int(fold) or not 0 <= fold < n_splits:
        raise ParameterError(f"fold must be an integer in [0, {n_splits}), got {fold!r}")
    val = folds == fold
    return np.flatnonzero(~val), np.flatnonzero(val)


def _label_lists(column: pd.Series) -> list[list[str]]:
    return [list(v) if isinstance(v, (list, tuple)) else str(v).split() for v in column]


def make_folds(source: ClipTable | pd.DataFrame, *, n_splits: int = 5, seed: int = 0) -> pd.DataFrame:
    """Fold assignment of a data set's clips by :func:`iterative_stratified_folds`.

    Args:
        source: a :class:`~birdcall.data.ClipTable`, or a frame with ``filename`` and ``labels`` (lists of
            species codes, or space-separated codes as in a NIPS4B ``train_metadata.csv``).
        n_splits: number of folds.
        seed: same seed, same folds.

    Returns:
        A frame in the source's row order with ``filename``, ``labels`` (space-separated codes) and ``fold``
        (``0 .. n_splits - 1``, or -1 for train-only clips). Save it with
        :func:`birdcall.fileio.atomic_to_csv` to fix the folds of an experiment.

    Raises:
        ParameterError: no ``filename``/``labels`` columns, duplicate file names, or as
            :func:`iterative_stratified_folds`.
    """
    frame = source.frame if isinstance(source, ClipTable) else source
    if not isinstance(frame, pd.DataFrame) or not {"filename", "labels"} <= set(frame.columns):
        raise ParameterError("make_folds needs a ClipTable or a DataFrame with 'filename' and 'labels' columns")
    if frame["filename"].duplicated().any():
        raise ParameterError(f"duplicate file names, e.g. {frame['filename'][frame['filename'].duplicated()].iloc[0]!r}")
    labels = _label_lists(frame["labels"])
    codes = source.labels.codes if isinstance(source, ClipTable) else sorted({c for row in labels for c in row})
    index = {c: i for i, c in enumerate(codes)}
    y = np.zeros((len(labels), max(len(codes), 1)), dtype=bool)
    for i, row in enumerate(labels):
        y[i, [index[c] for c in row]] = True
    folds = iterative_stratified_folds(y, n_splits=n_splits, seed=seed)
    return pd.DataFrame({"filename": frame["filename"].to_numpy(), "labels": [" ".join(r) for r in labels], "fold": folds})


def fold_report(folds: pd.DataFrame, *, codes: tuple[str, ...] | list[str] | None = None) -> pd.DataFrame:
    """Per-species support in each fold, for logs and benchmarks.

    Args:
        folds: a :func:`make_folds` frame (``labels`` and ``fold`` columns).
        codes: species order of the rows (e.g. ``table.labels.codes``, which also lists species without
            clips); None takes the codes found in ``folds``, sorted.

    Returns:
        A frame indexed by species code with ``total`` (clips), ``train_only`` (clips never validated), then
        ``train_<j>`` and ``val_<j>`` (clips in the training and validation part of fold ``j``) for every
        fold. The last row, ``(all clips)``, counts clips rather than species occurrences.
    """
    if not {"labels", "fold"} <= set(folds.columns):
        raise ParameterError("fold_report needs a frame with 'labels' and 'fold' columns (see make_folds)")
    labels = _label_lists(folds["labels"])
    fold_ids = folds["fold"].to_numpy(dtype=np.int64)
    codes = list(codes) if codes is not None else sorted({c for row in labels for c in row})
    index = {c: i for i, c in enumerate(codes)}
    n_splits = int(fold_ids.max()) + 1 if len(fold_ids) else 0
    counts = np.zeros((len(codes) + 1, n_splits + 1), dtype=np.int64)  # column n_splits: train-only
    for row, f in zip(labels, fold_ids):
        col = n_splits if f == TRAIN_ONLY else f
        for c in row:
            if c not in index:
                raise ParameterError(f"species {c!r} of the folds frame is not in codes")
            counts[index[c], col] += 1
        counts[-1, col] += 1
    total = counts.sum(axis=1)
    report = {"total": total, "train_only": counts[:, n_splits]}
    for j in range(n_splits):
        report[f"train_{j}"] = total - counts[:, j]
        report[f"val_{j}"] = counts[:, j]
    return pd.DataFrame(report, index=pd.Index([*codes, "(all clips)"], name="species"))
