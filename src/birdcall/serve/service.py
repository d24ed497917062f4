"""The model side of `birdcall serve`: one model per process, analyses queued to a bounded pool of jobs.

:class:`ModelService` opens the model once (as ``birdcall analyze`` opens it) and runs each uploaded file through
the engine's own steps: :func:`~birdcall.infer.batching.score_file` (streaming decode, windows, scores),
:func:`~birdcall.infer.run.file_table` (the detection table ``analyze`` keeps of a file) and, for the tables,
the writers ``analyze`` uses. Nothing here imports fastapi (:mod:`birdcall.serve.app` is the HTTP side).

Concurrency: ``jobs`` analyses run at once in threads and share the scorer, one call at a time (a scorer is not
re-entrant); while one job's windows are scored another decodes. At most ``queue`` more wait; beyond that
:meth:`ModelService.submit` refuses at once (:class:`ServerBusy`) rather than pile up uploads. Every job checks
its deadline and its cancel flag before each model call and between decoded chunks, so a timed-out request
stops within one batch.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..audio import info as audio_info
from ..data.labels import LabelSet
from ..errors import AudioLoadError, BirdcallError
from ..infer.batching import score_file
from ..infer.detections import to_detections
from ..infer.location import (
    LocationOptions,
    SpeciesFilter,
    read_occurrence,
    species_filter,
)
from ..infer.models import ModelCard, is_scorer, model_card, open_scorer
from ..infer.outputs import empty_scores
from ..infer.run import DetectionOptions, WindowOptions, file_table
from ..infer.writers import write_detections_csv, write_raven
from .spectrogram import Spectrogram, spectrogram

__all__ = ["TABLE_FORMATS", "Analysis", "AnalysisCancelled", "AnalysisTimeout", "Job", "ModelService", "ServerBusy"]

TABLE_FORMATS = ("csv", "raven")
"""Tables an analysis can be returned as: ``analyze``'s ``detections.csv`` and its per-file Raven selection table."""


class ServerBusy(BirdcallError):
    """Every job and queue place is taken: the request is refused at once (HTTP 503)."""


class AnalysisTimeout(BirdcallError):
    """The request's deadline passed before its analysis ended (HTTP 504)."""


class AnalysisCancelled(BirdcallError):
    """The request was given up (timed out or the server is stopping) while its analysis ran."""


@dataclass(eq=False)
class Job:
    """One request's analysis: its deadline (``time.monotonic()`` seconds) and a flag that stops it."""

    deadline: float
    cancel: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        """Raise if the job must stop: cancelled, or past its deadline."""
        if self.cancel.is_set():
            raise AnalysisCancelled("the analysis was cancelled")
        if time.monotonic() > self.deadline:
            raise AnalysisTimeout("the request took longer than the server's time limit")


@dataclass(frozen=True)
class Analysis:
    """What one uploaded file gave.

    Attributes:
        name: the file's name as shown to the client (never a path on the server).
        duration: seconds of audio in the file (its header).
        windows: windows scored.
        detections: the detection table ``birdcall analyze`` keeps of the file (its ``file`` column is ``name``).
        elapsed: seconds from the start of the job to its end (queue wait excluded).
        spectrogram: the file's spectrogram, when asked for.
        tables: ``{"csv": ..., "raven": ...}`` text of the tables asked for, as ``analyze`` writes them.
    """

    name: str
    duration: float
    windows: int
    detections: pd.DataFrame
    elapsed: float
    spectrogram: Spectrogram | None = None
    tables: dict[str, str] = field(default_factory=dict)


class _SharedScorer:
    """The service's scorer as one job sees it: one call at a time across jobs, the job's deadline checked first."""

    def __init__(self, scorer, lock: threading.Lock, job: Job):
        self.scorer, self.lock, self.job = scorer, lock, job
        self.labels, self.features = scorer.labels, scorer.features

    def __call__(self, windows):
        self.job.check()
        with self.lock:
            self.job.check()
            return self.scorer(windows)


class ModelService:
    """A model opened once, and the bounded pool of jobs that analyse uploads with it.

    Args:
        model: anything ``birdcall analyze --model`` takes (a path), or a Scorer object (tests).
        backend, threads: as ``birdcall analyze``'s (None: its default, a checkpoint's cached OpenVINO export).
        jobs: analyses at once (threads sharing the model, one call at a time).
        queue: requests that may wait for a job; more are refused with :class:`ServerBusy`.
        batch_size: windows per model call.
        location: the server's species filter settings by place and season: the keys of
            :class:`~birdcall.infer.location.LocationOptions`, ``lat``/``lon``/``week`` None for no default filter
            (:meth:`location_filter` puts a request's over them); the occurrence table, if any, is read once here.

    Raises:
        ParameterError, CheckpointError: as :func:`~birdcall.infer.models.open_scorer`.
        ParameterError, DataError, MissingExtraError: ``location`` cannot be computed for the model's species.
    """

    def __init__(self, model: Any, *, backend: str | None = None, threads: int | None = None, jobs: int = 2, queue: int = 16, batch_size: int = 32,
                 location: dict | None = None):
        from ..infer.models import BackendWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BackendWarning)
            opened = open_scorer(model, backend=backend, threads=threads, auto_export=backend is None)
        self.warnings = tuple(" ".join(str(w.message).split()) for w in caught if issubclass(w.category, BackendWarning))
        self.scorer, self.backend, self.backend_note = opened
        self.labels: LabelSet = self.scorer.labels
        self.features = self.scorer.features
        if is_scorer(model):
            self.card = ModelCard(type(model).__name__, (), None, None, None, None)
        else:
            self.card = model_card(model)
            self.card = self.card._replace(files=tuple(_relative(f, Path(model)) for f in self.card.files))
        self.batch_size = int(batch_size)
        self.location = {"lat": None, "lon": None, "week": None, **(location or {})}
        occurrence = self.location.get("occurrence")
        self._occurrence = read_occurrence(occurrence) if occurrence else None
        # computed once: a bad default is refused at start, and a request that overrides nothing reuses it
        self._default_filter = self._species_filter(self.location)
        self.capacity = int(jobs) + int(queue)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=int(jobs), thread_name_prefix="birdcall-analyze")
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._count_lock = threading.Lock()
        self._running = 0
        self._admitted = 0
        self._jobs: set[Job] = set()

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def high_freq(self) -> float | None:
        """The upper edge of Raven boxes, as ``analyze`` writes them: the model's ``fmax`` (None: Raven's default)."""
        return float(getattr(self.features, "fmax", 0.0) or 0.0) or None

    def load(self) -> dict[str, int]:
        """``{"running": jobs analysing, "waiting": requests queued, "capacity": jobs + queue}``."""
        with self._count_lock:
            return {"running": self._running, "waiting": self._admitted - self._running, "capacity": self.capacity}

    def check_options(self, detection: DetectionOptions, hop: float | None) -> None:
        """Refuse bad options before any upload is read (the checks ``run_inference`` makes before scoring).

        Raises:
            ParameterError: one line naming the option.
        """
        WindowOptions(hop=hop).spec(self.features.sample_rate, self.features.clip_duration, self.features.pad)
        to_detections(empty_scores(self.labels.codes), labels=self.labels, **detection.kwargs())

    def location_filter(self, *, lat: float | None = None, lon: float | None = None, week: int | None = None,
                        mode: str | None = None) -> SpeciesFilter | None:
        """The species filter of one request: its ``lat``/``lon``/``week``/``mode`` over the server's defaults
        (a request's place without a week is all year; a week alone needs the server's place). None: no filter.

        Raises:
            ParameterError: a value out of range (one line naming it), or a week without a place.
            MissingExtraError: a place without an occurrence table and without the BirdNET extra.
        """
        if lat is None and lon is None and week is None and mode is None:
            return self._default_filter
        settings = dict(self.location)
        if lat is not None or lon is not None:  # the request's place: its week, or all year
            settings.update(lat=lat, lon=lon, week=week)
        elif week is not None:  # the request's week at the server's place
            settings.update(week=week)
        if mode is not None:
            settings.update(mode=mode)
        return self._species_filter(settings)

    def _species_filter(self, settings: dict) -> SpeciesFilter | None:
        """The filter of full location ``settings`` (the server's keys); None without a place."""
        if settings["lat"] is None and settings["lon"] is None and settings["week"] is None:
            return None  # no place: no filter
        options = LocationOptions(**{**settings, "week": -1 if settings["week"] is None else settings["week"]})
        return species_filter(options, self.labels, table=self._occurrence)

    def submit(self, path: Path, *, name: str, detection: DetectionOptions, hop: float | None, job: Job,
               with_spectrogram: bool = False, tables: tuple[str, ...] = (), location: SpeciesFilter | None = None) -> Future:  # fmt: skip
        """Queue the analysis of the audio file ``path`` (a file the server wrote; ``name`` is what clients see).

        Returns:
            A future of :class:`Analysis`; it raises ``AudioLoadError`` (naming ``name``), ``AnalysisTimeout``,
            ``AnalysisCancelled`` or ``ParameterError``.

        Raises:
            ServerBusy: no job or queue place is free.
        """
        if not self._slots.acquire(blocking=False):
            raise ServerBusy(f"the server is busy ({self.capacity} requests in progress); try again shortly")
        with self._count_lock:
            self._admitted += 1
            self._jobs.add(job)
        try:
            future = self._pool.submit(self._run, Path(path), name, detection, hop, job, with_spectrogram, tuple(tables), location)
        except RuntimeError:  # the pool is shut down: the server is stopping
            self._release(job)
            raise ServerBusy("the server is stopping") from None
        future.add_done_callback(lambda _: self._release(job))
        return future

    def _release(self, job: Job) -> None:
        with self._count_lock:
            self._admitted -= 1
            self._jobs.discard(job)
        self._slots.release()

    def close(self) -> None:
        """Stop: cancel the waiting requests and the running analyses, wait for the jobs to end."""
        with self._count_lock:
            for job in self._jobs:
                job.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, path: Path, name: str, detection: DetectionOptions, hop: float | None, job: Job, with_spectrogram: bool, tables: tuple[str, ...],
             location: SpeciesFilter | None = None) -> Analysis:  # fmt: skip
        with self._count_lock:
            self._running += 1
        try:
            job.check()
            started = time.perf_counter()
            try:
                return self._analyse(path, name, detection, hop, job, with_spectrogram, tables, started, location)
            except AudioLoadError as err:  # the server's file name means nothing to the client: name theirs
                raise AudioLoadError(name, err.cause) from None
        finally:
            with self._count_lock:
                self._running -= 1

    def _analyse(self, path: Path, name: str, detection: DetectionOptions, hop: float | None, job: Job, with_spectrogram: bool,
                 tables: tuple[str, ...], started: float, location: SpeciesFilter | None = None) -> Analysis:  # fmt: skip
        duration = audio_info(path).duration  # a file that is no audio fails here, before any decoding
        features = self.features
        spec = WindowOptions(hop=hop).spec(features.sample_rate, features.clip_duration, features.pad)
        scorer = _SharedScorer(self.scorer, self._lock, job)
        scores = score_file(scorer, path, spec, labels=self.labels, batch_size=self.batch_size)
        scores = scores.rename(index={str(path): name}, level="file")
        detections = file_table(scores, kind="detections", labels=self.labels, postprocess=None, detection=detection, location=location)
        picture = None
        if with_spectrogram:
            picture = spectrogram(path, sample_rate=features.sample_rate, fmax=self.high_freq or features.sample_rate / 2, check=job.check)
        texts = {fmt: self.table(detections, fmt, folder=path.parent) for fmt in tables}
        job.check()
        return Analysis(name, duration, len(scores), detections, time.perf_counter() - started, picture, texts)

    def table(self, detections: pd.DataFrame, fmt: str, *, folder: Path) -> str:
        """The text ``birdcall analyze`` writes for one file's ``detections``: ``csv`` as ``detections.csv``,
        ``raven`` as ``raven/<stem>.selections.txt`` (written by the same writers into ``folder``, read back)."""
        target = folder / f"table.{fmt}"
        if fmt == "csv":
            write_detections_csv(detections, target)
        elif fmt == "raven":
            write_raven(detections, target, high_freq=self.high_freq, combined=False)
        else:
            raise ValueError(f"unknown table format {fmt!r}")
        try:
            return target.read_text(encoding="utf-8")
        finally:
            with contextlib.suppress(OSError):
                target.unlink()


def _relative(file: str, model: Path) -> str:
    """A model file's path relative to the model the server was given (no server path is shown to clients)."""
    try:
        return str(Path(file).relative_to(model)) if model.is_dir() else Path(file).name
    except ValueError:
        return Path(file).name


def remove_folder(folder: Path) -> None:
    """Remove an upload's folder and everything in it; never raises."""
    shutil.rmtree(folder, ignore_errors=True)
