"""`birdcall train`: train a model on a BirdCLEF-layout data set."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ._common import console, out, user_errors


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("models")(models)


def train(
    data_dir: Path = typer.Argument(..., help="BirdCLEF-layout folder (train_metadata.csv, train_audio/)."),
    out_dir: Path = typer.Option(..., "--out", help="Run folder (created)."),
    recipe: str = typer.Option(None, "--recipe", help="A shipped recipe (`birdcall recipes` lists them); default: cpu_default unless --config is given."),
    config_file: Path = typer.Option(None, "--config", help="YAML TrainConfig file instead of a recipe; CLI overrides win."),
    folds: int = typer.Option(None, "--folds", help="K-fold cross-validation with K folds (overrides the config's folds)."),
    fold: int = typer.Option(None, "--fold", help="Train only this fold (0-based) of the K folds."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in RUN (same config and data; without --recipe or --config, the run's own config.yaml)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in RUN (only its run files are deleted)."),
    skip_bad: bool = typer.Option(False, help="Drop bad metadata rows and clips that do not decode (listed) instead of stopping."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, dotted for nested configs, e.g. epochs=5 optim.lr=1e-3 features.n_mels=64 augment.waveform.gain.p=0.5 (README: Augmentation)."),
) -> None:
    """Train a model (recipe cpu_default unless --recipe or --config says otherwise) into RUN (RUN/fold<i>/ with folds).

    The kept model (RUN/best.safetensors, oof.csv) is the epoch the config's `select` names: "last" (the final epoch, as in cpu_default) or "best" (by validation padded cmAP).
    """
    from ..config import apply_overrides
    from ..data import read_clip_table
    from ..errors import ParameterError
    from ..layout import RunLayout
    from ..train import fit, fit_folds
    from ..train.recipes import resolve_config

    with user_errors():
        saved = RunLayout(out_dir).config
        if resume and recipe is None and config_file is None and saved.is_file():
            config_file = saved  # resuming: the run's own config (a run started before cpu_default became the default too)
        config = resolve_config(recipe=recipe, config_file=config_file)
        config = apply_overrides(config, list(overrides or []) + ([f"folds={folds}"] if folds is not None else []))
        if fold is not None and config.folds < 2:
            raise ParameterError("--fold needs --folds K (K >= 2)")
        if resume and overwrite:
            raise ParameterError("--resume continues the run in --out and --overwrite replaces it: choose one")
        # every clip is decoded once here (recorded, so the next run skips it): a corrupt file stops or is
        # skipped now, not halfway through an epoch
        table = read_clip_table(data_dir, skip_bad=skip_bad, check_audio=True, audio_check_dir=config.data.cache_dir, show_progress=not quiet)
        for where, cause in table.problems:
            console.print(f"[yellow]skipped[/] {where}: {cause}", highlight=False)
        if config.folds >= 2:
            results = fit_folds(table, config, out_dir, only_fold=fold, resume=resume, overwrite=overwrite, show_progress=not quiet)
        else:
            results = [fit(table, config, out_dir, resume=resume, overwrite=overwrite, show_progress=not quiet)]
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
        return
    if table.problems:  # listed again at the end, where they are not lost among the epoch lines
        out.print(f"{len(table.problems)} bad row(s)/clip(s) skipped: " + "; ".join(w for w, _ in table.problems[:10])
                  + (f"; and {len(table.problems) - 10} more" if len(table.problems) > 10 else ""))
    for result in results:
        kept = "last epoch" if config.select == "last" else "best epoch"
        out.print(f"{result.run_dir}: {kept} {result.best_epoch}: "
                  + ", ".join(f"{k} {v:.4f}" for k, v in result.best_metrics.items() if isinstance(v, float) and k != "lr"))
    summary = RunLayout(out_dir).summary
    if config.folds >= 2 and summary.is_file():
        out.print(f"summary: {summary}")


def models() -> None:
    """List the model presets."""
    from ..models import list_models

    for name in list_models():
        if name.startswith("birdnet_"):  # the BirdNET families: the extra, and its licence
            what = "BirdNET V2.4 with its last blocks fine-tuned" if name == "birdnet_finetune" else "head on frozen BirdNET V2.4 features"
            out.print(f"{name}  ({what}: needs `make birdnet`; CC BY-NC-SA 4.0, non-commercial use only)", highlight=False)
        else:
            out.print(name)
