"""The batch inference engine behind ``birdcall predict``, ``analyze``, ``embed`` and ``pseudo-label``: parallel, streaming, resumable.

Four kinds of run share it: ``detections`` (``analyze``), ``submission`` (``predict``), ``embeddings``
(``embed``: an :class:`~birdcall.infer.scorer.Embedder` gives one vector per window instead of species scores) and
``scores`` (the window scores as a Parquet table, for programs: ``pseudo-label`` runs each teacher as one).

Division of work
    The log-mel front end lives inside the model (a birdcall torch model starts with its
    :class:`~birdcall.features.FeatureExtractor`, and ONNX/OpenVINO exports include it in the graph), so a
    scorer takes raw waveform windows. Worker processes (``workers > 0``; ``multiprocessing`` with the
    ``spawn`` start method by default, ``forkserver`` works too) therefore only decode, resample and cut
    windows; the main process batches the windows, across file boundaries, and runs the scorer.

Memory
    A worker decodes a file in chunks (:func:`birdcall.audio.stream`) and sends blocks of at most one batch
    of windows (as the audio segment they span, :class:`~birdcall.infer.long_recording.WindowBlock`) through a
    pipe, which holds at most one block: a worker waits while the main process is busy. Peak memory is a
    chunk and a block per worker plus one batch, whatever the length of the files; the main process keeps
    only the scores of the files in flight. An ``embeddings`` run keeps not even those: each file's vectors
    (thousands of values a window) stream into its part as they are computed (``_EmbeddingPart``).

Failures
    A file that fails to decode (:class:`~birdcall.errors.AudioLoadError`, or anything else its worker
    raises) is reported with a one-line reason and the run goes on; the windows it produced before failing
    are dropped. A worker that dies (crash, out-of-memory kill) fails the file it was reading and is
    replaced; the files queued behind it are re-assigned. Workers exit on their own when the main process
    disappears.

Never losing work (:func:`run_inference`)
    Each finished file's table is written atomically to ``parts/`` and only then recorded in a manifest
    (one JSON line, appended and fsynced); a failed file is recorded with its reason. A rerun of the same
    command skips every recorded file (failed ones too, unless ``retry_failed``), so a killed run resumes
    where it stopped. The combined outputs are rebuilt from the parts of the recorded files at the end of
    every run: one record, hence one part, per file, so a resumed run has no duplicate and no missing rows.
    The settings that change the results are kept in ``run.json``; a rerun with other settings into the same
    folder is refused. A write that fails (disk full, permissions) stops the run with one
    :class:`OutputWriteError` line; what was finished is kept. Temporaries of atomic writes that a killed run
    left behind (``.*.birdcall.tmp``) are removed when the next run starts and no other run uses the folder.

Manifest records (one JSON object a line; unknown statuses are ignored, so old manifests read as before)
    ``{"file", "status": "done", "part", "windows", "duration", "rows"}``: finished; its table is ``part``,
    which must be ``parts/<name>.parquet`` (a plain name) inside the state folder. Any other ``part`` (``..``,
    an absolute path, a symlink leading out of ``parts/``) is a corrupt record: skipped with a
    :class:`RunStateWarning` naming the manifest and line, so its file counts as not processed and is scored
    again (:func:`merge_outputs` does not copy such a record, nor anything it names).
    ``{"file", "status": "failed", "reason"}``: failed, with its one-line reason (``errors.csv``).
    ``{"file", "status": "started", "run"}``: written (by the process that records results) before the
    file's first block is decoded. ``{"status": "stopped", "run"}``: that run ended on a Python exception
    (Ctrl-C, an error it reported), so its unfinished files were not what stopped it.
    A run that dies without a trace (killed, out of memory, a crash in native code) leaves ``started`` records
    with no ``done``/``failed`` after them; the last file it started is taken as the one that killed it. The
    next run of the shard retries that file once (with a warning); a file that killed two runs is recorded as
    failed ("the run died twice while processing this file") instead of killing every rerun. A normal run
    adds two lines per file it processes and a rerun with nothing to do adds none.

Layout of ``OUT_DIR`` (``analyze``; ``predict`` keeps the same state in ``.<name>.parts/`` next to its CSV)::

    run.json                        settings, model digest, labels (written by the first run)
    plans/shard-I-of-N.json         the files of every shard that ran here (I-of-N = 0-of-1 without --shard)
    manifest.jsonl                  one record per finished or failed file (manifest.shard-I-of-N.jsonl per shard)
    parts/<stem>-<hash>.parquet     one file's detections (analyze) or window scores (predict, scores)
    errors.csv                      file, reason of every failed file
    detections.csv, detections.parquet
    raven_combined.selections.txt   one Raven selection table for all files (outside raven/, so that no
                                    input's name can take it: an input ``combined.wav`` has its own table)
    raven/<stem>.selections.txt     one Raven selection table per file
    audacity/<stem>.txt             one Audacity label track per file

    Per-file names use the file stem, with ``-<hash>`` added when two inputs share a stem. ``predict`` refuses
    inputs that share a stem (their BirdCLEF row ids ``<stem>_<end second>`` would repeat).

    ``embed`` keeps its state in ``.<name>.parts/`` next to its Parquet file, as ``predict`` does (errors.csv
    included); its parts are embedding tables (:mod:`birdcall.infer.embeddings`) and the output is rebuilt from
    them part after part, so combining never holds more than a row group.

    A ``scores`` run keeps its state in ``.<name>.parts/`` next to its Parquet file too (parts of window scores,
    as ``predict``'s; errors.csv included). Its output is one table of every window, in file order then time
    (:func:`~birdcall.infer.writers.write_scores_parquet`): ``file`` (the absolute path, as recorded here),
    ``start_time``, ``end_time``, one float32 column per species, the run settings (run.json) in the Parquet
    metadata. Rows are keyed by the whole path, so inputs that share a stem are fine.

Sharding
    Inputs are discovered (:func:`discover_inputs`: absolute paths, sorted, duplicates removed) and shard
    ``I/N`` takes every N-th of them starting at the I-th (:func:`select_shard`): deterministic, balanced in
    file count, and the same on every machine given the same inputs. Shards may run one after another or at
    once into the same folder (each writes its own plan and manifest and shares ``parts/``); every run ends by
    rebuilding the combined outputs from all records in the folder (under a lock), so once the last shard
    ends they equal those of a single run. Shards that ran into separate folders are merged with
    :func:`merge_outputs` (``birdcall analyze --merge --out OUT_DIR SHARD_DIRS...``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import queue
import re
import secrets
import shutil
import signal
import threading
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..audio import AUDIO_EXTENSIONS, stream
from ..data.labels import LabelSet
from ..errors import AudioLoadError, BirdcallError, ParameterError
from ..fileio import atomic_path, atomic_write_text, fsync_dir, hash_files, remove_stale_temporaries
from ..types import Pathlike
from .long_recording import (
    WindowBlock,
    WindowSpec,
    iter_window_blocks,
    score_windows,
    scores_frame,
)

__all__ = [
    "COMBINED_RAVEN",
    "KINDS",
    "DetectionOptions",
    "FileResult",
    "OutputWriteError",
    "RunStateWarning",
    "RunSummary",
    "WindowSpec",
    "combine_outputs",
    "discover_inputs",
    "iter_file_events",
    "merge_outputs",
    "open_embedder",
    "open_model",
    "parse_shard",
    "run_inference",
    "score_files",
    "select_shard",
    "state_dir",
]

KINDS = ("detections", "submission", "embeddings", "scores")
_DESCRIPTIONS = {"detections": "analyze", "submission": "predict", "embeddings": "embed", "scores": "score"}  # progress bar labels
COMBINED_RAVEN = "raven_combined.selections.txt"  # the Raven table of all files, in the output folder itself
_FORMAT = "birdcall.run/1"
_INDEX = ["file", "start_time", "end_time"]
_MODEL_SUFFIXES = {".safetensors": "torch", ".onnx": "onnx", ".xml": "openvino"}
_ASSIGNED_PER_WORKER = 2  # files handed to a worker ahead (so it never idles between files)
_STARTUP_FAILURES = 3  # consecutive worker deaths without any progress before the run gives up
_DEATHS = 2  # runs a file may kill (die while processing it) before it is recorded as failed and skipped
_DIED_TWICE = "the run died twice while processing this file; skipped (delete its manifest lines, or retry failed files, to try again)"
_RESUME_HINT = "the files finished so far are kept: rerun the same command to resume"


class RunStateWarning(UserWarning):
    """Something in a run's state folder needs the user's attention: a corrupt manifest record (skipped), or a
    file being retried because the previous run died while processing it. One line, naming the file."""


class OutputWriteError(BirdcallError, OSError):
    """An output or run-state file could not be written (disk full, permissions, read-only file system).

    ``str(err)`` is one line, ``"<path>: cannot write (<cause>); <hint>"``; ``errno`` is the OS error's.
    Being an ``OSError`` too, it is caught where an OSError was before.
    """

    def __init__(self, path: Pathlike, err: OSError, hint: str = ""):
        super().__init__(err.errno, err.strerror or str(err))
        self.path = os.fspath(path)
        self.filename = self.path
        self.cause = " ".join(str(err.strerror or err).split())
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.path}: cannot write ({self.cause})" + (f"; {self.hint}" if self.hint else "")


@contextlib.contextmanager
def _writing(path: Pathlike, hint: str = _RESUME_HINT) -> Iterator[None]:
    """Turn an OSError raised while writing ``path`` into one :class:`OutputWriteError` line naming it."""
    try:
        yield
    except OutputWriteError:
        raise
    except OSError as err:
        raise OutputWriteError(path, err, hint) from err


# ------------------------------------------------------------------------------------------------ inputs


def discover_inputs(inputs: Iterable[Pathlike]) -> list[Path]:
    """The audio files named by ``inputs``: files as given, folders searched recursively by extension.

    Returns:
        Absolute, normalised paths (symlinks are not resolved, so names stay the user's), sorted, each file
        once (two names of the same file count once).

    Raises:
        ParameterError: a path that does not exist, or no file at all.
    """
    found: dict[str, Path] = {}
    inputs = [Path(p) for p in inputs]
    for item in inputs:
        if not item.exists():
            raise ParameterError(f"{item}: no such file or folder")
        if item.is_dir():
            candidates = (p for p in item.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        else:
            candidates = iter([item])
        for path in candidates:
            absolute = Path(os.path.normpath(os.path.abspath(path)))
            found.setdefault(str(absolute), absolute)
    unique: dict[str, Path] = {}
    for key in sorted(found):
        unique.setdefault(os.path.realpath(key), found[key])
    if not unique:
        raise ParameterError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {', '.join(map(str, inputs)) or 'the inputs'}")
    return sorted(unique.values(), key=str)


def parse_shard(shard: tuple[int, int] | str | None) -> tuple[int, int]:
    """``(I, N)`` from ``(I, N)``, ``"I/N"`` or None (``(0, 1)``: everything).

    Raises:
        ParameterError: not ``0 <= I < N``.
    """
    if shard is None:
        return 0, 1
    if isinstance(shard, str):
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
        if not match:
            raise ParameterError(f"shard must look like I/N (e.g. 0/4), got {shard!r}")
        shard = (int(match.group(1)), int(match.group(2)))
    try:
        index, count = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise ParameterError(f"shard must be (I, N) or 'I/N', got {shard!r}") from None
    if not 0 <= index < count:
        raise ParameterError(f"shard I/N needs 0 <= I < N, got {index}/{count}")
    return index, count


def select_shard(paths: Sequence[Path], shard: tuple[int, int] | str | None) -> list[Path]:
    """Shard ``I/N`` of ``paths``: every N-th path of the sorted list starting at the I-th."""
    index, count = parse_shard(shard)
    return sorted(paths, key=str)[index::count]


# ------------------------------------------------------------------------------------------------ model


def open_model(model: Any, *, backend: str | None = None, threads: int | None = None, streams: int | None = None, frontend: str = "auto"):
    """Open ``model`` as a :class:`~birdcall.infer.scorer.Scorer`.

    Args:
        model: a Scorer (returned as is); a ``.safetensors`` checkpoint; a run folder (an ensemble of its
            folds, :func:`~birdcall.infer.ensemble.load_ensemble`); an ``.onnx`` or OpenVINO ``.xml`` model; or a
            list of those, an :class:`~birdcall.infer.ensemble.EnsembleScorer` of their mean (a run folder
            counts as one member).
        backend: ``torch``, ``onnx`` or ``openvino``; None picks it from the suffix (torch for a folder).
        threads: intra-op threads of the backend.
        streams: OpenVINO CPU streams (each batch split across them); openvino backend only.
        frontend: where an exported model computes its STFT: ``"auto"``, ``"host"`` or ``"graph"``
            (:func:`~birdcall.infer.scorer.load_scorer`).

    Raises:
        ParameterError: a path that does not exist or that no backend opens, or ``streams``/``frontend`` with
            a backend they do not apply to.
        CheckpointError: a malformed model file.
    """
    if _is_scorer(model):
        return model
    if isinstance(model, (list, tuple)):  # several models (files or run folders, any formats): their mean
        from .ensemble import EnsembleScorer

        if not model:
            raise ParameterError("no model given")
        return EnsembleScorer([open_model(m, backend=backend, threads=threads, streams=streams, frontend=frontend) for m in model])
    path = Path(model)
    if not path.exists():
        raise ParameterError(f"{path}: model not found")
    if path.is_dir():
        from .ensemble import load_ensemble

        return load_ensemble(path, backend=backend or "torch", threads=threads, streams=streams, frontend=frontend)
    chosen = backend or _MODEL_SUFFIXES.get(path.suffix.lower())
    if chosen is None:
        raise ParameterError(f"{path}: unknown model format; expected {', '.join(_MODEL_SUFFIXES)} or a run folder (or pass --backend)")
    from .scorer import load_scorer

    return load_scorer(path, backend=chosen, threads=threads, streams=streams, frontend=frontend)


def _is_scorer(model: Any) -> bool:
    return callable(model) and hasattr(model, "labels") and hasattr(model, "features")


def open_embedder(model: Any, *, birdnet=None, threads: int | None = None):
    """Open ``model`` as an :class:`~birdcall.infer.scorer.Embedder` (``birdcall embed``).

    Args:
        model: an Embedder (returned as is); ``"birdnet"``; a ``.safetensors`` checkpoint; a training run folder
            with one model (its ``best.safetensors``). A run folder with several (folds, seeds) is refused: each
            model embeds into its own space, so there is no one embedding of the run; name one of its files.
        birdnet: BirdNET feature settings (:func:`~birdcall.infer.scorer.load_embedder`).
        threads: intra-op threads.

    Raises:
        ParameterError: a missing path, a run folder of several models, an exported model.
        MissingExtraError: ``"birdnet"`` without the BirdNET extra.
        CheckpointError: a malformed model file.
    """
    from .scorer import BIRDNET, load_embedder

    if _is_embedder(model):
        return model
    if str(model) != BIRDNET:
        path = Path(model)
        if not path.exists():
            raise ParameterError(f"{path}: model not found (give {BIRDNET!r} or a birdcall .safetensors checkpoint)")
        if path.is_dir():
            from .ensemble import run_models

            models = run_models(path)
            if len(models) > 1:
                raise ParameterError(
                    f"{path}: a run folder with {len(models)} models (folds or seeds), each embedding into its own space; "
                    f"give one of them, e.g. --model {models[0]}"
                )
            model = models[0]
    return load_embedder(model, birdnet=birdnet, threads=threads)


def _is_embedder(model: Any) -> bool:
    return callable(model) and all(hasattr(model, name) for name in ("dim", "settings", "sample_rate", "clip_duration"))


def _effective_backend(model: Any, backend: str | None) -> str | None:
    """The backend :func:`open_model` uses for ``model`` (None for a Scorer object)."""
    if _is_scorer(model):
        return None
    if isinstance(model, (list, tuple)):
        return ",".join(str(_effective_backend(m, backend)) for m in model)
    path = Path(model)
    return backend or ("torch" if path.is_dir() else _MODEL_SUFFIXES.get(path.suffix.lower()))


def _model_digest(model: Any, model_id: str | None) -> str | None:
    """sha256 over the bytes of the model files (the same on every machine), ``model_id`` for an object."""
    if model_id is not None:
        return model_id
    if _is_scorer(model):
        return None
    if isinstance(model, (list, tuple)):  # an ensemble: its members' digests, in order
        return hashlib.sha256("|".join(str(_model_digest(m, None)) for m in model).encode()).hexdigest()
    path = Path(model)
    if path.is_dir():
        try:
            from .ensemble import run_models

            files = run_models(path)
        except (ImportError, BirdcallError):
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (*_MODEL_SUFFIXES, ".bin"))
    else:
        files = [path] + ([path.with_suffix(".bin")] if path.suffix.lower() == ".xml" and path.with_suffix(".bin").is_file() else [])
    return hash_files(files)


# ------------------------------------------------------------------------------------------------ producers


def _failure(err: BaseException) -> str:
    """One line saying why a file failed."""
    if isinstance(err, AudioLoadError):
        return err.cause
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}"[:500] if text else type(err).__name__


def iter_file_events(index: int, path: Pathlike, spec: WindowSpec, *, max_windows: int) -> Iterator[tuple]:
    """What a producer reports about one file, in order.

    Yields ``("start", index)``, then ``("block", index, WindowBlock)`` for each block of windows, then
    either ``("done", index, seconds_decoded)`` or, if anything fails, ``("error", index, reason)``.
    """
    yield ("start", index)
    decoded = 0

    def counted(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        nonlocal decoded
        for chunk in chunks:
            decoded += len(chunk)
            yield chunk

    try:
        chunks = counted(stream(path, sample_rate=spec.sample_rate, chunk_duration=spec.chunk_duration))
        blocks = iter_window_blocks(
            chunks, clip_samples=spec.clip_samples, hop_samples=spec.hop_samples, shift_samples=spec.shift_samples,
            final_clip=spec.final_clip, max_windows=max_windows, pad=spec.pad,
        )
        for block in blocks:
            yield ("block", index, block)
    except Exception as err:  # noqa: BLE001 - any failure of one file is that file's, the run goes on
        yield ("error", index, _failure(err))
        return
    yield ("done", index, decoded / spec.sample_rate)


def _local_events(paths: Sequence[Pathlike], spec: WindowSpec, max_windows: int,
                  on_start: Callable[[str], None] | None = None) -> Iterator[tuple]:
    for i, path in enumerate(paths):
        if on_start is not None:
            on_start(str(path))  # before anything of the file is decoded
        yield from iter_file_events(i, path, spec, max_windows=max_windows)


_END = object()


IDLE = ("idle", -1)  # producer event: nothing decoded is waiting (see `_prefetched`, `_Batcher.feed`)


def _prefetched(events: Iterator[tuple], depth: int = 2, idle: tuple | None = None) -> Iterator[tuple]:
    """Run ``events`` in a background thread, ``depth`` events ahead of the consumer.

    Decoding (libsndfile, soxr) and the scorers (torch, ONNX Runtime, OpenVINO) release the GIL, so with
    ``workers=0`` the next block is decoded while the current batch is scored, without a process (and its
    imports and memory). The bounded queue keeps memory at ``depth`` blocks whatever the file length; the
    producer's exceptions are re-raised here; closing this generator stops the thread. With ``idle``, that
    event is yielded whenever the consumer would otherwise wait for the producer (so it can use the time).
    """
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        """Queue ``item``, waiting while the queue is full; False once the consumer has stopped."""
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for event in events:
                if not put(event):
                    return
            item = _END
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which re-raises it
            item = err
        put(item)

    thread = threading.Thread(target=produce, name="birdcall-decode", daemon=True)
    thread.start()
    try:
        while True:
            if idle is not None and box.empty():
                yield idle
            item = box.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5.0)
        if not thread.is_alive():  # else it is inside a decode step; it stops at its next put (daemon either way)
            events.close()


def _worker_main(tasks, events, spec: WindowSpec, max_windows: int) -> None:
    """A decoding process: ``(index, path)`` tasks in, :func:`iter_file_events` out, until None.

    Both ends are pipes: ``send`` returns once the event is in the pipe, so what a worker reported before
    dying is never lost, and it blocks while the pipe is full (the bound on memory). The worker ends when
    the main process closes its ends or disappears.
    """
    with contextlib.suppress(AttributeError, ValueError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle; it stops us
    parent = mp.parent_process()
    try:
        while True:
            while not tasks.poll(1.0):
                if parent is not None and not parent.is_alive():
                    return
            task = tasks.recv()
            if task is None:
                return
            index, path = task
            for event in iter_file_events(index, path, spec, max_windows=max_windows):
                events.send(event)
    except (EOFError, OSError):  # the main process is gone
        return


@dataclass
class _Worker:
    process: Any
    tasks: Any  # Connection main -> worker
    events: Any  # Connection worker -> main
    assigned: deque = field(default_factory=deque)  # file indices sent to it, oldest first
    current: int | None = None  # file it reported starting and has not finished


def _parallel_events(paths: Sequence[Pathlike], spec: WindowSpec, max_windows: int, workers: int, start_method: str) -> Iterator[tuple]:
    """The events of :func:`iter_file_events` for every file, produced by ``workers`` processes.

    Each worker has a task pipe and an event pipe; the main process waits on every event pipe and every
    worker's exit at once. Files are handed out a couple at a time, so a dead worker's unstarted files go
    to its replacement.
    """
    from multiprocessing.connection import wait

    ctx = mp.get_context(start_method)
    todo = deque((i, str(p)) for i, p in enumerate(paths))
    pool: list[_Worker] = []
    startup_failures = 0

    def launch() -> None:
        task_reader, task_writer = ctx.Pipe(duplex=False)
        event_reader, event_writer = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_worker_main, args=(task_reader, event_writer, spec, max_windows), daemon=True, name="birdcall-decode")
        process.start()
        task_reader.close()  # the worker's ends: closing ours lets each side see the other go
        event_writer.close()
        worker = _Worker(process, task_writer, event_reader)
        pool.append(worker)
        assign(worker)

    def assign(worker: _Worker) -> None:
        while len(worker.assigned) < _ASSIGNED_PER_WORKER and todo:
            task = todo.popleft()
            worker.assigned.append(task[0])
            with contextlib.suppress(OSError):  # a dead worker is noticed by its sentinel
                worker.tasks.send(task)

    def receive(worker: _Worker) -> Iterator[tuple]:
        nonlocal startup_failures
        event = worker.events.recv()
        kind, index = event[0], event[1]
        if kind == "start":
            worker.current = index
        yield event
        if kind in ("done", "error"):
            startup_failures = 0
            worker.current = None
            with contextlib.suppress(ValueError):
                worker.assigned.remove(index)
            assign(worker)

    def bury(worker: _Worker) -> Iterator[tuple]:
        nonlocal startup_failures
        pool.remove(worker)
        worker.process.join(timeout=1.0)
        code = worker.process.exitcode
        lost = list(worker.assigned)
        if worker.current is not None:
            lost.remove(worker.current)
            yield ("error", worker.current, f"decoding process died (exit code {code}) while reading this file")
        elif lost:
            startup_failures += 1
            if startup_failures >= _STARTUP_FAILURES:
                raise BirdcallError(f"decoding worker processes keep exiting (last exit code {code}); try --workers 0")
        todo.extendleft((i, str(paths[i])) for i in reversed(lost))
        _close(worker)
        if todo:
            launch()

    try:
        for _ in range(min(workers, len(todo))):
            launch()
        while any(w.assigned for w in pool):
            by_handle = {}
            for worker in pool:
                by_handle[worker.events] = worker
                by_handle[worker.process.sentinel] = worker
            for handle in wait(list(by_handle), timeout=1.0):
                worker = by_handle[handle]
                if worker not in pool:
                    continue
                try:
                    if handle is worker.events:
                        yield from receive(worker)
                        continue
                    while worker.events.poll():  # it exited: first take what it sent
                        yield from receive(worker)
                except (EOFError, OSError):
                    pass
                yield from bury(worker)
    finally:
        _shutdown(pool)


def _close(worker: _Worker) -> None:
    for connection in (worker.tasks, worker.events):
        with contextlib.suppress(OSError):
            connection.close()


def _shutdown(workers: Iterable[_Worker]) -> None:
    workers = list(workers)
    for worker in workers:
        with contextlib.suppress(OSError):
            worker.tasks.send(None)
    deadline = time.monotonic() + 5.0
    for worker in workers:
        while worker.process.is_alive() and time.monotonic() < deadline:
            try:
                if worker.events.poll(0.05):
                    worker.events.recv()  # unblock a worker stuck sending
            except (EOFError, OSError):
                worker.process.join(timeout=0.5)
                break
            worker.process.join(timeout=0.01)
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(timeout=2.0)
        _close(worker)


# ------------------------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class FileResult:
    """One input file, scored or failed.

    Attributes:
        index: position of the file in the ``paths`` given to :func:`score_files`.
        path: the file as given.
        scores: prediction table (index file, start_time, end_time; one column per species), None if failed or
            if the rows went to a ``sink`` (:func:`score_files`).
        reason: one-line reason the file failed, None if scored.
        duration: seconds of audio decoded (0 for a failed file).
        part: what a ``sink`` wrote the rows to (None without a sink).
        rows: windows a ``sink`` received.
    """

    index: int
    path: str
    scores: pd.DataFrame | None
    reason: str | None = None
    duration: float = 0.0
    part: str | None = None
    rows: int = 0

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def num_windows(self) -> int:
        return self.rows if self.scores is None else len(self.scores)


class _FrameRows:
    """The default sink of a file's scored windows: kept in memory, the prediction table made at the end.

    A sink (:func:`score_files`) has ``add(starts, values)`` (window start samples and their rows, in order),
    ``finish(index, duration) -> FileResult`` and ``discard()`` (the file failed or the run stopped)."""

    def __init__(self, path: str, spec: WindowSpec, codes: Sequence[str]):
        self.path, self.spec, self.codes = path, spec, codes
        self.starts: list[np.ndarray] = []
        self.values: list[np.ndarray] = []

    def add(self, starts: np.ndarray, values: np.ndarray) -> None:
        self.starts.append(starts)
        self.values.append(values)

    def finish(self, index: int, duration: float) -> FileResult:
        starts = np.concatenate(self.starts) if self.starts else np.zeros(0, dtype=np.int64)
        values = np.concatenate(self.values) if self.values else np.zeros((0, len(self.codes)), dtype=np.float32)
        order = np.argsort(starts, kind="stable")  # already in order: a file's blocks arrive in order
        frame = scores_frame(self.path, starts[order], values[order], sample_rate=self.spec.sample_rate, clip_samples=self.spec.clip_samples, codes=self.codes)
        return FileResult(index, self.path, frame, None, duration)

    def discard(self) -> None:
        self.starts.clear()
        self.values.clear()


@dataclass
class _InFlight:
    rows: Any  # the file's sink (_FrameRows or what score_files was given)
    queued: int = 0  # windows waiting in the batch queue
    duration: float | None = None  # set by "done"


class _Batcher:
    """Turns producer events into scored files: batches windows across files, routes scores back."""

    def __init__(self, scorer, paths: Sequence[Pathlike], labels: LabelSet | None, spec: WindowSpec, per_batch: int, *,
                 width: int | None = None, sink: Callable[[int, str], Any] | None = None):
        self.scorer, self.paths, self.labels, self.spec, self.per_batch = scorer, paths, labels, spec, per_batch
        self.width = len(labels) if width is None else int(width)  # values per window
        self.sink = sink or (lambda index, path: _FrameRows(path, spec, labels.codes))
        self.files: dict[int, _InFlight] = {}
        self.waiting: deque = deque()  # (file index, starts, windows (b, shifts, clip)) in arrival order
        self.queued = 0
        self._buffer: np.ndarray | None = None  # the batch, when it gathers several blocks (scorers do not keep it)

    def feed(self, event: tuple) -> list[FileResult]:
        kind, index = event[0], event[1]
        if kind == "start":
            self._open(index)
            return []
        if kind == "block":
            block: WindowBlock = event[2]
            state = self._open(index)
            windows = block.windows(clip_samples=self.spec.clip_samples, shift_samples=self.spec.shift_samples)
            self.waiting.append((index, block.starts, windows))
            state.queued += len(block.starts)
            self.queued += len(block.starts)
            finished: list[FileResult] = []
            while self.queued >= self.per_batch:
                finished += self._score(self.per_batch)
            return finished
        if kind == "idle":
            # Nothing decoded is waiting: score what is queued now rather than leave the model idle until a
            # full batch is decoded (at the start of a run that wait was ~15 % of a 10-min file's run time with
            # efficientnet_b0 on OpenVINO). Batch boundaries do not change any window's scores.
            return self._score(min(self.per_batch, self.queued)) if self.queued else []
        if kind == "done":
            state = self._open(index)
            state.duration = float(event[2])
            return self._finished([index])
        if kind == "error":
            state = self.files.pop(index, None)
            if state is not None:
                state.rows.discard()
            kept = deque(item for item in self.waiting if item[0] != index)
            self.queued = sum(len(item[1]) for item in kept)
            self.waiting = kept
            return [FileResult(index, str(self.paths[index]), None, event[2])]
        raise ParameterError(f"unknown producer event {kind!r}")

    def _open(self, index: int) -> _InFlight:
        state = self.files.get(index)
        if state is None:
            state = self.files[index] = _InFlight(self.sink(index, str(self.paths[index])))
        return state

    def close(self) -> list[FileResult]:
        finished: list[FileResult] = []
        while self.queued:
            finished += self._score(min(self.per_batch, self.queued))
        for index in sorted(self.files):  # a producer always ends a file; anything left is a bug, reported
            self.files[index].rows.discard()
            finished.append(FileResult(index, str(self.paths[index]), None, "internal error: the file was not finished"))
        self.files.clear()
        return finished

    def abort(self) -> None:
        """Discard the files in flight (the run stopped before they were finished)."""
        for state in self.files.values():
            with contextlib.suppress(Exception):
                state.rows.discard()
        self.files.clear()

    def _score(self, n: int) -> list[FileResult]:
        taken = []
        while n:
            index, starts, windows = self.waiting[0]
            if len(starts) <= n:
                self.waiting.popleft()
            else:
                self.waiting[0] = (index, starts[n:], windows[n:])
                starts, windows = starts[:n], windows[:n]
            taken.append((index, starts, windows))
            n -= len(starts)
        if len(taken) > 1:  # windows of several blocks: gathered into one reused buffer, not a new ~20 MB array
            shape = (sum(len(w) for _, _, w in taken), *taken[0][2].shape[1:])
            if self._buffer is None or self._buffer.shape[1:] != shape[1:] or len(self._buffer) < shape[0]:
                self._buffer = np.empty((max(shape[0], self.per_batch), *shape[1:]), dtype=np.float32)
            batch = np.concatenate([w for _, _, w in taken], out=self._buffer[: shape[0]])
        else:
            batch = taken[0][2]
        values = score_windows(self.scorer, batch, num_classes=self.width)
        row = 0
        for index, starts, _ in taken:
            state = self.files[index]
            state.rows.add(starts, values[row : row + len(starts)])
            state.queued -= len(starts)
            self.queued -= len(starts)
            row += len(starts)
        return self._finished(dict.fromkeys(index for index, _, _ in taken))

    def _finished(self, indices: Iterable[int]) -> list[FileResult]:
        out = []
        for index in indices:
            state = self.files.get(index)
            if state is None or state.duration is None or state.queued:
                continue
            del self.files[index]
            out.append(state.rows.finish(index, state.duration))  # rows arrive in window order: a file's blocks do
        return out


def score_files(
    scorer,
    paths: Sequence[Pathlike],
    *,
    labels: LabelSet | None = None,
    spec: WindowSpec | None = None,
    batch_size: int = 32,
    workers: int = 0,
    start_method: str = "spawn",
    eager: bool = True,
    on_start: Callable[[str], None] | None = None,
    width: int | None = None,
    sink: Callable[[int, str], Any] | None = None,
) -> Iterator[FileResult]:
    """Score every window of every file; yield each file as soon as it is complete.

    Windows are batched across file boundaries: a scorer call takes ``batch_size`` rows (with TTA, each
    shift of a window is a row) whichever files they come from. Scores of a file come back in window order.
    A file that fails is yielded with its reason and the others go on.

    Args:
        scorer: a :class:`~birdcall.infer.scorer.Scorer` (or any callable ``(B, N) -> (B, C)`` when
            ``labels`` and ``spec`` are given).
        paths: the audio files.
        labels: the scorer's species (None: ``scorer.labels``).
        spec: how to cut windows (None: the scorer's sample rate and clip duration, no overlap, no TTA).
        batch_size: rows per scorer call.
        workers: decoding processes (0: decode in a background thread of this process, one step ahead of the scorer).
        start_method: ``multiprocessing`` start method of the workers (``spawn`` or ``forkserver``).
        eager: with ``workers=0``, score the windows already cut (a partial batch) whenever no decoded audio is
            waiting, so the model does not sit idle while a full batch is decoded (at the start of a run, say).
            Scores do not depend on it; False gives full batches only (a fixed batch composition).
        on_start: called with a file's path when its decoding starts: with ``workers=0`` in the decoding
            thread before the file's first block is decoded (it may run while this generator is suspended);
            with workers, in this process when a worker reports starting the file. An exception it raises
            ends the iteration.
        width: values per window the scorer returns (None: ``len(labels)``); an embedder's ``dim``, say.
        sink: ``sink(index, path)`` makes the object that receives a file's rows as they are scored, in window
            order (``add(starts, values)``, ``finish(index, duration) -> FileResult``, ``discard()``; see
            ``_FrameRows``), instead of keeping them in memory for ``FileResult.scores``: memory then stays flat
            however long the file (``run_inference(kind="embeddings")`` streams each file into its part).

    Yields:
        :class:`FileResult` in completion order (input order when ``workers == 0``).

    Raises:
        ParameterError: invalid arguments, or a scorer returning the wrong shape.
    """
    labels = labels if labels is not None else getattr(scorer, "labels", None)
    if not isinstance(labels, LabelSet) and (sink is None or width is None):
        raise ParameterError("score_files: the scorer has no LabelSet; pass labels= (or width= and sink=)")
    if spec is None:
        features = scorer.features
        spec = WindowSpec(features.sample_rate, features.clip_duration, pad=features.pad)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ParameterError(f"workers must be an integer >= 0, got {workers!r}")
    per_batch = spec.windows_per_batch(batch_size)
    paths = list(paths)
    if workers == 0:
        events = _prefetched(_local_events(paths, spec, per_batch, on_start), depth=2, idle=IDLE if eager else None)
    else:
        events = _parallel_events(paths, spec, per_batch, int(workers), start_method)
    batcher = _Batcher(scorer, paths, labels if isinstance(labels, LabelSet) else None, spec, per_batch, width=width, sink=sink)
    try:
        for event in events:
            if workers and on_start is not None and event[0] == "start":
                on_start(str(paths[event[1]]))
            yield from batcher.feed(event)
        yield from batcher.close()
    finally:
        batcher.abort()
        events.close()


# ------------------------------------------------------------------------------------------------ on disk


@dataclass(frozen=True)
class DetectionOptions:
    """What :func:`~birdcall.infer.detections.to_detections` keeps of each file's scores."""

    min_confidence: float = 0.1
    top_k: int | None = None
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("include", "exclude"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(str(c) for c in value))

    def kwargs(self) -> dict:
        return {"min_confidence": self.min_confidence, "top_k": self.top_k, "include": self.include, "exclude": self.exclude}


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

    def line(self) -> str:
        """``"N files, M windows, K skipped"``."""
        return f"{self.files} files, {self.windows} windows, {self.skipped} skipped"


def state_dir(out: Pathlike, kind: str) -> Path:
    """Where a run keeps run.json, plans, manifests and parts: ``out`` itself for ``detections``; for
    ``submission``, ``embeddings`` and ``scores`` (``out`` is the CSV or the Parquet file) the hidden folder
    ``.<name>.parts`` next to it."""
    _check_kind(kind)
    out = Path(out)
    return out if kind == "detections" else out.parent / f".{out.name}.parts"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ParameterError(f"kind must be one of {KINDS}, got {kind!r}")


def _shard_name(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}"


def _manifest_name(index: int, count: int) -> str:
    return "manifest.jsonl" if count == 1 else f"manifest.{_shard_name(index, count)}.jsonl"


def _safe_stem(file: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(file).stem)[:60] or "file"


def _key_hash(file: str, n: int) -> str:
    return hashlib.sha1(file.encode("utf-8", "surrogateescape")).hexdigest()[:n]


def _part_name(file: str) -> str:
    return f"parts/{_safe_stem(file)}-{_key_hash(file, 16)}.parquet"


def _output_stems(files: Sequence[str]) -> dict[str, str]:
    """Per-file output names: the stem, plus ``-<hash>`` for stems shared by several inputs."""
    counts = Counter(Path(f).stem for f in files)
    return {f: Path(f).stem if counts[Path(f).stem] == 1 else f"{Path(f).stem}-{_key_hash(f, 8)}" for f in files}


def _check_names(files: Sequence[Path]) -> None:
    """Refuse file names that are not valid UTF-8 (undecodable bytes): no manifest, Parquet or CSV can hold them."""
    for file in files:
        try:
            str(file).encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(file).decode("utf-8", "backslashreplace")
            raise ParameterError(f"{shown}: the file name is not valid UTF-8, so the output tables cannot name it; rename the file") from None


def _check_row_ids(files: Sequence[Pathlike]) -> None:
    """Refuse inputs whose BirdCLEF row ids (``<stem>_<end second>``) would repeat: two files with one stem."""
    by_stem: dict[str, list[str]] = {}
    for file in files:
        by_stem.setdefault(Path(file).stem, []).append(str(file))
    clashes = sorted((stem, group) for stem, group in by_stem.items() if len(group) > 1)
    if clashes:
        stem, group = clashes[0]
        more = f" (and {len(clashes) - 1} more shared stem(s))" if len(clashes) > 1 else ""
        raise ParameterError(
            f"inputs share the file name {stem!r}: {', '.join(group)}{more}; their submission row_ids "
            "(<stem>_<end second>) would repeat: rename the files, or write them to separate submissions"
        )


def _check_out(out: Path, kind: str) -> None:
    """Refuse an ``out`` that cannot be written, before any work: the submission CSV naming a folder, the
    output folder naming a file, or a place under a file or a folder without write permission."""
    out = Path(os.path.abspath(out))
    if kind != "detections":
        if out.is_dir():
            what = {"submission": "the submission is a CSV file", "embeddings": "the embeddings are a Parquet file",
                    "scores": "the scores are a Parquet file"}[kind]  # fmt: skip
            raise ParameterError(f"{out}: is a folder; {what} (give its file name)")
        folder = out.parent
    else:
        if out.exists() and not out.is_dir():
            raise ParameterError(f"{out}: exists and is not a folder (the output of a detections run is a folder)")
        folder = out
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise ParameterError(f"{out}: cannot be created, {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ParameterError(f"{out}: cannot write into {existing} (permission denied)")


def _check_parts_folder(state: Path) -> None:
    parts = state / "parts"
    if parts.is_symlink() or (parts.exists() and not parts.is_dir()):
        raise ParameterError(f"{parts}: must be a real folder (not a symlink or a file); birdcall reads and writes parts only there")


@contextlib.contextmanager
def _in_use(state: Path, temporaries: Sequence[tuple[Path, str | None]] = ()) -> Iterator[None]:
    """Mark ``state`` as in use (a shared lock on ``state/.running``) while a run, merge or combine writes into
    it. With ``temporaries`` (``(folder, name)`` pairs, :func:`~birdcall.fileio.remove_stale_temporaries`),
    the first user, the one that finds nobody else inside, first removes the temporaries a killed run left
    there: with nobody else inside, no atomic write is in progress, so every such file is stale."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cleaning (nothing tells a live temporary from a stale one)
        yield
        return
    with _writing(state):
        state.mkdir(parents=True, exist_ok=True)
        handle = open(state / ".running", "a+")  # noqa: SIM115 - closed by the with below
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)  # others are at work: their temporaries may be live
        else:
            for folder, name in temporaries:
                remove_stale_temporaries(folder, name=name)
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _temporary_folders(out: Path, kind: str) -> list[tuple[Path, str | None]]:
    """Where the atomic writes of a run into ``out`` put their temporaries (``name``: only that file's)."""
    state = state_dir(out, kind)
    folders: list[tuple[Path, str | None]] = [(state, None), (state / "parts", None), (state / "plans", None)]
    if kind == "detections":
        folders += [(out / "raven", None), (out / "audacity", None)]
    else:
        folders.append((out.parent, out.name))  # the CSV's folder is the user's: only the CSV's temporaries
    return folders


@contextlib.contextmanager
def _locked(path: Path, *, wait: bool = True, busy: str = "") -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (fcntl; a no-op where it does not exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with _writing(path, hint=""):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - closed by the with below
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ParameterError(busy or f"{path}: locked by another process") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class _Manifest:
    """Append-only JSON-lines record of the files of a run; every line is flushed and fsynced. Thread-safe
    (``started`` records come from the decoding thread)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        self.handle = open(path, "ab")
        self.lock = threading.Lock()
        if new:
            fsync_dir(path.parent)
        elif path.stat().st_size:
            with open(path, "rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":  # a line torn by a kill: start ours on a fresh line
                    self.handle.write(b"\n")

    def append(self, record: dict) -> None:
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self.lock:
            self.handle.write(data)
            self.handle.flush()
            os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


_PART = re.compile(r"parts/([^/\\\x00]+\.parquet)")


def _part_path(state: Path, part: object) -> Path | None:
    """The file a ``done`` record's ``part`` names, or None when it is not ``parts/<name>.parquet`` inside ``state``.

    The one check of every reader and writer of parts (:func:`_read_records`, :func:`combine_outputs`, the
    resume of :func:`run_inference`, :func:`merge_outputs` for its source and its target): a manifest line
    is data, maybe crafted, and ``part`` must never lead outside ``<state>/parts/``. The name must be plain
    (no separator, no NUL, hence neither absolute nor ``..``), and the path with every symlink resolved must
    still lie directly in ``<state>/parts`` (so a symlinked ``parts`` folder or part file is refused as well).
    """
    if not isinstance(part, str):
        return None
    match = _PART.fullmatch(part)
    if match is None:
        return None
    path = state / "parts" / match.group(1)
    try:
        inside = path.resolve().parent == state.resolve() / "parts"
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an unreadable folder
        return None
    return path if inside else None


def _parse_record(line: str) -> dict | None:
    """A manifest line as a dict with a string ``status`` (and, when present, a string ``file`` without NUL); else None."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("status"), str):
        return None
    file = record.get("file")
    if file is not None and (not isinstance(file, str) or "\x00" in file):
        return None
    return record


def _manifest_lines(manifest: Path) -> list[str]:
    """The lines of a manifest: split on newlines only (``str.splitlines`` would also split a file name at the
    U+0085, U+2028 or U+2029 that ``json.dumps(..., ensure_ascii=False)`` leaves unescaped)."""
    return manifest.read_text(encoding="utf-8", errors="replace").split("\n")


def _printable(text: str) -> str:
    return text if text.isprintable() else repr(text)[1:-1]


def _warn_corrupt(manifest: Path, number: int, record: dict, what: str) -> None:
    warnings.warn(
        f"{manifest}, line {number}: corrupt record skipped (part {record.get('part')!r} is not "
        f"parts/<name>.parquet inside this folder); {_printable(str(record.get('file')))} {what}",
        RunStateWarning,
        stacklevel=3,
    )


def _read_records(state: Path) -> dict[str, dict]:
    """The record of every file in every manifest of ``state``: a ``done`` record beats a ``failed`` one,
    a later line beats an earlier one; torn or foreign lines are ignored; a ``done`` record whose part is
    gone does not count.

    A ``done`` record whose ``part`` is not a part of this folder (:func:`_part_path`) is corrupt: it is skipped
    and, unless a later valid record of its file supersedes it, reported with a :class:`RunStateWarning`
    naming the manifest and line. Its file then counts as not processed, so a run scores it again.
    """
    records: dict[str, dict] = {}
    for manifest in sorted(state.glob("manifest*.jsonl")):
        corrupt: dict[str, tuple[int, dict]] = {}  # file -> its last corrupt record not superseded since
        for number, line in enumerate(_manifest_lines(manifest), 1):
            record = _parse_record(line)
            if record is None or record.get("file") is None or record["status"] not in ("done", "failed"):
                continue
            if record["status"] == "done":
                part = _part_path(state, record.get("part"))
                if part is None:
                    corrupt[record["file"]] = (number, record)
                    continue
                corrupt.pop(record["file"], None)
                if not part.is_file():
                    continue
            corrupt.pop(record["file"], None)
            old = records.get(record["file"])
            if old is None or record["status"] == "done" or old["status"] == "failed":
                records[record["file"]] = record
        for number, record in corrupt.values():
            _warn_corrupt(manifest, number, record, "counts as not processed (a run scores it again)")
    return records


def _deaths(manifest: Path) -> Counter:
    """How many runs recorded in ``manifest`` died while processing each file.

    A run died if it left ``started`` records with no ``done``/``failed`` record of their file after them and
    no ``stopped`` record of its own; the last of them is the file it was decoding when it died (the decoder
    runs ahead of the model), so that file, and only that one, is counted for the run.
    """
    if not manifest.is_file():
        return Counter()
    started: list[tuple[int, str, str]] = []  # (line, file, run) of the started records not finished since
    stopped: set[str] = set()
    for number, line in enumerate(_manifest_lines(manifest)):
        record = _parse_record(line)
        if record is None:
            continue
        status, file, run = record["status"], record.get("file"), str(record.get("run"))
        if status == "started" and file is not None:
            started.append((number, file, run))
        elif status in ("done", "failed") and file is not None:
            started = [entry for entry in started if entry[1] != file]
        elif status == "stopped":
            stopped.add(run)
    last: dict[str, tuple[int, str]] = {}
    for number, file, run in started:
        if run not in stopped and number > last.get(run, (-1, ""))[0]:
            last[run] = (number, file)
    return Counter(file for _, file in last.values())


def _read_plans(state: Path) -> dict[tuple[int, int], list[str]]:
    plans = {}
    for path in sorted((state / "plans").glob("shard-*-of-*.json")):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            plan = json.loads(path.read_text(encoding="utf-8"))
            plans[(int(plan["shard"][0]), int(plan["shard"][1]))] = [str(f) for f in plan["files"] if "\x00" not in str(f)]
    return plans


def _settings_diff(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if k != "created" and old.get(k) != new.get(k))


def _check_or_write_settings(state: Path, settings: dict) -> None:
    path = state / "run.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        differ = _settings_diff(old, settings)
        if differ:
            raise ParameterError(
                f"{state}: holds the results of a run with other settings (different {', '.join(differ)}); "
                "use another output folder, or delete it to start over"
            )
        return
    atomic_write_text(path, json.dumps(settings, indent=2) + "\n")


def _empty_scores(codes: Sequence[str]) -> pd.DataFrame:
    index = pd.MultiIndex.from_arrays([pd.array([], dtype="str"), np.zeros(0), np.zeros(0)], names=_INDEX)
    return pd.DataFrame(np.zeros((0, len(codes)), dtype=np.float32), index=index, columns=list(codes))


def _write_part(state: Path, file: str, frame: pd.DataFrame, kind: str) -> str:
    name = _part_name(file)
    path = state / name
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "detections":
            from .writers import write_detections_parquet

            write_detections_parquet(frame, path)  # atomic: the folder is fsynced after the rename
        else:
            with atomic_path(path) as tmp:
                frame.reset_index().to_parquet(tmp, engine="pyarrow", index=False)
    return name


class _Discarded(Exception):
    """Thrown into a part's atomic write to drop its temporary (the file failed, or the run stopped)."""


class _EmbeddingPart:
    """The sink (:func:`score_files`) of an ``embeddings`` run: streams a file's vectors into its part as they are
    computed (:class:`~birdcall.infer.embeddings.EmbeddingWriter`; memory: one row group, however long the file).

    The part is written under a temporary name and renamed when the file is finished (so a part is always
    complete, and recorded only after that); a failed file's temporary is deleted, and one that a killed run
    left is removed by the next run (``_temporary_folders`` lists ``parts/``).
    """

    def __init__(self, state: Path, path: str, spec: WindowSpec, dim: int):
        from .embeddings import EmbeddingWriter

        self.path, self.spec, self.name = path, spec, _part_name(path)
        self.dest = state / self.name
        with _writing(self.dest):
            self._target = atomic_path(self.dest)  # entered here, left in finish() or discard()
            tmp = self._target.__enter__()
            try:
                self._writer = EmbeddingWriter(tmp, dim)
            except BaseException as err:
                self._target.__exit__(type(err), err, None)
                raise

    def add(self, starts: np.ndarray, values: np.ndarray) -> None:
        start_times = np.asarray(starts, dtype=np.float64) / self.spec.sample_rate
        with _writing(self.dest):
            self._writer.write(self.path, start_times, start_times + self.spec.clip_samples / self.spec.sample_rate, values)

    def finish(self, index: int, duration: float) -> FileResult:
        target, self._target = self._target, None
        with _writing(self.dest):
            try:
                self._writer.close()
            except BaseException as err:
                target.__exit__(type(err), err, None)
                raise
            target.__exit__(None, None, None)  # fsync, rename onto the part, fsync the folder
        return FileResult(index, self.path, None, None, duration, part=self.name, rows=self._writer.rows)

    def discard(self) -> None:
        target, self._target = self._target, None
        if target is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            err = _Discarded()
            target.__exit__(type(err), err, None)  # deletes the temporary; returns without raising


# ------------------------------------------------------------------------------------------------ the run


def run_inference(
    model: Any,
    inputs: Sequence[Pathlike],
    out: Pathlike,
    *,
    kind: str = "detections",
    shard: tuple[int, int] | str | None = None,
    workers: int = 0,
    batch_size: int = 32,
    hop: float | None = None,
    tta_shifts: Sequence[float] = (0.0,),
    postprocess=None,
    detection: DetectionOptions | None = None,
    backend: str | None = None,
    threads: int | None = None,
    streams: int | None = None,
    frontend: str = "auto",
    retry_failed: bool = False,
    show_progress: bool = False,
    model_id: str | None = None,
    chunk_duration: float = 30.0,
    start_method: str = "spawn",
    birdnet=None,
) -> RunSummary:
    """Score ``inputs`` with ``model`` into ``out``, resumably; see the module docstring for the layout.

    Args:
        model: anything :func:`open_model` opens (a path, a run folder, a list of them, or a Scorer object); for ``embeddings``,
            anything :func:`open_embedder` opens (``"birdnet"``, a checkpoint, or an Embedder object).
        inputs: audio files and folders (:func:`discover_inputs`).
        out: the output folder (``detections``), the submission CSV (``submission``), the embeddings Parquet
            file (``embeddings``; :mod:`birdcall.infer.embeddings`) or the scores Parquet file (``scores``;
            :func:`~birdcall.infer.writers.read_scores_parquet` reads it).
        kind: ``"detections"`` (``birdcall analyze``), ``"submission"`` (``birdcall predict``), ``"embeddings"``
            (``birdcall embed``: one vector per window, each file streamed into its part as it is computed) or
            ``"scores"`` (the submission's window scores keyed by file path and times, in Parquet).
        shard: ``(I, N)`` or ``"I/N"``: run only shard I of N (:func:`select_shard`).
        workers: decoding processes (0: a decoding thread in this process).
        batch_size: rows per scorer call (each TTA shift of a window is a row).
        hop: seconds between window starts (None: the clip duration).
        tta_shifts: time shifts (s) averaged per window; ``(0.0,)`` is no TTA.
        postprocess: a :class:`~birdcall.infer.postprocess.PostprocessConfig` applied to each file's scores.
        detection: thresholds and species filters (``detections`` only; None: the defaults).
        backend: scorer backend (None: from the model's suffix).
        threads: backend intra-op threads.
        streams: OpenVINO CPU streams, each scorer call's batch split across them (openvino backend only).
        frontend: where an exported model computes its STFT (:func:`open_model`); the scores agree to 1e-4.
        retry_failed: redo files an earlier run recorded as failed.
        show_progress: a progress bar (files, hours of audio, speed).
        model_id: identifies a Scorer object in run.json (a model path is identified by its bytes).
        chunk_duration: seconds decoded at a time. The decoder runs up to a few chunks ahead of the model, so
            this sets the memory in flight: 30 s kept peak RSS at 316-320 MB on a 10-min and a 60-min file in
            every run (mobilenetv3_large, OpenVINO), where 60 s gave 314-362 and 352-370 MB, as the decoder got
            ahead or not; speed was the same within noise (efficientnet_b0) or up to ~5 % lower (mobilenetv3).
        start_method: ``multiprocessing`` start method of the workers.
        birdnet: ``embeddings`` with ``model="birdnet"`` only: a :class:`~birdcall.birdnet.BirdNetFeatureConfig`
            (None: its defaults).

    Returns:
        A :class:`RunSummary`.

    Raises:
        ParameterError: a missing input, invalid options (for ``embeddings``: TTA, post-processing, detection
            options or a backend other than torch), an ``out`` that cannot be written (a folder for the
            submission CSV, a file for the output folder, no write permission), an output folder holding
            another run's results, the same shard already running into it, or (``submission``) inputs
            sharing a file stem, whose row ids would repeat; all before anything is scored.
        CheckpointError: the model cannot be opened.
        MissingExtraError: ``embeddings`` of ``"birdnet"`` without the BirdNET extra.
        OutputWriteError: writing a part, a manifest line or an output failed (disk full, say); the files
            finished before are kept and a rerun resumes.
    """
    _check_kind(kind)
    _check_out(Path(out), kind)
    shard_index, shard_count = parse_shard(shard)
    all_files = discover_inputs(inputs)
    _check_names(all_files)
    if kind == "submission":
        _check_row_ids(all_files)  # all shards: the submission holds them all
    files = [str(p) for p in select_shard(all_files, (shard_index, shard_count))]
    if kind == "embeddings":
        scorer, spec, settings = _open_embeddings(
            model, birdnet=birdnet, model_id=model_id, hop=hop, tta_shifts=tta_shifts, chunk_duration=chunk_duration, batch_size=batch_size,
            backend=backend, threads=threads, streams=streams, frontend=frontend, postprocess=postprocess, detection=detection,
        )
        labels = None
    else:
        scorer = open_model(model, backend=backend, threads=threads, streams=streams, frontend=frontend)
        labels = getattr(scorer, "labels", None)
        if not isinstance(labels, LabelSet):
            raise ParameterError(f"{model}: the scorer carries no LabelSet (species codes)")
        clash = sorted(set(labels.codes) & set(_INDEX))
        if clash:
            raise ParameterError(f"species codes {clash} clash with the prediction table's index names")
        features = scorer.features
        spec = WindowSpec(features.sample_rate, features.clip_duration, hop, tuple(tta_shifts), "pad", chunk_duration, features.pad)
        spec.windows_per_batch(batch_size)  # validate before any work
        if kind == "detections":
            detection = detection or DetectionOptions()
            from .detections import to_detections

            to_detections(_empty_scores(labels.codes), labels=labels, **detection.kwargs())  # validates codes and thresholds
        else:
            detection = None
        if postprocess is not None:
            from .postprocess import PostprocessConfig

            if not isinstance(postprocess, PostprocessConfig):
                raise ParameterError(f"postprocess must be a PostprocessConfig, got {type(postprocess).__name__}")

        settings = {
            "format": _FORMAT,
            "kind": kind,
            "model": _model_digest(model, model_id),
            "backend": _effective_backend(model, backend),
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
    settings = json.loads(json.dumps(settings))  # tuples -> lists, as read back
    state = state_dir(out, kind)
    with _writing(state):
        state.mkdir(parents=True, exist_ok=True)
    _check_parts_folder(state)
    name = _shard_name(shard_index, shard_count)
    manifest = state / _manifest_name(shard_index, shard_count)
    busy = f"{state}: shard {shard_index}/{shard_count} is already running into this folder"
    with _in_use(state, _temporary_folders(Path(out), kind)):
        with _locked(state / f".{name}.lock", wait=False, busy=busy):
            with _locked(state / ".lock"), _writing(state):
                _check_or_write_settings(state, settings)
                atomic_write_text(state / "plans" / f"{name}.json", json.dumps({"shard": [shard_index, shard_count], "files": files}, indent=1) + "\n")
            records = _read_records(state)
            todo = [f for f in files if f not in records or (retry_failed and records[f]["status"] == "failed")]
            resumed = len(files) - len(todo)
            todo = _drop_killers(todo, manifest)
            _run_todo(scorer, todo, state=state, manifest=manifest, kind=kind, labels=labels,
                      spec=spec, batch_size=batch_size, workers=workers, start_method=start_method, postprocess=postprocess,
                      detection=detection, show_progress=show_progress, description=_DESCRIPTIONS[kind])
        combined = combine_outputs(out, kind=kind)
    records = _read_records(state)
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
    )


def _open_embeddings(model: Any, *, birdnet, model_id: str | None, hop: float | None, tta_shifts: Sequence[float], chunk_duration: float,
                     batch_size: int, backend: str | None, threads: int | None, streams: int | None, frontend: str, postprocess,
                     detection) -> tuple[Any, WindowSpec, dict]:
    """The embedder, window spec and run settings of an ``embeddings`` run; options that do not apply are refused."""
    if tuple(float(t) for t in tta_shifts) != (0.0,):
        raise ParameterError("embeddings take no TTA shifts (a vector per window, not an average of shifted ones)")
    for name, value in (("postprocess", postprocess), ("detection", detection), ("streams", streams)):
        if value is not None:
            raise ParameterError(f"{name} does not apply to embeddings")
    if backend not in (None, "torch") or frontend != "auto":
        raise ParameterError("embeddings run on torch (a birdcall checkpoint) or LiteRT (BirdNET); no backend or frontend to choose")
    embedder = open_embedder(model, birdnet=birdnet, threads=threads)
    spec = WindowSpec(int(embedder.sample_rate), float(embedder.clip_duration), hop, (0.0,), "pad", chunk_duration, embedder.pad)
    spec.windows_per_batch(batch_size)  # validate before any work
    settings = {
        "format": _FORMAT,
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


def _drop_killers(todo: list[str], manifest: Path) -> list[str]:
    """``todo`` without the files that killed :data:`_DEATHS` runs (recorded as failed in ``manifest`` now);
    a file that killed one run stays, with a warning (see the module docstring)."""
    deaths = _deaths(manifest)
    killers = [f for f in todo if deaths[f] >= _DEATHS]
    for file in todo:
        if 0 < deaths[file] < _DEATHS:
            warnings.warn(f"{_printable(file)}: the previous run died while processing this file; trying it once more",
                          RunStateWarning, stacklevel=3)
    if killers:
        with _writing(manifest):
            writer = _Manifest(manifest)
            try:
                for file in killers:
                    writer.append({"file": file, "status": "failed", "reason": _DIED_TWICE})
            finally:
                writer.close()
    return [f for f in todo if deaths[f] < _DEATHS]


def _run_todo(scorer, todo: list[str], *, state: Path, manifest: Path, kind: str, labels: LabelSet | None, spec: WindowSpec, batch_size: int,
              workers: int, start_method: str, postprocess, detection: DetectionOptions | None, show_progress: bool, description: str) -> None:
    from ..progress import make_progress

    if not todo:
        return  # a rerun with nothing to do adds nothing to the manifest
    if postprocess is not None:
        from .postprocess import postprocess as apply_postprocess
    if kind == "detections":
        from .detections import to_detections
    with _writing(manifest):
        record = _Manifest(manifest)
    run = secrets.token_hex(8)

    def on_start(path: str) -> None:  # before the file's first block is decoded (see _deaths)
        with _writing(manifest):
            record.append({"file": path, "status": "started", "run": run})

    streamed = {}
    if kind == "embeddings":  # each file's vectors go straight into its part (memory flat in file length)
        streamed = {"width": scorer.dim, "sink": lambda index, path: _EmbeddingPart(state, path, spec, scorer.dim)}
    started = time.perf_counter()
    audio = 0.0
    try:
        with make_progress(disable=not show_progress) as progress:
            task = progress.add_task(description, total=len(todo), rate="")
            for result in score_files(scorer, todo, labels=labels, spec=spec, batch_size=batch_size, workers=workers,
                                      start_method=start_method, on_start=on_start, **streamed):
                if result.ok and result.part is not None:
                    with _writing(manifest):
                        record.append({"file": result.path, "status": "done", "part": result.part, "windows": result.num_windows,
                                       "duration": result.duration, "rows": result.num_windows})
                elif result.ok:
                    frame = result.scores
                    if postprocess is not None:
                        frame = apply_postprocess(frame, postprocess)
                    if kind == "detections":
                        frame = to_detections(frame, labels=labels, **detection.kwargs())
                    part = _write_part(state, result.path, frame, kind)
                    with _writing(manifest):
                        record.append({"file": result.path, "status": "done", "part": part, "windows": result.num_windows,
                                       "duration": result.duration, "rows": len(frame)})
                else:
                    with _writing(manifest):
                        record.append({"file": result.path, "status": "failed", "reason": result.reason})
                audio += result.duration
                elapsed = max(time.perf_counter() - started, 1e-9)
                amount = f"{audio / 3600:.2f} h" if audio >= 3600 else f"{audio / 60:.1f} min"
                progress.update(task, advance=1, rate=f"{amount} audio, {audio / elapsed:.0f}x real time")
    except BaseException:
        # Stopped by an exception we see (Ctrl-C, a reported error): not a death, whatever files were in flight.
        with contextlib.suppress(Exception):
            record.append({"status": "stopped", "run": run})
        raise
    finally:
        record.close()


# ------------------------------------------------------------------------------------------------ combining


def combine_outputs(out: Pathlike, *, kind: str = "detections") -> dict:
    """Rebuild the combined outputs from every record and part in the state folder of ``out``.

    Only files of the current plans count (a file dropped from the inputs of a rerun drops out); each file
    contributes its one part, files in sorted order.

    Returns:
        ``{"outputs": paths written, "complete": bool, "missing": what is incomplete, "files": planned files,
        "windows": windows of the finished ones, "skipped": failed files}``.

    Raises:
        ParameterError: no run has been recorded there.
        OutputWriteError: an output could not be written (disk full, say).
    """
    _check_kind(kind)
    out = Path(out)
    state = state_dir(out, kind)
    if not (state / "run.json").is_file():
        raise ParameterError(f"{state}: no birdcall run here (run.json not found)")
    with _in_use(state), _locked(state / ".lock"):
        settings = json.loads((state / "run.json").read_text(encoding="utf-8"))
        if settings.get("kind") != kind:
            raise ParameterError(f"{state}: holds a {settings.get('kind')!r} run, not {kind!r}")
        plans = _read_plans(state)
        records = _read_records(state)
        planned = sorted({f for files in plans.values() for f in files})
        done = [f for f in planned if f in records and records[f]["status"] == "done"]
        failed = [f for f in planned if f in records and records[f]["status"] == "failed"]
        missing = _missing(plans, planned, records)
        parts = [_part_path(state, records[f]["part"]) for f in done]  # _read_records checked the parts
        errors = pd.DataFrame({"file": pd.array(failed, dtype="str"), "reason": pd.array([records[f].get("reason", "") for f in failed], dtype="str")})
        from ..fileio import atomic_to_csv

        if kind == "embeddings":  # part after part: memory holds one row group, not the table
            outputs = _write_embeddings(out, parts, settings)
            errors_csv = state / "errors.csv"
        elif kind in ("submission", "scores"):
            frames = [pd.read_parquet(part) for part in parts]
            outputs = (_write_submission if kind == "submission" else _write_scores)(out, frames, settings)
            errors_csv = state / "errors.csv"
        else:
            frames = [pd.read_parquet(part) for part in parts]
            outputs = _write_detections(out, frames, done, records, settings, stems=_output_stems(planned))
            errors_csv = out / "errors.csv"
        with _writing(errors_csv):
            outputs.append(atomic_to_csv(errors, errors_csv))
    return {
        "outputs": tuple(outputs),
        "complete": not missing,
        "missing": tuple(missing),
        "files": len(planned),
        "windows": sum(int(records[f].get("windows", 0)) for f in done),
        "skipped": len(failed),
    }


def _missing(plans: dict[tuple[int, int], list[str]], planned: list[str], records: dict[str, dict]) -> list[str]:
    if not plans:
        return ["no shard has run"]
    counts = sorted({n for _, n in plans})
    complete_counts = [n for n in counts if all((i, n) in plans for i in range(n))]
    missing = []
    if not complete_counts:
        n = counts[-1]
        missing += [f"shard {i}/{n}" for i in range(n) if (i, n) not in plans]
    unrecorded = sum(f not in records for f in planned)
    if unrecorded:
        missing.append(f"{unrecorded} file(s) not processed yet")
    return missing


def _write_submission(out: Path, frames: list[pd.DataFrame], settings: dict) -> list[Path]:
    from .writers import write_submission

    codes = settings["labels"]["codes"]
    scores = pd.concat(frames, ignore_index=True).set_index(_INDEX) if frames else _empty_scores(codes)
    with _writing(out):
        return [write_submission(scores.loc[:, codes], out)]


def _write_scores(out: Path, frames: list[pd.DataFrame], settings: dict) -> list[Path]:
    """The scores table ``out``: every part's windows in file order, the run's settings in its metadata."""
    from .writers import write_scores_parquet

    codes = settings["labels"]["codes"]
    scores = pd.concat(frames, ignore_index=True).set_index(_INDEX) if frames else _empty_scores(codes)
    with _writing(out):
        return [write_scores_parquet(scores.loc[:, codes], out, settings=settings)]


def _write_embeddings(out: Path, parts: list[Path], settings: dict) -> list[Path]:
    """The embedding table ``out``: every part's rows in file order, the run's settings in its metadata."""
    from .embeddings import EmbeddingWriter, iter_batches

    dim = int(settings["dim"])
    meta = {k: settings.get(k) for k in ("embedder", "sample_rate", "clip_duration", "hop", "final_clip", "pad", "model")}
    meta["hop"] = meta["hop"] if meta["hop"] is not None else meta["clip_duration"]  # seconds between window starts
    with _writing(out), atomic_path(out) as tmp:
        writer = EmbeddingWriter(tmp, dim, meta)
        try:
            for part in parts:
                for batch in iter_batches(part, dim):
                    writer.write_batch(batch)
        finally:
            writer.close()
    return [out]


def _write_detections(out: Path, frames: list[pd.DataFrame], done: list[str], records: dict[str, dict], settings: dict, *,
                      stems: dict[str, str]) -> list[Path]:
    from .detections import empty_detections
    from .writers import (
        write_audacity,
        write_detections_csv,
        write_detections_parquet,
        write_raven,
    )

    detections = pd.concat(frames, ignore_index=True) if frames else empty_detections()
    high_freq = settings.get("fmax")
    outputs = []
    for name, write in (("detections.csv", write_detections_csv), ("detections.parquet", write_detections_parquet)):
        with _writing(out / name):
            outputs.append(write(detections, out / name))
    for file, frame in zip(done, frames):
        raven, audacity = out / "raven" / f"{stems[file]}.selections.txt", out / "audacity" / f"{stems[file]}.txt"
        with _writing(raven):
            write_raven(frame, raven, high_freq=high_freq, combined=False)
        with _writing(audacity):
            write_audacity(frame, audacity)
    durations = {f: float(records[f].get("duration", 0.0)) for f in done}
    combined = out / COMBINED_RAVEN  # not in raven/, where an input named combined.* has its own table
    with _writing(combined):
        outputs.append(write_raven(detections, combined, high_freq=high_freq, combined=True, durations=durations))
    return outputs


def merge_outputs(out: Pathlike, sources: Sequence[Pathlike] = (), *, kind: str = "detections") -> dict:
    """Bring the shards that ran into other folders (``sources``) into ``out``, then :func:`combine_outputs`.

    Each source is an output folder (``detections``), a submission CSV or a state folder; its settings must
    equal those of ``out`` (which takes them when it has none). Plans, manifest lines and parts are copied.

    A ``done`` record whose ``part`` is not ``parts/<name>.parquet`` inside the source (or would not land
    inside the target's ``parts/``; :func:`_part_path`) is reported with a :class:`RunStateWarning` naming the
    source manifest and line, and neither it nor anything it names is copied: its file stays unprocessed in
    ``out`` (listed as missing), so a run into ``out`` scores it. Nothing is ever written outside ``out``.

    Returns:
        As :func:`combine_outputs`.

    Raises:
        ParameterError: a source without a run, or with other settings; ``out`` unusable (see :func:`run_inference`).
        OutputWriteError: writing into ``out`` failed (disk full, say).
    """
    _check_kind(kind)
    _check_out(Path(out), kind)
    target = state_dir(out, kind)
    sources = list(sources)
    for source in sources:
        source = Path(source)
        src = source if (source / "run.json").is_file() else state_dir(source, kind)
        if not (src / "run.json").is_file():
            raise ParameterError(f"{source}: no birdcall run here (run.json not found)")
    with _writing(target, hint=""):
        target.mkdir(parents=True, exist_ok=True)
    _check_parts_folder(target)
    with _in_use(target, _temporary_folders(Path(out), kind)):
        for source in sources:
            source = Path(source)
            src = source if (source / "run.json").is_file() else state_dir(source, kind)
            if src.resolve() == target.resolve():
                continue
            settings = json.loads((src / "run.json").read_text(encoding="utf-8"))
            with _locked(target / ".lock"):
                with _writing(target / "run.json", hint=""):
                    _check_or_write_settings(target, settings)
                for plan in sorted((src / "plans").glob("shard-*-of-*.json")):
                    text = plan.read_text(encoding="utf-8")
                    with _writing(target / "plans" / plan.name, hint=""):
                        atomic_write_text(target / "plans" / plan.name, text)
                for manifest in sorted(src.glob("manifest*.jsonl")):
                    _merge_manifest(manifest, src, target)
        return combine_outputs(out, kind=kind)


def _merge_manifest(manifest: Path, src: Path, target: Path) -> None:
    """Copy the parts and the records of a source ``manifest`` into ``target`` (lines it has already are
    skipped), except ``started``/``stopped`` records: which runs died is a matter of the folder they ran in."""
    lines = _manifest_lines(manifest)
    keep = []
    for number, line in enumerate(lines, 1):
        record = _parse_record(line) if line else None
        if record is None or record["status"] in ("started", "stopped"):  # a run's own bookkeeping, about its folder
            continue
        if record["status"] == "done":
            part, dest = _part_path(src, record.get("part")), _part_path(target, record.get("part"))
            if part is None or dest is None:
                _warn_corrupt(manifest, number, record, "is not merged")
                continue
            if part.is_file():
                with _writing(dest, hint=""), atomic_path(dest) as tmp:
                    shutil.copyfile(part, tmp)
        keep.append(line)
    existing = set(_manifest_lines(target / manifest.name)) if (target / manifest.name).is_file() else set()
    new = [line for line in keep if line not in existing]
    if new:
        with _writing(target / manifest.name, hint=""):
            writer = _Manifest(target / manifest.name)
            try:
                for line in new:
                    writer.append(json.loads(line))
            finally:
                writer.close()
