"""K-fold cross-validation: one ``fit`` per fold in ``RUN/fold<i>/`` and a summary over folds.

Folds come from iterative multi-label stratification (``birdcall.data.folds``); the fold of every clip is
written to ``RUN/folds.csv`` so evaluation and ensembling can find out-of-fold predictions later.
``RUN/summary.csv`` holds each fold's best epoch and metrics, ``RUN/oof.csv`` all out-of-fold scores.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import to_yaml
from ..data.dataset import ClipTable
from ..data.folds import make_folds
from ..errors import ParameterError
from ..fileio import atomic_to_csv
from ..metrics import score_arrays
from .config import TrainConfig
from .loop import FitResult, fit

__all__ = ["assign_folds", "fit_folds"]


def assign_folds(table: ClipTable, *, n_splits: int, seed: int) -> np.ndarray:
    """Fold id of every clip (iterative stratification on all labels, secondaries included)."""
    return make_folds(table, n_splits=n_splits, seed=seed)["fold"].to_numpy()


def fit_folds(
    table: ClipTable,
    config: TrainConfig,
    run_dir: str | Path,
    *,
    only_fold: int | None = None,
    resume: bool = False,
    show_progress: bool = True,
) -> list[FitResult]:
    """Train every fold (or ``only_fold``) of a ``config.folds``-fold split; returns one result per fold run."""
    if config.folds < 2:
        raise ParameterError(f"fit_folds needs config.folds >= 2, got {config.folds}")
    if only_fold is not None and not 0 <= only_fold < config.folds:
        raise ParameterError(f"fold must be in 0..{config.folds - 1}, got {only_fold}")
    run_dir = Path(run_dir)
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes
    fold_table = make_folds(table, n_splits=config.folds, seed=config.seed)  # deterministic: the same on every rank
    folds = fold_table["fold"].to_numpy()
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        to_yaml(config, run_dir / "config.yaml")
        atomic_to_csv(fold_table, run_dir / "folds.csv")
    results = []
    for fold in range(config.folds) if only_fold is None else [only_fold]:
        fold_dir = run_dir / f"fold{fold}"
        resume_fold = resume and (fold_dir / "train_state.pt").is_file()
        results.append(
            fit(table, replace(config, folds=config.folds), fold_dir, train_idx=np.flatnonzero(folds != fold), val_idx=np.flatnonzero(folds == fold),
                resume=resume_fold, show_progress=show_progress)  # fmt: skip
        )
    if is_main:
        write_summary(table, run_dir, config.folds)
    return results


def write_summary(table: ClipTable, run_dir: Path, n_folds: int) -> pd.DataFrame:
    """``summary.csv`` (per-fold metrics of the kept epoch + the pooled out-of-fold scores) and ``oof.csv``."""
    rows, oofs = [], []
    for fold in range(n_folds):
        metrics_path, oof_path = run_dir / f"fold{fold}" / "metrics.csv", run_dir / f"fold{fold}" / "oof.csv"
        if not metrics_path.is_file():
            continue
        history = pd.read_csv(metrics_path)
        fold_oof = pd.read_csv(oof_path).assign(fold=fold) if oof_path.is_file() else None
        if fold_oof is not None and len(fold_oof):  # the epoch fit kept (best or last, by config.select)
            best = history.loc[history["epoch"] == int(fold_oof["epoch"].iloc[0])].iloc[0]
        else:
            best = history.loc[history["padded_cmap"].idxmax()] if "padded_cmap" in history else history.iloc[-1]
        rows.append({"fold": fold, **best.to_dict()})
        if fold_oof is not None:
            oofs.append(fold_oof)
    summary = pd.DataFrame(rows)
    if oofs:
        oof = pd.concat(oofs, ignore_index=True)
        atomic_to_csv(oof, run_dir / "oof.csv", float_format="%.6g")
        truth = table.frame.set_index("filename").loc[oof["filename"]]
        y_true = (table.labels.encode(truth["labels"]) > 0).astype(np.int64)
        pooled = score_arrays(y_true, oof[list(table.labels.codes)].to_numpy())
        summary = pd.concat([summary, pd.DataFrame([{"fold": "oof", **{k: pooled[k] for k in ("padded_cmap", "cmap", "macro_auc")}}])], ignore_index=True)
    atomic_to_csv(summary, run_dir / "summary.csv")
    return summary
