"""K-fold cross-validation: one ``fit`` per fold in ``RUN/fold<i>/`` and a summary over folds.

Folds come from iterative multi-label stratification (``birdcall.data.folds``); the fold of every clip is
written to ``RUN/folds.csv`` so evaluation and ensembling can find out-of-fold predictions later.
``RUN/summary.csv`` holds each fold's best epoch and metrics, ``RUN/oof.csv`` all out-of-fold scores.

Seed ensembles (``config.seeds = S > 1``): each fold trains S models on the same split, with seeds
``config.seed + 1000 j``. Model 0 lives in ``RUN/fold<i>/`` as with one seed (so everything that reads a fold's
model reads it), model ``j >= 1`` in ``RUN/fold<i>/seed<j>/``. The fold's out-of-fold scores in ``RUN/oof.csv``
are the mean of its models' scores, and its row of ``summary.csv`` scores that mean; inference on the run folder
averages all ``folds x seeds`` models (:func:`birdcall.infer.run_models`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import from_yaml, to_dict, to_yaml
from ..data.dataset import ClipTable, check_clip_audio
from ..data.folds import make_folds
from ..errors import ParameterError
from ..fileio import atomic_to_csv
from ..layout import FoldLayout, RunLayout
from ..metrics import score_arrays
from .config import TrainConfig
from .loop import FitResult, _barrier, _distributed, fit
from .rundir import clear_run, config_differences, cv_run_files, refuse_existing_run, run_files

__all__ = ["SEED_STRIDE", "assign_folds", "fit_folds"]

SEED_STRIDE = 1000
"""Seed of ensemble member j: ``config.seed + SEED_STRIDE * j``; far apart, because a run also draws from seed + 1."""


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
    overwrite: bool = False,
    show_progress: bool = True,
) -> list[FitResult]:
    """Train every fold (or ``only_fold``) of a ``config.folds``-fold split; returns one result per fold run.

    Args:
        table: the labelled clips (decoded once first unless read with ``check_audio=True``, as in ``fit``).
        config: the recipe; ``config.folds >= 2``.
        run_dir: the K-fold run folder (see module docstring).
        only_fold: train only this fold. Into a folder that holds this run (same config, same folds) it adds
            the fold, so the folds of one run may be trained one at a time.
        resume: continue the run in ``run_dir`` (same config and clip table): each model resumes from its
            ``train_state.pt``, a model that never finished an epoch starts again.
        overwrite: replace another run in ``run_dir`` (or, with ``only_fold`` into this run, that fold's
            models); only birdcall's run files go, other files stay. Without it, such a folder is refused.

    Raises:
        ParameterError: bad ``folds``/``only_fold``; ``run_dir`` holds another run (or this fold) and neither
            ``resume`` nor ``overwrite``; resume with another config or clip table.
    """
    if resume and overwrite:
        raise ParameterError("fit_folds: resume continues the run in run_dir and overwrite replaces it: choose one")
    if config.folds < 2:
        raise ParameterError(f"fit_folds needs config.folds >= 2, got {config.folds}")
    if only_fold is not None and not 0 <= only_fold < config.folds:
        raise ParameterError(f"fold must be in 0..{config.folds - 1}, got {only_fold}")
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    rank, world = _distributed()
    is_main = rank == 0  # under torchrun only rank 0 writes
    if not table.audio_checked:  # before the folds: they are made from the clips that will be trained
        table = check_clip_audio(table, record_dir=config.data.cache_dir)
    fold_table = make_folds(table, n_splits=config.folds, seed=config.seed)  # deterministic: the same on every rank
    folds = fold_table["fold"].to_numpy()
    fold_ids = list(range(config.folds)) if only_fold is None else [only_fold]
    members = [(fold, member) for fold in fold_ids for member in range(config.seeds)]
    models = {(fold, member): layout.fold(fold).seed(member) for fold, member in members}
    to_clear = _check_cv_folder(run_dir, config, fold_table, [models[k].root for k in members], only_fold=only_fold, resume=resume, overwrite=overwrite)
    _barrier(world)  # every rank has looked before rank 0 changes the folder
    if is_main:
        clear_run(to_clear)
        run_dir.mkdir(parents=True, exist_ok=True)
        to_yaml(config, layout.config)
        atomic_to_csv(fold_table, layout.folds_csv)
    results = []
    for fold, member in members:
        model = models[fold, member]
        model_config = fold_config(config, fold, seed=config.seed + SEED_STRIDE * member)
        resume_model = resume and model.state.is_file()
        results.append(
            # overwrite: what is there was checked above (a model that never finished an epoch, when resuming)
            fit(table, model_config, model.root, train_idx=np.flatnonzero(folds != fold), val_idx=np.flatnonzero(folds == fold),
                resume=resume_model, overwrite=not resume_model, show_progress=show_progress)  # fmt: skip
        )
    if is_main:
        write_summary(table, run_dir, config.folds)
    return results


def fold_config(config: TrainConfig, fold: int, *, seed: int) -> TrainConfig:
    """The config of one model of fold ``fold``: its seed, and ``{fold}`` in ``pseudo.labels``, ``distill.teacher`` and
    ``init_from`` replaced by the fold number (each fold's teacher, or starting model, must not have seen that fold's
    validation clips)."""
    from .soft_labels import fold_path

    pseudo = replace(config.pseudo, labels=fold_path(config.pseudo.labels, fold)) if config.pseudo.labels else config.pseudo
    distill = replace(config.distill, teacher=fold_path(config.distill.teacher, fold)) if config.distill.teacher else config.distill
    init_from = fold_path(config.init_from, fold) if config.init_from else None
    return replace(config, seed=seed, pseudo=pseudo, distill=distill, init_from=init_from)


def _same_folds(path: Path, fold_table: pd.DataFrame) -> bool:
    try:
        saved = pd.read_csv(path, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return False
    if not {"filename", "fold"} <= set(saved.columns) or len(saved) != len(fold_table):
        return False
    return saved["filename"].astype(str).tolist() == fold_table["filename"].astype(str).tolist() and saved["fold"].tolist() == fold_table["fold"].tolist()


def _check_cv_folder(
    run_dir: Path, config: TrainConfig, fold_table: pd.DataFrame, model_dirs: list[Path], *, only_fold: int | None, resume: bool, overwrite: bool
) -> list[Path]:
    """What may be in ``run_dir`` for this call, and what to delete before writing (read-only; raises to refuse).

    The run here is "this run" when its ``config.yaml`` equals ``config`` and its ``folds.csv`` the new folds.
    """
    existing = cv_run_files(run_dir)
    if not existing:
        return []
    layout = RunLayout(run_dir)
    saved_config = layout.config
    try:
        same_config = saved_config.is_file() and to_dict(from_yaml(TrainConfig, saved_config)) == to_dict(config)
    except ParameterError:
        same_config = False
    same_folds = layout.folds_csv.is_file() and _same_folds(layout.folds_csv, fold_table)
    this_run = same_config and same_folds
    if resume:
        if saved_config.is_file() and not same_config:
            try:
                saved = to_dict(from_yaml(TrainConfig, saved_config))
            except ParameterError as err:
                raise ParameterError(f"{saved_config}: resume refused: {err}") from None
            raise ParameterError(f"{saved_config}: resume refused: config differs in {config_differences(saved, to_dict(config))}")
        if layout.folds_csv.is_file() and not same_folds:
            raise ParameterError(f"{layout.folds_csv}: resume refused: the clip table differs (files/labels/folds) from the interrupted run's")
        # models without a state never finished an epoch: they start again (fit overwrites their files)
        return []
    if this_run and only_fold is not None:  # add a fold to this run: only that fold's models must be free
        taken = [p for d in model_dirs for p in run_files(d)]
        if taken and not overwrite:
            refuse_existing_run(run_dir, taken, what=f"fold {only_fold} of this run")
        return taken
    if not overwrite:
        refuse_existing_run(run_dir, existing)
    return existing


def _fold_oof(fold: FoldLayout, codes: list[str]) -> tuple[pd.DataFrame | None, int]:
    """The fold's out-of-fold scores, averaged over the models that have written theirs, and their count."""
    frames = [pd.read_csv(member.oof) for member in fold.members() if member.oof.is_file()]
    frames = [f for f in frames if len(f)]
    if len(frames) <= 1:
        return (frames[0] if frames else None), len(frames)
    first = frames[0]
    scores = [f.set_index("filename").loc[first["filename"], codes].to_numpy(dtype=np.float64) for f in frames]
    mean = first.copy()
    mean[codes] = np.mean(scores, axis=0)
    return mean, len(frames)


def write_summary(table: ClipTable, run_dir: Path, n_folds: int) -> pd.DataFrame:
    """``summary.csv`` (per-fold metrics of the kept epoch + the pooled out-of-fold scores) and ``oof.csv``.

    A fold with several models (``seeds``) gets the scores of their mean in its row, and a ``models`` column.
    """
    rows, oofs = [], []
    codes = list(table.labels.codes)
    layout = RunLayout(run_dir)
    for fold in range(n_folds):
        fold_layout = layout.fold(fold)
        if not fold_layout.metrics.is_file():
            continue
        history = pd.read_csv(fold_layout.metrics)
        fold_oof, models = _fold_oof(fold_layout, codes)
        if fold_oof is not None:  # the epoch fit kept (best or last, by config.select)
            best = history.loc[history["epoch"] == int(fold_oof["epoch"].iloc[0])].iloc[0]
        else:
            best = history.loc[history["padded_cmap"].idxmax()] if "padded_cmap" in history else history.iloc[-1]
        row = {"fold": fold, **best.to_dict()}
        if models > 1:
            scores = score_arrays(_truth(table, fold_oof["filename"]), fold_oof[codes].to_numpy())
            row.update({k: scores[k] for k in ("padded_cmap", "cmap", "macro_auc")}, models=models)
        rows.append(row)
        if fold_oof is not None:
            oofs.append(fold_oof.assign(fold=fold))
    summary = pd.DataFrame(rows)
    if oofs:
        oof = pd.concat(oofs, ignore_index=True)
        atomic_to_csv(oof, layout.oof, float_format="%.6g")
        pooled = score_arrays(_truth(table, oof["filename"]), oof[codes].to_numpy())
        summary = pd.concat([summary, pd.DataFrame([{"fold": "oof", **{k: pooled[k] for k in ("padded_cmap", "cmap", "macro_auc")}}])], ignore_index=True)
    atomic_to_csv(summary, layout.summary)
    return summary


def _truth(table: ClipTable, filenames) -> np.ndarray:
    """0/1 targets (secondary labels included) of ``filenames``."""
    truth = table.frame.set_index("filename").loc[list(filenames)]
    return (table.labels.encode(truth["labels"]) > 0).astype(np.int64)
