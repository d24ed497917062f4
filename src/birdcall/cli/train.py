"""`birdcall train`: train a model on a BirdCLEF-layout data set."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import console, out, user_errors


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("models")(models)


def train(
    data_dir: Path = typer.Argument(..., help="BirdCLEF-layout folder (train_metadata.csv, train_audio/)."),
    out_dir: Path = typer.Option(..., "--out", help="Run folder (created)."),
    config_file: Path = typer.Option(None, "--config", help="YAML TrainConfig; CLI overrides win."),
    skip_bad: bool = typer.Option(False, help="Drop bad metadata rows (listed) instead of stopping."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. epochs=5 features.n_mels=64"),
) -> None:
    """Train and keep the best epoch (by validation padded cmAP) as RUN/best.safetensors."""
    from ..config import apply_overrides, from_yaml
    from ..data import read_clip_table
    from ..train import TrainConfig, fit

    with user_errors():
        config = from_yaml(TrainConfig, config_file) if config_file else TrainConfig()
        config = apply_overrides(config, overrides or [])
        table = read_clip_table(data_dir, skip_bad=skip_bad)
        for where, cause in table.problems:
            console.print(f"[yellow]skipped[/] {where}: {cause}", highlight=False)
        result = fit(table, config, out_dir, show_progress=not quiet)
    out.print(f"best epoch {result.best_epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.best_metrics.items() if isinstance(v, float)))
    out.print(f"model: {result.best_path}")


def models() -> None:
    """List the model presets."""
    from ..models import list_models

    for name in list_models():
        out.print(name)
