"""Decode producers: files in, typed events out (:class:`Start`, :class:`Block`, :class:`Done`, :class:`Failed`).

A producer decodes each file in chunks (:func:`birdcall.audio.stream`), cuts the windows
(:meth:`~birdcall.infer.long_recording.WindowSpec.cut`) and reports, per file and in order, :class:`Start`, one
:class:`Block` per block of at most one batch of windows, then :class:`Done` or, if anything fails, :class:`Failed`
with a one-line reason (:func:`iter_file_events`). Two producers give exactly the same events:

* :func:`prefetched` over :func:`local_events`: a background thread of this process, a few events ahead of the
  consumer (decoding and the scorers release the GIL); it reports :data:`IDLE` whenever the consumer would wait.
* :func:`parallel_events`: ``workers`` processes (``multiprocessing``, ``spawn`` by default). Each worker has a task
  pipe and an event pipe, which holds at most one block: a worker waits while the main process is busy, so peak
  memory is a chunk and a block per worker. A worker that dies (crash, out-of-memory kill) fails the file it was
  reading and is replaced; the files queued behind it are re-assigned. Workers exit on their own when the main
  process disappears.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..audio import stream
from ..errors import AudioLoadError, BirdcallError
from ..types import Pathlike
from .long_recording import WindowBlock, WindowSpec

__all__ = [
    "IDLE",
    "Block",
    "Done",
    "Event",
    "Failed",
    "Idle",
    "Start",
    "failure",
    "iter_file_events",
    "local_events",
    "parallel_events",
    "prefetched",
]

ASSIGNED_PER_WORKER = 2  # files handed to a worker ahead (so it never idles between files)
STARTUP_FAILURES = 3  # consecutive worker deaths without any progress before the run gives up


@dataclass(frozen=True)
class Start:
    """The producer begins decoding file ``index`` (its position in the paths given)."""

    index: int


@dataclass(frozen=True)
class Block:
    """The next block of windows of file ``index``, in window order."""

    index: int
    block: WindowBlock


@dataclass(frozen=True)
class Done:
    """File ``index`` is decoded: ``duration`` seconds of audio (at the spec's sample rate)."""

    index: int
    duration: float


@dataclass(frozen=True)
class Failed:
    """File ``index`` failed (its blocks so far are void): ``reason`` in one line."""

    index: int
    reason: str


@dataclass(frozen=True)
class Idle:
    """Nothing decoded is waiting (see :func:`prefetched` and the batcher's use of it)."""


IDLE = Idle()
Event = Start | Block | Done | Failed | Idle  # what a producer yields


def failure(err: BaseException) -> str:
    """One line saying why a file failed."""
    if isinstance(err, AudioLoadError):
        return err.cause
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}"[:500] if text else type(err).__name__



class CountedStream:
    """The decoded chunks of ``path`` at ``spec``'s rate, in ``spec.chunk_duration`` pieces, counting the samples
    decoded so far (``samples``: the duration a file reports, whatever its header says)."""

    def __init__(self, path: Pathlike, spec: WindowSpec):
        self.samples = 0
        self.path, self.spec = path, spec

    def __iter__(self) -> Iterator[np.ndarray]:  # the file is opened here, where its errors are reported
        for chunk in stream(self.path, sample_rate=self.spec.sample_rate, chunk_duration=self.spec.chunk_duration):
            self.samples += len(chunk)
            yield chunk

def iter_file_events(index: int, path: Pathlike, spec: WindowSpec, *, max_windows: int) -> Iterator[Event]:
    """What a producer reports about one file, in order.

    Yields :class:`Start`, then a :class:`Block` for each block of at most ``max_windows`` windows, then either
    :class:`Done` (with the seconds decoded) or, if anything fails, :class:`Failed` (with its reason).
    """
    yield Start(index)
    chunks = CountedStream(path, spec)
    try:
        for block in spec.cut(chunks, max_windows=max_windows):
            yield Block(index, block)
    except Exception as err:  # noqa: BLE001 - any failure of one file is that file's, the run goes on
        yield Failed(index, failure(err))
        return
    yield Done(index, chunks.samples / spec.sample_rate)


def local_events(paths: Sequence[Pathlike], spec: WindowSpec, max_windows: int, on_start: Callable[[str], None] | None = None) -> Iterator[Event]:
    """The events of every file, decoded one after another in the calling thread."""
    for i, path in enumerate(paths):
        if on_start is not None:
            on_start(str(path))  # before anything of the file is decoded
        yield from iter_file_events(i, path, spec, max_windows=max_windows)


_END = object()


def prefetched(events: Iterator[Any], depth: int = 2, idle: Any = None) -> Iterator[Any]:
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


def parallel_events(paths: Sequence[Pathlike], spec: WindowSpec, max_windows: int, workers: int, start_method: str) -> Iterator[Event]:
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
        while len(worker.assigned) < ASSIGNED_PER_WORKER and todo:
            task = todo.popleft()
            worker.assigned.append(task[0])
            with contextlib.suppress(OSError):  # a dead worker is noticed by its sentinel
                worker.tasks.send(task)

    def receive(worker: _Worker) -> Iterator[Event]:
        nonlocal startup_failures
        event = worker.events.recv()
        if isinstance(event, Start):
            worker.current = event.index
        yield event
        if isinstance(event, (Done, Failed)):
            startup_failures = 0
            worker.current = None
            with contextlib.suppress(ValueError):
                worker.assigned.remove(event.index)
            assign(worker)

    def bury(worker: _Worker) -> Iterator[Event]:
        nonlocal startup_failures
        pool.remove(worker)
        worker.process.join(timeout=1.0)
        code = worker.process.exitcode
        lost = list(worker.assigned)
        if worker.current is not None:
            lost.remove(worker.current)
            yield Failed(worker.current, f"decoding process died (exit code {code}) while reading this file")
        elif lost:
            startup_failures += 1
            if startup_failures >= STARTUP_FAILURES:
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
