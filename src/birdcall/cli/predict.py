"""`birdcall predict`: a BirdCLEF submission (one row per 5-s window) for audio files."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import console, out, user_errors


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)


def predict(
    audio: list[Path] = typer.Argument(..., help="Audio files (or folders, searched recursively)."),
    model_path: Path = typer.Option(..., "--model", help="A birdcall model file (.safetensors)."),
    out_path: Path = typer.Option(Path("submission.csv"), "--out", help="Submission CSV to write."),
    batch_size: int = typer.Option(32, help="Windows per model call."),
    threads: int = typer.Option(None, help="torch intra-op threads."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Score every 5-s window of every file; unreadable files are reported and skipped (exit code 1)."""
    from ..audio import AUDIO_EXTENSIONS
    from ..infer import TorchScorer, predict_files, write_submission
    from ..models import load_model

    with user_errors():
        files: list[Path] = []
        for item in audio:
            files.extend(sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS) if item.is_dir() else [item])
        model, labels, _ = load_model(model_path)
        features = model.feature_config
        result = predict_files(
            TorchScorer(model, threads=threads), files, labels=labels, sample_rate=features.sample_rate,
            clip_duration=features.clip_duration, batch_size=batch_size, show_progress=not quiet,
        )
        write_submission(result.scores, out_path)
    for path, cause in result.errors:
        console.print(f"[yellow]skipped[/] {path}: {cause}", highlight=False)
    out.print(f"{len(result.scores)} windows from {len(files) - len(result.errors)} file(s) -> {out_path}"
              + (f"; {len(result.errors)} file(s) skipped" if result.errors else ""))
    if result.errors:
        raise typer.Exit(code=1)
