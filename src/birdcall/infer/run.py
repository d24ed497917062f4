"""The batch inference engine behind ``birdcall predict``, ``analyze``, ``embed`` and ``pseudo-label``: :func:`run_inference`,
parallel, streaming and resumable.

Four kinds of run share it: ``detections`` (``analyze``), ``submission`` (``predict``), ``embeddings``
(``embed``: an :class:`~birdcall.infer.scorer.Embedder` gives one vector per window instead of species scores) and
``scores`` (the window scores as a Parquet table, for programs: ``pseudo-label`` runs each teacher as one).

A run is made of parts, each in its own module:

* :mod:`birdcall.infer.inputs`: the files named by the inputs, and shard ``I/N`` of them;
* :mod:`birdcall.infer.models`: the model opened as a scorer or an embedder, and its digest;
* :mod:`birdcall.infer.producers`: decoding and cutting windows, in a thread or in worker processes;
* :mod:`birdcall.infer.batching`: scoring windows batched across files (:func:`~birdcall.infer.batching.score_file`
  is the same work on one file, with no run state);
* :mod:`birdcall.infer.run_state`: the state folder (settings, plans, manifests, parts, locks) that lets a rerun
  resume and shards share a folder;
* :mod:`birdcall.infer.outputs`: the combined outputs rebuilt from the state, and merging shards;
* :mod:`birdcall.infer.options`: the options objects (windows, engine, detections);
* :mod:`birdcall.infer.location`: the species filter by place and season;
* :mod:`birdcall.infer.ray_engine`: the files scored by Ray actors instead of this process (``engine="ray"``).

Division of work
    The log-mel front end lives inside the model (a birdcall torch model starts with its
    :class:`~birdcall.features.FeatureExtractor`, and ONNX/OpenVINO exports include it in the graph), so a
    scorer takes raw waveform windows. Worker processes (``workers > 0``; ``multiprocessing`` with the
    ``spawn`` start method by default, ``forkserver`` works too) therefore only decode, resample and cut
    windows; the main process batches the windows, across file boundaries, and runs the scorer.

Memory
    Peak memory is a chunk and a block per worker plus one batch, whatever the length of the files; the main
    process keeps only the scores of the files in flight. An ``embeddings`` run keeps not even those: each file's
    vectors (thousands of values a window) stream into its part as they are computed
    (:class:`~birdcall.infer.run_state.EmbeddingPart`).

Failures
    A file that fails to decode (:class:`~birdcall.errors.AudioLoadError`, or anything else its worker
    raises) is reported with a one-line reason and the run goes on; the windows it produced before failing
    are dropped. A worker that dies fails the file it was reading and is replaced. A run that dies is resumed
    by the next run of the same command (:mod:`birdcall.infer.run_state`).
"""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._threads import keeps_torch_threads
from ..data.labels import LabelSet
from ..errors import ParameterError
from ..types import Pathlike
from .batching import score_files
from .detections import to_detections
from .inputs import (
    check_names,
    check_row_ids,
    discover_inputs,
    parse_shard,
    select_shard,
)
from .location import LocationOptions, SpeciesFilter, species_filter
from .long_recording import WindowSpec
from .options import ENGINES, DetectionOptions, EngineOptions, WindowOptions
from .models import model_backend, model_digest, open_embedder, open_scorer
from .outputs import INDEX, combine_outputs, empty_scores
from .postprocess import PostprocessConfig
from .postprocess import postprocess as apply_postprocess
from .ray_engine import ModelRecipe, RayOptions, absolute_model, require_ray, run_ray
from .run_state import (
    FORMAT,
    EmbeddingPart,
    Manifest,
    check_kind,
    check_or_write_settings,
    check_out,
    check_parts_folder,
    drop_killers,
    in_use,
    locked,
    manifest_name,
    read_records,
    read_settings,
    recording_run,
    shard_name,
    state_dir,
    temporary_folders,
    write_part,
    write_plan,
    writing,
)

__all__ = ["ENGINES", "DetectionOptions", "EngineOptions", "RayOptions", "RunSummary", "WindowOptions", "run_inference"]

_DESCRIPTIONS = {"detections": "analyze", "submission": "predict", "embeddings": "embed", "scores": "score"}  # progress bar labels


@dataclass(frozen=True)
class RunSummary:
    """What a run (one shard) did, and where the combined outputs are.

    Attributes:
        files: files of this shard.
        windows: windows scored over its finished files (resumed ones included).
        skipped: files that failed.
        resumed: files found finished or failed by an earlier run, not redone.
        errors: ``(file, reason)`` of every failed file of this shard.
        outputs: the combined output files written.
        complete: every planned shard has run and every file of every shard is recorded.
        missing: what keeps the combined outputs incomplete (shards ``I/N`` or a count of files).
        state_dir: the folder with run.json, plans, manifests and parts.
        backend: the backend that scored (as recorded in run.json; None for a Scorer object).
        backend_note: which export ran a checkpoint, e.g. ``"cached export of best.safetensors"`` (or ``""``).
    """

    files: int
    windows: int
    skipped: int
    resumed: int
    errors: tuple[tuple[str, str], ...]
    outputs: tuple[Path, ...]
    complete: bool
    missing: tuple[str, ...]
    state_dir: Path
    backend: str | None = None
    backend_note: str = ""

    def line(self) -> str:
        """``"N files, M windows, K skipped"``."""
        return f"{self.files} files, {self.windows} windows, {self.skipped} skipped"


@keeps_torch_threads
def run_inference(
    model: Any,
    inputs: Sequence[Pathlike],
    out: Pathlike,
    *,
    kind: str = "detections",
    window: WindowOptions | None = None,
    detection: DetectionOptions | None = None,
    postprocess: PostprocessConfig | None = None,
    engine: EngineOptions | None = None,
    retry_failed: bool = False,
    show_progress: bool = False,
    model_id: str | None = None,
    birdnet=None,
    location: LocationOptions | None = None,
) -> RunSummary:
    """Score ``inputs`` with ``model`` into ``out``, resumably; see :mod:`birdcall.infer.run_state` for the layout.

    Args:
        model: anything :func:`~birdcall.infer.models.open_model` opens (a path, a run folder, a list of them, or a
            Scorer object); for ``embeddings``, anything :func:`~birdcall.infer.models.open_embedder` opens
            (``"birdnet"``, a checkpoint, or an Embedder object).
        inputs: audio files and folders (:func:`~birdcall.infer.inputs.discover_inputs`).
        out: the output folder (``detections``), the submission CSV (``submission``), the embeddings Parquet
            file (``embeddings``; :mod:`birdcall.infer.embeddings`) or the scores Parquet file (``scores``;
            :func:`~birdcall.infer.writers.read_scores_parquet` reads it).
        kind: ``"detections"`` (``birdcall analyze``), ``"submission"`` (``birdcall predict``), ``"embeddings"``
            (``birdcall embed``: one vector per window, each file streamed into its part as it is computed) or
            ``"scores"`` (the submission's window scores keyed by file path and times, in Parquet).
        window: hop, TTA shifts and decoding chunk (None: :class:`WindowOptions` defaults).
        detection: thresholds and species filters (``detections`` only; None: the defaults).
        postprocess: applied to each file's scores.
        engine: batch size, workers, shard, backend, threads... (None: :class:`EngineOptions` defaults).
        retry_failed: redo files an earlier run recorded as failed.
        show_progress: a progress bar (files, hours of audio, speed).
        model_id: identifies a Scorer object in run.json (a model path is identified by its bytes).
        birdnet: ``embeddings`` with ``model="birdnet"`` only: a :class:`~birdcall.birdnet.BirdNetFeatureConfig`
            (None: its defaults).
        location: a species filter by place and season (:mod:`birdcall.infer.location`), computed once for the
            run and applied to each file's scores (not to ``embeddings``); recorded in run.json, so a resume with
            other filter settings is refused.

    Returns:
        A :class:`RunSummary`.

    Raises:
        ParameterError: a missing input, invalid options (for ``embeddings``: TTA, post-processing, detection
            options or a backend other than torch), an ``out`` that cannot be written (a folder for the
            submission CSV, a file for the output folder, no write permission), an output folder holding
            another run's results, the same shard already running into it, or (``submission``) inputs
            sharing a file stem, whose row ids would repeat; all before anything is scored.
        CheckpointError: the model cannot be opened.
        MissingExtraError: ``embeddings`` of ``"birdnet"`` without the BirdNET extra; ``location`` without an
            occurrence table and without the BirdNET extra.
        OutputWriteError: writing a part, a manifest line or an output failed (disk full, say); the files
            finished before are kept and a rerun resumes.
    """
    window = window if window is not None else WindowOptions()
    engine = engine if engine is not None else EngineOptions()
    check_kind(kind)
    check_out(Path(out), kind)
    if engine.engine == "ray":
        require_ray()  # the one-line error before any work
    shard_index, shard_count = parse_shard(engine.shard)
    all_files = discover_inputs(inputs)
    check_names(all_files)
    if kind == "submission":
        check_row_ids(all_files)  # all shards: the submission holds them all
    files = [str(p) for p in select_shard(all_files, (shard_index, shard_count))]
    if kind == "embeddings":
        if location is not None:
            raise ParameterError("location filters do not apply to embeddings")
        scorer, spec, settings = _open_embeddings(model, birdnet=birdnet, model_id=model_id, window=window, engine=engine,
                                                  postprocess=postprocess, detection=detection)
        labels, note, where = None, "", None
    else:
        resumes = _resumes_suffix_backend(model, state_dir(out, kind))
        auto = engine.backend is None and kind in ("detections", "submission") and resumes is None
        scorer, spec, settings, detection, note = _open_scorer(model, kind=kind, model_id=model_id, window=window, engine=engine,
                                                               postprocess=postprocess, detection=detection, auto_export=auto)
        labels = scorer.labels
        where = species_filter(location, labels) if location is not None else None
        if where is not None:
            settings["location"] = where.settings
        if resumes is False and engine.backend in (None, settings["backend"]):
            del settings["backend"]  # a run.json from before backends were recorded: it resumes on the same one
    settings = json.loads(json.dumps(settings))  # tuples -> lists, as read back
    state = state_dir(out, kind)
    with writing(state):
        state.mkdir(parents=True, exist_ok=True)
    check_parts_folder(state)
    name = shard_name(shard_index, shard_count)
    manifest = state / manifest_name(shard_index, shard_count)
    busy = f"{state}: shard {shard_index}/{shard_count} is already running into this folder"
    with in_use(state, temporary_folders(Path(out), kind)):
        with locked(state / f".{name}.lock", wait=False, busy=busy):
            with locked(state / ".lock"), writing(state):
                check_or_write_settings(state, settings)
                write_plan(state, shard_index, shard_count, files)
            records = read_records(state)
            todo = [f for f in files if f not in records or (retry_failed and records[f]["status"] == "failed")]
            resumed = len(files) - len(todo)
            todo = drop_killers(todo, manifest)
            if engine.engine == "ray":
                recipe = ModelRecipe(absolute_model(model), kind, backend=engine.backend, threads=engine.threads, streams=engine.streams,
                                     frontend=engine.frontend, auto_export=kind != "embeddings" and auto, birdnet=birdnet)
                table = functools.partial(file_table, kind=kind, labels=labels, postprocess=postprocess, detection=detection, location=where)
                run_ray(recipe, todo, state=state, manifest=manifest, kind=kind, spec=spec, codes=labels.codes if labels else None, batch_size=engine.batch_size,
                        options=engine.ray or RayOptions(), table=table, show_progress=show_progress, description=_DESCRIPTIONS[kind])
            else:
                _run_todo(scorer, todo, state=state, manifest=manifest, kind=kind, labels=labels, spec=spec, engine=engine,
                          postprocess=postprocess, detection=detection, location=where, show_progress=show_progress)
        combined = combine_outputs(out, kind=kind)
    records = read_records(state)
    mine = [records.get(f) for f in files]
    errors = tuple((f, r.get("reason", "")) for f, r in zip(files, mine) if r is not None and r["status"] == "failed")
    return RunSummary(
        files=len(files),
        windows=sum(int(r.get("windows", 0)) for r in mine if r is not None and r["status"] == "done"),
        skipped=len(errors),
        resumed=resumed,
        errors=errors,
        outputs=combined["outputs"],
        complete=combined["complete"],
        missing=combined["missing"],
        state_dir=state,
        backend=settings.get("backend"),
        backend_note=note,
    )


def _resumes_suffix_backend(model: Any, state: Path) -> bool | None:
    """Whether ``state`` holds a run recorded with the backend the model's suffix names, which it resumes on:
    every run before the automatic OpenVINO export. True: it recorded that backend; False: it recorded no
    backend (an older run.json); None: no run, or one on another backend (a new run chooses for itself)."""
    try:
        old = read_settings(state)
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict):
        return None
    if "backend" not in old:
        return False
    return True if old["backend"] == model_backend(model, None) else None


def _open_scorer(model: Any, *, kind: str, model_id: str | None, window: WindowOptions, engine: EngineOptions,
                 postprocess: PostprocessConfig | None, detection: DetectionOptions | None,
                 auto_export: bool) -> tuple[Any, WindowSpec, dict, DetectionOptions | None, str]:
    """The scorer, window spec, run settings, detection options (None unless ``detections``) and backend note of a
    run of species scores; invalid options are refused."""
    scorer, backend, note = open_scorer(model, backend=engine.backend, threads=engine.threads, streams=engine.streams,
                                        frontend=engine.frontend, auto_export=auto_export)
    labels = getattr(scorer, "labels", None)
    if not isinstance(labels, LabelSet):
        raise ParameterError(f"{model}: the scorer carries no LabelSet (species codes)")
    clash = sorted(set(labels.codes) & set(INDEX))
    if clash:
        raise ParameterError(f"species codes {clash} clash with the prediction table's index names")
    features = scorer.features
    spec = window.spec(features.sample_rate, features.clip_duration, features.pad)
    spec.windows_per_batch(engine.batch_size)  # validate before any work
    if kind == "detections":
        detection = detection or DetectionOptions()
        to_detections(empty_scores(labels.codes), labels=labels, **detection.kwargs())  # validates codes and thresholds
    else:
        detection = None
    if postprocess is not None and not isinstance(postprocess, PostprocessConfig):
        raise ParameterError(f"postprocess must be a PostprocessConfig, got {type(postprocess).__name__}")
    settings = {
        "format": FORMAT,
        "kind": kind,
        "model": model_digest(model, model_id),
        "backend": backend,
        "labels": labels.to_dict(),
        "sample_rate": spec.sample_rate,
        "clip_duration": spec.clip_duration,
        "fmax": float(getattr(features, "fmax", 0.0) or 0.0) or None,
        "hop": spec.hop,
        "tta_shifts": list(spec.tta_shifts),
        "final_clip": spec.final_clip,
        "postprocess": asdict(postprocess) if postprocess is not None else None,
        "detection": asdict(detection) if detection is not None else None,
    }
    return scorer, spec, settings, detection, note


def _open_embeddings(model: Any, *, birdnet, model_id: str | None, window: WindowOptions, engine: EngineOptions,
                     postprocess: PostprocessConfig | None, detection: DetectionOptions | None) -> tuple[Any, WindowSpec, dict]:
    """The embedder, window spec and run settings of an ``embeddings`` run; options that do not apply are refused."""
    if tuple(float(t) for t in window.tta_shifts) != (0.0,):
        raise ParameterError("embeddings take no TTA shifts (a vector per window, not an average of shifted ones)")
    for name, value in (("postprocess", postprocess), ("detection", detection), ("streams", engine.streams)):
        if value is not None:
            raise ParameterError(f"{name} does not apply to embeddings")
    if engine.backend not in (None, "torch") or engine.frontend != "auto":
        raise ParameterError("embeddings run on torch (a birdcall checkpoint) or LiteRT (BirdNET); no backend or frontend to choose")
    embedder = open_embedder(model, birdnet=birdnet, threads=engine.threads)
    spec = window.spec(int(embedder.sample_rate), float(embedder.clip_duration), embedder.pad)
    spec.windows_per_batch(engine.batch_size)  # validate before any work
    settings = {
        "format": FORMAT,
        "kind": "embeddings",
        "model": model_id or embedder.settings.get("digest"),
        "embedder": embedder.settings,
        "dim": int(embedder.dim),
        "sample_rate": spec.sample_rate,
        "clip_duration": spec.clip_duration,
        "hop": spec.hop,
        "final_clip": spec.final_clip,
        "pad": spec.pad,
    }
    return embedder, spec, settings


def _run_todo(scorer, todo: list[str], *, state: Path, manifest: Path, kind: str, labels: LabelSet | None, spec: WindowSpec,
              engine: EngineOptions, postprocess: PostprocessConfig | None, detection: DetectionOptions | None,
              location: SpeciesFilter | None, show_progress: bool) -> None:
    from ..progress import audio_rate, make_progress

    if not todo:
        return  # a rerun with nothing to do adds nothing to the manifest
    with writing(manifest):
        record = Manifest(manifest)
    run = secrets.token_hex(8)

    def on_start(path: str) -> None:  # before the file's first block is decoded (see run_state.deaths)
        with writing(manifest):
            record.append({"file": path, "status": "started", "run": run})

    streamed = {}
    if kind == "embeddings":  # each file's vectors go straight into its part (memory flat in file length)
        streamed = {"width": scorer.dim, "sink": lambda index, path: EmbeddingPart(state, path, spec, scorer.dim)}
    started = time.perf_counter()
    audio = 0.0
    with recording_run(record, run), make_progress(disable=not show_progress) as progress:
        task = progress.add_task(_DESCRIPTIONS[kind], total=len(todo), rate="")
        for result in score_files(scorer, todo, labels=labels, spec=spec, batch_size=engine.batch_size, workers=engine.workers,
                                  start_method=engine.start_method, on_start=on_start, **streamed):
            if result.ok and result.part is not None:
                with writing(manifest):
                    record.append({"file": result.path, "status": "done", "part": result.part, "windows": result.num_windows,
                                   "duration": result.duration, "rows": result.num_windows})
            elif result.ok:
                frame = file_table(result.scores, kind=kind, labels=labels, postprocess=postprocess, detection=detection,
                                   location=location)
                part = write_part(state, result.path, frame, kind)
                with writing(manifest):
                    record.append({"file": result.path, "status": "done", "part": part, "windows": result.num_windows,
                                   "duration": result.duration, "rows": len(frame)})
            else:
                with writing(manifest):
                    record.append({"file": result.path, "status": "failed", "reason": result.reason})
            audio += result.duration
            progress.update(task, advance=1, rate=audio_rate(audio, time.perf_counter() - started))


def file_table(scores, *, kind: str, labels: LabelSet | None, postprocess: PostprocessConfig | None, detection: DetectionOptions | None,
               location: SpeciesFilter | None = None):
    """What a run keeps of one file's window scores (:func:`~birdcall.infer.batching.score_file`): post-processed,
    weighted by the location filter (``filter``: the unexpected species' scores become 0; ``weight``: scaled), then,
    for ``detections``, the detection table (:func:`~birdcall.infer.detections.to_detections`; a ``filter``'s
    unexpected species are excluded, so no threshold lets them through)."""
    frame = scores if postprocess is None else apply_postprocess(scores, postprocess)
    if location is not None:
        frame = location.apply(frame)
    if kind == "detections":
        kwargs = (detection or DetectionOptions()).kwargs()
        if location is not None and location.excluded:
            kwargs["exclude"] = tuple(dict.fromkeys((*(kwargs["exclude"] or ()), *location.excluded)))
        frame = to_detections(frame, labels=labels, **kwargs)
    return frame
