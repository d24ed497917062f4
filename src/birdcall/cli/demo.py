"""`birdcall demo`: synthesise a chorus data set, train, predict its soundscapes, score, in one run folder."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import typer

from ._common import console, out, user_errors


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out_dir: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder (created)."),
    species: int = typer.Option(12, help="Number of synthetic species."),
    seed: int = typer.Option(0, help="Seed for data, initialisation and training."),
    epochs: int = typer.Option(None, help="Training epochs (default: the demo recipe's)."),
    model: str = typer.Option(None, help="Model preset (see `birdcall models`)."),
    clips_per_species: int = typer.Option(None, help="Training clips per species."),
    soundscapes: int = typer.Option(None, help="Number of synthetic soundscapes to predict."),
    soundscape_duration: float = typer.Option(None, help="Soundscape length in seconds."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Run the whole path, audio in -> trained model -> scored submission, on generated data."""
    from rich.table import Table

    from ..workflows import DemoConfig, run_demo

    with user_errors():
        config = DemoConfig()
        train = config.train
        if epochs is not None:
            train = replace(train, epochs=epochs)
        if model is not None:
            train = replace(train, model=model)
        changes = {k: v for k, v in {"clips_per_species": clips_per_species, "num_soundscapes": soundscapes, "soundscape_duration": soundscape_duration}.items() if v is not None}
        config = replace(config, synth=replace(config.synth, num_species=species, seed=seed, **changes), train=train)
        started = time.perf_counter()
        result = run_demo(out_dir, config, show_progress=not quiet, log=lambda m: console.print(m, highlight=False))
        elapsed = time.perf_counter() - started

    table = Table(title="demo: synthetic soundscapes, one row per 5-s window")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("padded_cmap", "cmap", "macro_auc"):
        table.add_row(key, f"{result.scores[key]:.4f}")
    for key, value in result.seconds.items():
        table.add_row(f"time {key}", f"{value:.1f} s")
    table.add_row("time total", f"{elapsed:.1f} s")
    out.print(table)
    if len(result.per_species):
        worst = result.per_species.sort_values("ap").head(5)
        species_table = Table(title="weakest species (AP)")
        for col in worst.columns:
            species_table.add_column(str(col))
        for _, row in worst.iterrows():
            species_table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
        out.print(species_table)
    out.print(f"run folder: {result.run_dir.resolve()}")
