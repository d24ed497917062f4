"""The Ray engine of :func:`~birdcall.infer.run.run_inference` (``--engine ray``): the files to do scored by a pool of
Ray actors, everything else the local engine's own code.

Discovery, the settings check, plans, manifests, parts and the combined outputs stay
:mod:`birdcall.infer.run`'s and :mod:`birdcall.infer.run_state`'s: this module only replaces the loop over the files
to do (``_run_todo``). The driver (the process that runs the command) plans work units, hands them to actors, and
writes each finished file's part and manifest record through :mod:`birdcall.infer.run_state`, exactly as the local
engine does; so a Ray run killed half way is resumed by the next run of the same command with either engine, and
the combined outputs are byte-identical to a local run's (window scores do not depend on the batches they are in).

Work units
    A file, or, for a file longer than ``segment_duration`` (from its header), consecutive segments of
    ``segment_duration`` worth of windows (:func:`~birdcall.infer.batching.segment_rows`), the last one open-ended,
    so the window grid is the file's whatever the header says. An actor returns the unit's rows (window starts and
    scores, or embedding vectors); the driver holds a file's rows until its last unit is in, then post-processes
    them and writes its part (the local engine's :func:`~birdcall.infer.run.file_table`). Per actor, memory is one
    decoding chunk plus one unit's rows; in the driver, the manifest and the rows of the files in flight.

Why plain actors, not Ray Data
    Each actor opens the model once and scores units one after another, decoding in a thread while it scores
    (the local engine's decoding thread). The driver keeps at most :data:`DEPTH` units queued per actor (back-pressure:
    nothing is decoded or held ahead of the actors), knows which unit each actor was running, and so can tell a
    file that kills actors from one that was only queued behind it. Ray Data's ``map_batches`` would retry failed
    tasks blindly (a file that kills its actor would kill one after another) and would bring results back as
    blocks rather than per file, to be written by the driver anyway.

Failures
    A file that fails to decode is recorded as failed with the local engine's reason (:func:`~birdcall.infer.producers.failure`).
    An actor that dies (out of memory, a crash in native code, killed) is replaced; the unit it was running counts
    one death and is retried on another actor, the units queued behind it are resubmitted as they were. A unit that
    killed :data:`~birdcall.infer.run_state.DEATHS` actors fails its file ("killed N Ray actors"), instead of
    killing actors for ever. An error of the scorer itself (a wrong output shape) stops the run, as locally.
    The driver writes no ``started`` records: files do not run in its process, so they cannot kill it.

Ray is an optional extra (``pip install birdcall[ray]``, ``make ray``); this module imports without it, and
:func:`require_ray` raises the one-line :class:`~birdcall.errors.MissingExtraError`.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import is_int, is_number
from ..audio import info
from ..errors import MissingExtraError, ParameterError
from .batching import segment_rows
from .long_recording import WindowSpec, scores_frame
from .models import open_embedder, open_scorer
from .producers import failure
from .run_state import DEATHS, EmbeddingPart, Manifest, recording_run, write_part, writing

__all__ = ["DEPTH", "RayOptions", "connect", "require_ray", "run_ray"]

DEPTH = 2  # units submitted to an actor at a time: one running, one waiting (no round trip between units)
INSTALL = "pip install 'birdcall[ray]' (or make ray)"


def require_ray():
    """The ``ray`` module; :class:`~birdcall.errors.MissingExtraError` (one line naming the extra) without it."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError(f"--engine ray needs the optional extra ray, which is not installed: {INSTALL}") from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray engine runs; none of these change which windows are scored or their scores.

    Attributes:
        address: the Ray cluster to join (``"auto"``: the one ``ray start`` runs on this machine; ``ray://host:port``
            or ``host:port``); None starts a local Ray for the run (stopped at its end).
        num_actors: actors scoring in parallel (None: the cluster's CPUs divided by ``cpus_per_actor``).
        cpus_per_actor: CPUs each actor reserves; also its backend threads unless the engine names ``threads``.
        gpus_per_actor: GPUs each actor reserves (for a cluster whose scoring nodes have GPUs).
        segment_duration: seconds of windows per work unit of a longer file (None: whole files only).
        num_cpus: CPUs of the local Ray started when ``address`` is None (None: all of this machine's).
    """

    address: str | None = None
    num_actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    segment_duration: float | None = 3600.0
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        if self.num_actors is not None and (not is_int(self.num_actors) or self.num_actors < 1):
            raise ParameterError(f"num_actors must be an integer >= 1, got {self.num_actors!r}")
        for name in ("cpus_per_actor", "gpus_per_actor"):
            value = getattr(self, name)
            if not is_number(value) or not math.isfinite(value) or value < 0:
                raise ParameterError(f"{name} must be a number >= 0, got {value!r}")
        if self.segment_duration is not None and (not is_number(self.segment_duration) or not self.segment_duration > 0):
            raise ParameterError(f"segment_duration must be a number of seconds > 0, got {self.segment_duration!r}")


@contextlib.contextmanager
def connect(options: RayOptions) -> Iterator[Any]:
    """The ``ray`` module, connected: to ``options.address``, or to a local Ray started here and stopped on exit.
    A Ray already initialised in this process (a notebook, a test session) is used as it is and left running."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    import logging

    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    if options.address is None:
        kwargs["num_cpus"] = options.num_cpus
    ray.init(address=options.address, **kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()


# ------------------------------------------------------------------------------------------------ actors


@dataclass(frozen=True)
class ModelRecipe:
    """How an actor opens the driver's model: the same call with the same arguments (paths made absolute)."""

    model: Any
    kind: str
    backend: str | None = None
    threads: int | None = None
    streams: int | None = None
    frontend: str = "auto"
    auto_export: bool = False
    birdnet: Any = None

    def open(self):
        if self.kind == "embeddings":
            return open_embedder(self.model, birdnet=self.birdnet, threads=self.threads)
        return open_scorer(self.model, backend=self.backend, threads=self.threads, streams=self.streams, frontend=self.frontend,
                           auto_export=self.auto_export).scorer


def absolute_model(model: Any) -> Any:
    """``model`` with its paths made absolute (actors may run elsewhere); other objects as they are."""
    if isinstance(model, (list, tuple)):
        return [absolute_model(m) for m in model]
    if isinstance(model, (str, os.PathLike)) and str(model) != "birdnet" and Path(model).exists():
        return os.path.abspath(model)
    return model


@dataclass(frozen=True)
class Unit:
    """Windows ``first`` to ``stop - 1`` of the file ``path`` (``stop`` None: to its end); ``part`` of ``parts``."""

    path: str
    part: int
    parts: int
    first: int
    stop: int | None


@dataclass(frozen=True)
class UnitRows:
    """What an actor returns for a unit: its window starts and rows, or the reason its file failed."""

    starts: np.ndarray | None
    values: np.ndarray | None
    duration: float
    reason: str | None = None


class ScoringActor:
    """A Ray actor (made remote by :func:`run_ray`): the model opened once, then one unit after another."""

    def __init__(self, recipe: ModelRecipe, spec: WindowSpec, batch_size: int):
        self.scorer = recipe.open()
        self.spec, self.batch_size = spec, batch_size
        self.width = int(self.scorer.dim) if recipe.kind == "embeddings" else len(self.scorer.labels)

    def ready(self) -> int:
        return os.getpid()

    def score(self, unit: Unit) -> UnitRows:
        try:
            rows = segment_rows(self.scorer, unit.path, self.spec, unit.first, unit.stop, width=self.width, batch_size=self.batch_size,
                                prefetch=True)
        except ParameterError:
            raise  # the scorer's own error (a wrong output shape): stops the run, as locally
        except Exception as err:  # noqa: BLE001 - any failure of one file is that file's
            return UnitRows(None, None, 0.0, failure(err))
        return UnitRows(rows.starts, rows.values, rows.duration)


def plan_units(path: str, spec: WindowSpec, segment_duration: float | None) -> list[Unit]:
    """The units of one file: the whole file, or segments of ``segment_duration`` worth of windows when its header
    says it is longer (the last segment open-ended; an unreadable header gives one unit, which fails in an actor)."""
    if segment_duration is None:
        return [Unit(path, 0, 1, 0, None)]
    try:
        seconds = info(path).duration
    except Exception:  # noqa: BLE001 - the actor decodes it and reports why it fails
        return [Unit(path, 0, 1, 0, None)]
    per_unit = max(1, round(segment_duration * spec.sample_rate / spec.hop_samples))
    windows = int(seconds * spec.sample_rate) // spec.hop_samples + 1
    count = max(1, math.ceil(windows / per_unit))
    return [Unit(path, k, count, k * per_unit, (k + 1) * per_unit if k < count - 1 else None) for k in range(count)]


# ------------------------------------------------------------------------------------------------ driver


@dataclass
class _File:
    units: list[Unit]
    rows: dict[int, UnitRows]
    closed: bool = False


def run_ray(recipe: ModelRecipe, todo: Sequence[str], *, state: Path, manifest: Path, kind: str, spec: WindowSpec, codes: Sequence[str] | None,
            batch_size: int, options: RayOptions, table: Callable, show_progress: bool = False, description: str = "") -> None:
    """Score the files ``todo`` on Ray actors; write each one's part and manifest record (the local ``_run_todo``'s job).

    Args:
        recipe: how each actor opens the model.
        todo: the files to do, in order.
        state, manifest: the run's state folder and this shard's manifest.
        kind: the run's kind (:data:`~birdcall.infer.run_state.KINDS`).
        spec: the window grid.
        codes: the species codes (None for ``embeddings``).
        batch_size: rows per scorer call in an actor.
        options: where and how wide (:class:`RayOptions`).
        table: a file's window scores -> the table its part holds (:func:`~birdcall.infer.run.file_table`).
        show_progress, description: a progress bar and its label.

    Raises:
        MissingExtraError: Ray is not installed.
        OutputWriteError: a part or a manifest record could not be written.
        Exception: an actor could not open the model, or the scorer failed (not the file).
    """
    if not todo:
        return
    from ..progress import audio_rate, make_progress

    with connect(options) as ray, writing(manifest):
        record = Manifest(manifest)
        run = secrets.token_hex(8)
        pool = _Pool(ray, recipe, spec, batch_size, options)
        files: dict[str, _File] = {}
        started = time.perf_counter()
        audio = 0.0

        def units() -> Iterator[Unit]:
            for path in todo:
                planned = plan_units(path, spec, options.segment_duration)
                files[path] = _File(planned, {})
                yield from planned

        def close(path: str, reason: str | None) -> None:
            nonlocal audio
            entry = files[path]
            entry.closed = True
            if reason is None:
                duration = max(r.duration for r in entry.rows.values())
                line = _write(state, path, [entry.rows[k] for k in range(len(entry.units))], kind=kind, spec=spec, codes=codes, table=table)
                line.update(duration=duration)
                audio += duration
            else:
                line = {"file": path, "status": "failed", "reason": reason}
            entry.rows.clear()
            with writing(manifest):
                record.append(line)
            progress.update(task, advance=1, rate=audio_rate(audio, time.perf_counter() - started))

        with recording_run(record, run):
            try:
                with make_progress(disable=not show_progress) as progress:
                    task = progress.add_task(description or kind, total=len(todo), rate="")
                    for unit, rows in pool.run(units(), skip=lambda u: files[u.path].closed):
                        entry = files[unit.path]
                        if entry.closed:
                            continue
                        if rows.reason is not None:
                            close(unit.path, rows.reason)
                            continue
                        entry.rows[unit.part] = rows
                        if len(entry.rows) == len(entry.units):
                            close(unit.path, None)
            finally:
                pool.shutdown()


def _write(state: Path, path: str, rows: list[UnitRows], *, kind: str, spec: WindowSpec, codes: Sequence[str] | None, table: Callable) -> dict:
    """Write a finished file's part from its units' rows, in order; its ``done`` record (without duration)."""
    starts = np.concatenate([r.starts for r in rows])
    values = np.concatenate([r.values for r in rows])
    if kind == "embeddings":
        sink = EmbeddingPart(state, path, spec, values.shape[1])
        try:
            if len(starts):
                sink.add(starts, values)
            result = sink.finish(0, 0.0)
        except BaseException:
            sink.discard()
            raise
        return {"file": path, "status": "done", "part": result.part, "windows": len(starts), "rows": result.rows}
    scores = scores_frame(path, starts, values, sample_rate=spec.sample_rate, clip_samples=spec.clip_samples, codes=codes)
    frame = table(scores)
    part = write_part(state, path, frame, kind)
    return {"file": path, "status": "done", "part": part, "windows": len(starts), "rows": len(frame)}


class _Pool:
    """The actors, the units in flight on each, and the replacement of the ones that die."""

    def __init__(self, ray, recipe: ModelRecipe, spec: WindowSpec, batch_size: int, options: RayOptions):
        self.ray = ray
        cpus = float(options.cpus_per_actor)
        threads = recipe.threads if recipe.threads is not None else max(1, int(cpus))
        self.recipe = ModelRecipe(**{**recipe.__dict__, "threads": threads})
        self.remote = ray.remote(ScoringActor).options(num_cpus=cpus, num_gpus=float(options.gpus_per_actor), max_restarts=0, max_task_retries=0)
        self.spec, self.batch_size = spec, batch_size
        count = options.num_actors
        if count is None:
            available = ray.cluster_resources().get("CPU", 1.0)
            count = max(1, int(available // cpus)) if cpus > 0 else 1
        self.actors = [self._new() for _ in range(count)]
        try:
            ray.get([a.ready.remote() for a in self.actors])  # a model that does not open fails here, once
        except Exception as err:
            cause = getattr(err, "cause", None)  # the actor's own exception (ParameterError, CheckpointError...)
            if cause is not None and hasattr(cause, "as_instanceof_cause"):
                raise cause.as_instanceof_cause() from None
            raise
        self.queues: list[deque] = [deque() for _ in self.actors]  # (ref, unit) in submission order = run order
        self.deaths: Counter = Counter()
        self.replaced = 0

    def _new(self):
        return self.remote.remote(self.recipe, self.spec, self.batch_size)

    def run(self, units: Iterator[Unit], skip: Callable[[Unit], bool]) -> Iterator[tuple[Unit, UnitRows]]:
        """Yield ``(unit, rows)`` as units finish; a unit that killed :data:`DEATHS` actors comes back failed.
        ``skip(unit)``: a unit to retry that is no longer needed (its file failed meanwhile)."""
        from ray.exceptions import RayActorError, RayTaskError

        retry: deque = deque()
        owner: dict = {}  # ref -> (actor slot, unit)
        pending = iter(units)
        exhausted = False
        while True:
            for slot, queue in enumerate(self.queues):
                while len(queue) < DEPTH:
                    unit = None
                    while retry and unit is None:
                        unit = retry.popleft()
                        unit = None if skip(unit) else unit
                    if unit is None and not exhausted:
                        unit = next(pending, None)
                        exhausted = unit is None
                    if unit is None:
                        break
                    ref = self.actors[slot].score.remote(unit)
                    queue.append(ref)
                    owner[ref] = (slot, unit)
            if not owner:
                return
            (ref,), _ = self.ray.wait(list(owner), num_returns=1)
            slot, unit = owner[ref]
            try:
                rows = self.ray.get(ref)
            except RayTaskError as err:  # the scorer failed (not the file): stop, with its own error
                raise err.as_instanceof_cause() from None
            except RayActorError:
                for lost, reason in self._bury(slot, owner):
                    if reason is None:
                        retry.appendleft(lost)
                    else:
                        yield lost, UnitRows(None, None, 0.0, reason)
                continue
            self.queues[slot].remove(ref)
            del owner[ref]
            yield unit, rows

    def _bury(self, slot: int, owner: dict) -> list[tuple[Unit, str | None]]:
        """Replace the dead actor of ``slot``; its units, each with the reason its file fails (None: retry it).
        Only the unit it was running (its oldest) counts a death; the ones queued behind it did nothing."""
        lost = [owner.pop(ref)[1] for ref in self.queues[slot]]
        self.queues[slot].clear()
        with contextlib.suppress(Exception):
            self.ray.kill(self.actors[slot], no_restart=True)
        self.actors[slot] = self._new()
        self.replaced += 1
        out = []
        for i, unit in enumerate(lost):
            if i == 0:
                self.deaths[unit] += 1
            died = self.deaths[unit]
            reason = f"killed {died} Ray actors (out of memory, or a crash while scoring it); skipped" if died >= DEATHS else None
            out.append((unit, reason))
        return list(reversed(out))  # retried oldest first (appendleft)

    def shutdown(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
