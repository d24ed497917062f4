"""`birdcall embed`: one embedding vector per window of every file, into a Parquet table.

``--model birdnet`` gives BirdNET V2.4's pooled features (:mod:`birdcall.birdnet`; the optional extra, licensed
CC BY-NC-SA 4.0: non-commercial use); a birdcall checkpoint gives its penultimate layer. The run is resumable
like ``predict``: its state (parts, manifest, errors.csv) is kept in ``.<name>.parts/`` beside ``--out``; see
:mod:`birdcall.infer.run` and, for the table, :mod:`birdcall.infer.embeddings`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import console, one_line_warnings, user_errors
from .predict import (
    BATCH_SIZE,
    CPUS_PER_ACTOR,
    ENGINE,
    GPUS_PER_ACTOR,
    NUM_ACTORS,
    QUIET,
    RAY_ADDRESS,
    RETRY_FAILED,
    SEGMENT,
    SHARD,
    THREADS,
    WORKERS,
    engine_options,
    report,
)


def register(app: typer.Typer) -> None:
    app.command("embed")(embed)


def embed(
    audio: list[Path] = typer.Argument(..., help="Audio files or folders (searched recursively)."),
    model: str = typer.Option(
        ..., "--model",
        help="birdnet (BirdNET V2.4, needs `make birdnet`; non-commercial use), or a birdcall .safetensors checkpoint "
        "(its penultimate layer). A run folder with one model per fold is refused: name one fold's file.",
    ),
    out_path: Path = typer.Option(..., "--out", help="Parquet file to write (its run state: .<name>.parts/ beside it)."),
    hop: float = typer.Option(None, "--hop", help="Seconds between window starts (default: the window length, 5 s for BirdNET)."),
    step: float = typer.Option(None, "--step", help="BirdNET only: seconds between the 3-s sub-windows pooled in a window (default 1)."),
    threads: int = THREADS,
    workers: int = WORKERS,
    shard: str = SHARD,
    batch_size: int = BATCH_SIZE,
    retry_failed: bool = RETRY_FAILED,
    quiet: bool = QUIET,
    engine: str = ENGINE,
    ray_address: str = RAY_ADDRESS,
    num_actors: int = NUM_ACTORS,
    cpus_per_actor: float = CPUS_PER_ACTOR,
    gpus_per_actor: float = GPUS_PER_ACTOR,
    segment_duration: float = SEGMENT,
) -> None:
    """Embed every window of every file; unreadable files are reported and skipped (exit code 1).

    Writes OUT: one row per window (file, start_time, end_time, embedding: a fixed-size list of float32), the model, its version and licence and the window settings in the Parquet metadata.

    An interrupted run resumes when the same command is run again (state: .<name>.parts/ beside --out, errors.csv included); a write that fails (disk full) stops with exit code 2, the finished files kept.

    Shards (--shard I/N) with the same --out share that state; the table holds every shard finished so far.
    """
    from ..infer.run import WindowOptions, run_inference
    from ..infer.run_state import RunStateWarning, state_dir

    errors_csv = state_dir(out_path, "embeddings") / "errors.csv"
    with user_errors(), one_line_warnings(RunStateWarning):
        birdnet = None
        if step is not None:
            from ..birdnet import BirdNetFeatureConfig

            birdnet = BirdNetFeatureConfig(step=step)
        summary = run_inference(
            model, audio, out_path, kind="embeddings", birdnet=birdnet, window=WindowOptions(hop=hop),
            engine=engine_options(engine, ray_address, num_actors, cpus_per_actor, gpus_per_actor, segment_duration, batch_size=batch_size,
                                  workers=workers, shard=shard, threads=threads),
            retry_failed=retry_failed, show_progress=not quiet,
        )  # fmt: skip
    if model == "birdnet":
        from ..birdnet import NON_COMMERCIAL_NOTE

        console.print(f"[yellow]note:[/] {NON_COMMERCIAL_NOTE}", highlight=False)
    report(summary, target=out_path, errors_csv=errors_csv)
