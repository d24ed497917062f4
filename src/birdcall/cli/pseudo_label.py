"""`birdcall pseudo-label`: soft labels per window of unlabelled recordings, from one teacher or an ensemble.

Writes the LABELS.parquet that training reads (``TrainConfig.pseudo``); its layout, and the resumable state in
``.<name>.parts/`` beside it (each teacher's scores, errors.csv), are described in
:mod:`birdcall.infer.pseudo_labels`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import console, one_line_warnings, user_errors
from .predict import QUIET, RETRY_FAILED, THREADS, WORKERS, report

AUDIO = typer.Argument(
    ..., help="Audio files or folders (searched recursively). File names are written relative to the folder given (several inputs: their common folder).",
)
TEACHER = typer.Option(
    ..., "--teacher",
    help="A model file (.safetensors, .onnx, .xml) or a training run folder (one teacher: the mean of its folds). Repeat it for an "
    "ensemble of teachers; each decodes at its own sample rate, all must score windows of the same length.",
)
OUT = typer.Option(..., "--out", help="Parquet file to write (its run state: .<name>.parts/ beside it).")
METHOD = typer.Option("mean", "--method", help="How the teachers are combined per window and species: mean, power or rank.")
POWER = typer.Option(2.0, "--power", help="Exponent of --method power: (mean of p**P) ** (1/P).")
HOP = typer.Option(None, "--hop", help="Seconds between window starts (default: the teachers' window length).")
BATCH_SIZE = typer.Option(32, "--batch-size", help="Windows per model call.")


def register(app: typer.Typer) -> None:
    app.command("pseudo-label")(pseudo_label)


def pseudo_label(
    audio: list[Path] = AUDIO,
    teacher: list[Path] = TEACHER,
    out_path: Path = OUT,
    method: str = METHOD,
    power: float = POWER,
    hop: float = HOP,
    batch_size: int = BATCH_SIZE,
    workers: int = WORKERS,
    threads: int = THREADS,
    retry_failed: bool = RETRY_FAILED,
    quiet: bool = QUIET,
) -> None:
    """Label every window of every file with the teachers' combined probabilities; unreadable files are reported and left out (exit code 1).

    Writes OUT: one row per window (file relative to the input folder, start, end, one probability column per species), the teachers (digests, licences), the method and the windows in the Parquet metadata.

    An interrupted run resumes when the same command is run again, teacher by teacher and file by file (state: .<name>.parts/ beside --out, errors.csv included); a write that fails (disk full) stops with exit code 2, the finished files kept.
    """
    from ..infer.run_state import RunStateWarning
    from ..infer.pseudo_labels import pseudo_label as label_windows
    from ..infer.pseudo_labels import state_dir

    with user_errors(), one_line_warnings(RunStateWarning):
        summary = label_windows(
            teacher, audio, out_path, method=method, power=power, hop=hop, batch_size=batch_size, workers=workers, threads=threads,
            retry_failed=retry_failed, show_progress=not quiet,
        )
    if summary.note:
        console.print(f"[yellow]note:[/] {summary.note}", highlight=False)
    report(summary, target=out_path, errors_csv=state_dir(out_path) / "errors.csv")
