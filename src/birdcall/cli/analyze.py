"""`birdcall analyze`: detection tables (CSV, Parquet, Raven, Audacity) for audio files and folders.

Writes into OUT_DIR: detections.csv, detections.parquet, raven_combined.selections.txt (all files),
raven/<stem>.selections.txt and audacity/<stem>.txt per file, errors.csv, and the run state (run.json,
plans/, manifest*.jsonl, parts/) that lets a rerun of the same command resume; see :mod:`birdcall.infer.run_state`.
The combined Raven table sits outside raven/, so no input (not even one named combined.wav) can take its name.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import one_line_warnings, user_errors
from .predict import (
    BACKEND,
    BATCH_SIZE,
    BOOST,
    BOOST_FACTOR,
    BOOST_THRESHOLD,
    CPUS_PER_ACTOR,
    ENGINE,
    FRONTEND,
    LAT,
    LOCATION_MODE,
    LOCATION_THRESHOLD,
    LON,
    MERGE,
    MODEL,
    OCCURRENCE,
    OCCURRENCE_RADIUS,
    GPUS_PER_ACTOR,
    NUM_ACTORS,
    QUIET,
    RAY_ADDRESS,
    RETRY_FAILED,
    SEGMENT,
    SHARD,
    SMOOTH,
    STREAMS,
    THREADS,
    TTA,
    WEEK,
    WORKERS,
    location_options,
    engine_options,
    parse_floats,
    postprocess_config,
    report,
    report_merge,
    require_model,
)


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)


def analyze(
    audio: list[Path] = typer.Argument(None, help="Audio files or folders (searched recursively). With --merge: other shards' output folders."),
    model_path: list[Path] = MODEL,
    out_dir: Path = typer.Option(..., "--out", help="Output folder (created; a rerun resumes into it)."),
    min_confidence: float = typer.Option(0.1, "--min-confidence", help="Lowest score reported as a detection."),
    top_k: int = typer.Option(None, "--top-k", help="At most this many species per window."),
    hop: float = typer.Option(None, "--hop", help="Seconds between window starts (default: the clip duration; less overlaps)."),
    include: Path = typer.Option(None, "--include", help="Report only the species codes listed in this file (one per line)."),
    exclude: Path = typer.Option(None, "--exclude", help="Never report the species codes listed in this file."),
    backend: str = BACKEND,
    threads: int = THREADS,
    streams: int = STREAMS,
    frontend: str = FRONTEND,
    workers: int = WORKERS,
    shard: str = SHARD,
    batch_size: int = BATCH_SIZE,
    tta: str = TTA,
    boost: bool = BOOST,
    boost_threshold: float = BOOST_THRESHOLD,
    boost_factor: float = BOOST_FACTOR,
    smooth: str = SMOOTH,
    retry_failed: bool = RETRY_FAILED,
    merge: bool = MERGE,
    quiet: bool = QUIET,
    lat: float = LAT,
    lon: float = LON,
    week: int = WEEK,
    location_mode: str = LOCATION_MODE,
    location_threshold: float = LOCATION_THRESHOLD,
    occurrence: Path = OCCURRENCE,
    occurrence_radius: float = OCCURRENCE_RADIUS,
    engine: str = ENGINE,
    ray_address: str = RAY_ADDRESS,
    num_actors: int = NUM_ACTORS,
    cpus_per_actor: float = CPUS_PER_ACTOR,
    gpus_per_actor: float = GPUS_PER_ACTOR,
    segment_duration: float = SEGMENT,
) -> None:
    """Detect species in every window of every file; unreadable files are reported and skipped (exit code 1).

    Writes into OUT_DIR: detections.csv, detections.parquet, raven_combined.selections.txt (all files in one Raven table), raven/<stem>.selections.txt and audacity/<stem>.txt per file, errors.csv.

    An interrupted run resumes when the same command is run again; a file that killed two runs (out of memory, say) is then skipped. A write that fails (disk full) stops with exit code 2.

    Shards (--shard I/N) may run into the same OUT_DIR; its outputs hold every shard finished so far.

    --lat/--lon/--week report only the species expected at that place and week (BirdNET's location model, or --occurrence TABLE.csv); --location-mode weight scales the others' scores down instead.
    """
    from ..infer.detections import read_species_list
    from ..infer.models import BackendWarning
    from ..infer.outputs import merge_outputs
    from ..infer.run import DetectionOptions, WindowOptions, run_inference
    from ..infer.run_state import RunStateWarning

    with user_errors(), one_line_warnings(RunStateWarning), one_line_warnings(BackendWarning):
        if merge:
            result = merge_outputs(out_dir, list(audio or []), kind="detections")
        else:
            model = require_model(model_path, audio)
            detection = DetectionOptions(
                min_confidence=min_confidence,
                top_k=top_k,
                include=read_species_list(include) if include else None,
                exclude=read_species_list(exclude) if exclude else None,
            )
            location = location_options(lat, lon, week, location_mode, location_threshold, occurrence, occurrence_radius)
            summary = run_inference(
                model, audio, out_dir, kind="detections", location=location,
                window=WindowOptions(hop=hop, tta_shifts=parse_floats(tta, name="--tta") or (0.0,)),
                detection=detection, postprocess=postprocess_config(boost, boost_threshold, boost_factor, smooth),
                engine=engine_options(engine, ray_address, num_actors, cpus_per_actor, gpus_per_actor, segment_duration, batch_size=batch_size,
                                      workers=workers, shard=shard, backend=backend, threads=threads, streams=streams, frontend=frontend),
                retry_failed=retry_failed, show_progress=not quiet,
            )  # fmt: skip
    if merge:
        report_merge(result, target=out_dir, errors_csv=out_dir / "errors.csv")
    else:
        report(summary, target=out_dir, errors_csv=out_dir / "errors.csv")
