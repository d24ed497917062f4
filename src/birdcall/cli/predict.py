"""`birdcall predict`: a BirdCLEF submission (one row per window, one column per species) for audio files.

The run is resumable: finished files are kept in ``.<name>.parts/`` next to ``--out`` (parts, manifest,
errors.csv; see :mod:`birdcall.infer.run_state`), a rerun of the same command skips them, and the CSV is
rebuilt from the parts at the end of every run. The options shared with ``birdcall analyze`` live here too.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import console, one_line_warnings, out, user_errors

# ------------------------------------------------------------------------------------------------ shared options

MODEL = typer.Option(
    None, "--model",
    help="A .safetensors checkpoint, a training run folder (ensemble of its folds), an .onnx or OpenVINO .xml model. "
    "Repeat it to average several (an ensemble: probabilities averaged per window and species).",
)
BACKEND = typer.Option(
    None, "--backend",
    help="torch, onnx or openvino. Default: a .safetensors checkpoint (or each one of a run folder) runs on OpenVINO through "
    "an export made once, checked against torch, and cached beside it in .birdcall-cache/ (torch, with a warning, when that "
    "is not possible; a resumed run keeps its backend); an .onnx or .xml model on its own runtime. --backend torch opts out.",
)
THREADS = typer.Option(None, "--threads", help="Intra-op threads of the backend.")
STREAMS = typer.Option(
    None, "--streams", help="OpenVINO only: CPU streams, each batch split across them (default: one per CPU core, at most 2)."
)
FRONTEND = typer.Option(
    "auto", "--frontend",
    help="onnx/openvino only: where the STFT runs: host (a real FFT, then the exported graph from its power spectrum; "
    "faster end to end, benchmarks/RESULTS.md), graph (the whole exported graph), auto (host when the export allows it).",
)
WORKERS = typer.Option(0, "--workers", help="Processes decoding audio in parallel (0: a decoding thread in the main process, one batch ahead of the model; the faster on 2 cores).")
SHARD = typer.Option(None, "--shard", help="Run shard I/N only: every N-th file of the sorted inputs, from the I-th.")
BATCH_SIZE = typer.Option(32, "--batch-size", help="Windows per model call (each --tta shift counts as one).")
TTA = typer.Option(None, "--tta", help="Time shifts in seconds whose scores are averaged per window, e.g. --tta=0,1,-1.")
BOOST = typer.Option(False, "--boost/--no-boost", help="Boost a species in every window of a file where it scores >= --boost-threshold.")
BOOST_THRESHOLD = typer.Option(0.96, "--boost-threshold", help="File maximum that triggers --boost.")
BOOST_FACTOR = typer.Option(1.5, "--boost-factor", help="Multiplier of --boost (scores capped at 1).")
SMOOTH = typer.Option(None, "--smooth", help="Average each window with its neighbours: previous,self,next weights, e.g. 0.25,0.5,0.25.")
RETRY_FAILED = typer.Option(False, "--retry-failed", help="Redo files an earlier run of this command recorded as failed.")
MERGE = typer.Option(False, "--merge", help="Only merge: bring in the shards that ran into the folders given as arguments, rebuild the outputs.")
QUIET = typer.Option(False, "--quiet", help="No progress bar.")
LAT = typer.Option(None, "--lat", help="Latitude of the recordings (-90..90): keep the species expected there (with --lon, --week).")
LON = typer.Option(None, "--lon", help="Longitude of the recordings (-180..180).")
WEEK = typer.Option(None, "--week", help="Week of the year as BirdNET counts it: 1-48, four per month; -1 (default): all year.")
LOCATION_MODE = typer.Option(
    "filter", "--location-mode",
    help="filter: species not expected there and then are removed (scores 0); weight: their scores are scaled by probability/threshold.",
)
LOCATION_THRESHOLD = typer.Option(0.03, "--location-threshold", help="Lowest occurrence probability of an expected species (BirdNET's sf_thresh).")
OCCURRENCE = typer.Option(
    None, "--occurrence",
    help="CSV of species_code,lat,lon,week,probability to use instead of BirdNET's location model (the BirdNET extra); "
    "a place matches the nearest grid cell within --occurrence-radius.",
)
OCCURRENCE_RADIUS = typer.Option(50.0, "--occurrence-radius", help="Farthest distance (km) from --lat/--lon to the table's nearest grid cell.")

ENGINE = typer.Option("local", "--engine", help="local (this machine: --workers decode, one process scores) or ray (Ray actors score; needs the ray extra).")
RAY_ADDRESS = typer.Option(None, "--ray-address", help="--engine ray: the cluster to join (auto: the one `ray start` runs here; host:port). Default: a local Ray for this run.")
NUM_ACTORS = typer.Option(None, "--num-actors", help="--engine ray: actors scoring at once (default: the cluster's CPUs / --cpus-per-actor).")
CPUS_PER_ACTOR = typer.Option(1.0, "--cpus-per-actor", help="--engine ray: CPUs each actor reserves (and its backend threads unless --threads).")
GPUS_PER_ACTOR = typer.Option(0.0, "--gpus-per-actor", help="--engine ray: GPUs each actor reserves.")
SEGMENT = typer.Option(3600.0, "--segment-duration", help="--engine ray: a longer file is split into segments of this many seconds, scored by different actors.")


def location_options(lat, lon, week, mode, threshold, occurrence, radius_km):
    """The :class:`~birdcall.infer.location.LocationOptions` of the flags (None without --lat/--lon/--week)."""
    from ..infer.location import LocationOptions

    return LocationOptions.from_cli(lat=lat, lon=lon, week=week, mode=mode, threshold=threshold, occurrence=occurrence, radius_km=radius_km)


def parse_floats(text: str | None, *, name: str) -> tuple[float, ...] | None:
    """``"0,1,-1"`` -> ``(0.0, 1.0, -1.0)``; None stays None."""
    from ..errors import ParameterError

    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ParameterError(f"{name} takes comma-separated numbers, got {text!r}") from None


def postprocess_config(boost: bool, boost_threshold: float, boost_factor: float, smooth: str | None):
    """The :class:`~birdcall.infer.postprocess.PostprocessConfig` of the flags, None when nothing is asked."""
    weights = parse_floats(smooth, name="--smooth")
    if not boost and weights is None:
        return None
    from ..infer.postprocess import PostprocessConfig

    return PostprocessConfig(boost_threshold=boost_threshold if boost else None, boost_factor=boost_factor, smooth_weights=weights)


def report(summary, *, target: Path, errors_csv: Path) -> None:
    """Print skipped files, the summary line and what is missing; exit 1 when a file was skipped."""
    for path, cause in summary.errors:
        console.print(f"[yellow]skipped[/] {path}: {cause}", highlight=False)
    if not summary.complete:
        console.print(f"[yellow]combined outputs incomplete:[/] {'; '.join(summary.missing)}", highlight=False)
    out.print(f"{summary.line()} -> {target}", highlight=False)
    backend = getattr(summary, "backend", None)  # a run of species scores (not pseudo-label's summary, not embed's)
    if backend:
        note = getattr(summary, "backend_note", "")
        out.print(f"backend {backend}" + (f" ({note})" if note else ""), highlight=False)
    if summary.resumed:
        out.print(f"{summary.resumed} file(s) were done by an earlier run and skipped", highlight=False)
    if summary.skipped:
        out.print(f"{summary.skipped} file(s) skipped (listed in {errors_csv})", highlight=False)
        raise typer.Exit(code=1)


def report_merge(result: dict, *, target: Path, errors_csv: Path) -> None:
    """Print the outcome of a merge; exit 1 when files failed or shards are missing."""
    if not result["complete"]:
        console.print(f"[yellow]combined outputs incomplete:[/] {'; '.join(result['missing'])}", highlight=False)
    out.print(f"merged: {result['files']} files, {result['windows']} windows, {result['skipped']} skipped -> {target}", highlight=False)
    if result["skipped"]:
        out.print(f"{result['skipped']} file(s) skipped (listed in {errors_csv})", highlight=False)
    if result["skipped"] or not result["complete"]:
        raise typer.Exit(code=1)


def engine_options(engine: str, ray_address: str | None, num_actors: int | None, cpus_per_actor: float, gpus_per_actor: float,
                   segment_duration: float, **local):
    """The :class:`~birdcall.infer.run.EngineOptions` of the flags (``local``: batch size, workers, shard, backend...)."""
    from ..infer.run import EngineOptions, RayOptions

    ray = None
    if engine == "ray":
        ray = RayOptions(address=ray_address, num_actors=num_actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor,
                         segment_duration=segment_duration)
    return EngineOptions(engine=engine, ray=ray, **local)


def require_model(model_paths: list[Path] | None, audio: list[Path] | None) -> Path | list[Path]:
    """The model argument of ``run_inference``: the one ``--model``, or the list of several (an ensemble)."""
    from ..errors import ParameterError

    if not model_paths:
        raise ParameterError("--model is required (unless --merge)")
    if not audio:
        raise ParameterError("give at least one audio file or folder")
    return model_paths[0] if len(model_paths) == 1 else list(model_paths)


# ------------------------------------------------------------------------------------------------ command


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)


def predict(
    audio: list[Path] = typer.Argument(None, help="Audio files or folders (searched recursively). With --merge: other shards' CSVs."),
    model_path: list[Path] = MODEL,
    out_path: Path = typer.Option(Path("submission.csv"), "--out", help="Submission CSV to write (its run state: .<name>.parts/ beside it)."),
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
    """Score every window of every file into a submission CSV; unreadable files are reported and skipped (exit code 1).

    An interrupted run resumes when the same command is run again (its state: .<name>.parts/ beside --out); a file that killed two runs (out of memory, say) is then skipped. A write that fails (disk full) stops with exit code 2, the finished files kept for the rerun.

    Inputs that share a file name (a/rec.ogg, b/rec.ogg) are refused: their row_ids would repeat.

    Shards (--shard I/N) with the same --out share that state; the CSV holds every shard finished so far.

    --lat/--lon/--week keep the species expected at that place and week (BirdNET's location model, or --occurrence TABLE.csv): the others score 0, or, with --location-mode weight, less.
    """
    from ..infer.models import BackendWarning
    from ..infer.outputs import merge_outputs
    from ..infer.run import WindowOptions, run_inference
    from ..infer.run_state import RunStateWarning, state_dir

    errors_csv = state_dir(out_path, "submission") / "errors.csv"
    with user_errors(), one_line_warnings(RunStateWarning), one_line_warnings(BackendWarning):
        if merge:
            result = merge_outputs(out_path, list(audio or []), kind="submission")
        else:
            model = require_model(model_path, audio)
            location = location_options(lat, lon, week, location_mode, location_threshold, occurrence, occurrence_radius)
            summary = run_inference(
                model, audio, out_path, kind="submission", location=location,
                window=WindowOptions(tta_shifts=parse_floats(tta, name="--tta") or (0.0,)),
                postprocess=postprocess_config(boost, boost_threshold, boost_factor, smooth),
                engine=engine_options(engine, ray_address, num_actors, cpus_per_actor, gpus_per_actor, segment_duration, batch_size=batch_size,
                                      workers=workers, shard=shard, backend=backend, threads=threads, streams=streams, frontend=frontend),
                retry_failed=retry_failed, show_progress=not quiet,
            )  # fmt: skip
    if merge:
        report_merge(result, target=out_path, errors_csv=errors_csv)
    else:
        report(summary, target=out_path, errors_csv=errors_csv)
