"""Scoring windows into tables: one file (:func:`score_file`), or many with windows batched across files (:func:`score_files`).

:func:`score_file` is the engine's work on one file, with no run state and no threads: cut the windows
(:meth:`~birdcall.infer.long_recording.WindowSpec.blocks`), score them
(:func:`~birdcall.infer.long_recording.score_windows`), make the table (:func:`~birdcall.infer.long_recording.scores_frame`).
:func:`score_files` runs the same steps over many files, the decoding in a producer
(:mod:`birdcall.infer.producers`) and the scoring in this process, where a batcher fills every scorer call with
windows of whichever files are decoded; batch boundaries change no window's scores. The main process keeps only
the scores of the files in flight, or none with a ``sink`` that streams each file's rows elsewhere.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._validate import is_int
from ..data.labels import LabelSet
from ..errors import ParameterError
from ..types import Pathlike
from .long_recording import WindowSpec, score_windows, scores_frame
from .producers import (
    CountedStream,
    IDLE,
    Block,
    Done,
    Event,
    Failed,
    Idle,
    Start,
    local_events,
    parallel_events,
    prefetched,
)

__all__ = ["FileResult", "SegmentRows", "default_spec", "score_file", "score_files", "score_segment", "segment_rows", "segment_windows"]


def default_spec(scorer) -> WindowSpec:
    """The windows a scorer is trained on: its sample rate, clip duration and padding; no overlap, no TTA."""
    features = scorer.features
    return WindowSpec(features.sample_rate, features.clip_duration, pad=features.pad)


def score_file(scorer, path: Pathlike, spec: WindowSpec | None = None, *, labels: LabelSet | None = None, batch_size: int = 32) -> pd.DataFrame:
    """Score every window of one file: the table the engine makes of it, with no run state, thread or process.

    The same steps as :func:`score_files` and :func:`~birdcall.infer.run.run_inference` take for each file (they
    only batch windows across files and decode elsewhere, which changes no score), so its rows are the rows a
    ``scores`` run writes for the file; a ``submission`` or ``detections`` run then applies
    :func:`~birdcall.infer.postprocess.postprocess` and :func:`~birdcall.infer.detections.to_detections` to them.

    Args:
        scorer: a :class:`~birdcall.infer.scorer.Scorer` (or any callable ``(B, N) -> (B, C)`` when ``labels``
            and ``spec`` are given).
        path: the audio file.
        spec: how to cut windows (None: :func:`default_spec`).
        labels: the scorer's species (None: ``scorer.labels``).
        batch_size: rows per scorer call (with TTA each window takes ``len(spec.tta_shifts)`` of them).

    Returns:
        Index (``file``, ``start_time``, ``end_time``), one float32 column per species, one row per window.

    Raises:
        AudioLoadError: the file cannot be decoded (a truncated file raises after its readable part).
        ParameterError: invalid arguments, or a scorer that returns the wrong shape.
    """
    return _score_windows_of(scorer, path, spec, 0, None, labels=labels, batch_size=batch_size, caller="score_file")


def score_segment(scorer, path: Pathlike, spec: WindowSpec | None = None, first: int = 0, stop: int | None = None, *,
                  labels: LabelSet | None = None, batch_size: int = 32) -> pd.DataFrame:
    """Score windows ``first`` to ``stop - 1`` of one file: the rows of :func:`score_file` with those window
    numbers, the same grid, start times and scores (so the tables of consecutive segments, concatenated, are the
    file's table). The work unit that spreads one long recording over several Ray actors
    (:mod:`birdcall.infer.ray_engine`).

    The audio is decoded from the start of the file (windows before ``first`` are cut but not scored: a
    resampled stream cannot be entered mid-way with the same samples) and no further than window ``stop - 1``
    needs, so memory is one chunk plus the segment's rows, whatever the file length.

    Args:
        scorer, path, spec, labels, batch_size: as in :func:`score_file`.
        first: the first window (window ``k`` starts at ``k * spec.hop_samples``).
        stop: one past the last window (None: to the end of the file).

    Returns:
        As :func:`score_file`, for the segment's windows only (empty when the file ends before ``first``).

    Raises:
        AudioLoadError: the file cannot be decoded up to the segment's end (the whole file when ``stop`` is None).
        ParameterError: invalid arguments, or a scorer that returns the wrong shape.
    """
    return _score_windows_of(scorer, path, spec, first, stop, labels=labels, batch_size=batch_size, caller="score_segment")


def _score_windows_of(scorer, path: Pathlike, spec: WindowSpec | None, first: int, stop: int | None, *, labels: LabelSet | None,
                      batch_size: int, caller: str) -> pd.DataFrame:
    """What :func:`score_file` (the whole file) and :func:`score_segment` do; ``caller`` names the one in errors."""
    labels = labels if labels is not None else getattr(scorer, "labels", None)
    if not isinstance(labels, LabelSet):
        raise ParameterError(f"{caller}: the scorer has no LabelSet; pass labels=")
    spec = spec if spec is not None else default_spec(scorer)
    rows = segment_rows(scorer, path, spec, first, stop, width=len(labels), batch_size=batch_size)
    return scores_frame(str(path), rows.starts, rows.values, sample_rate=spec.sample_rate, clip_samples=spec.clip_samples, codes=labels.codes)


@dataclass(frozen=True)
class SegmentRows:
    """What :func:`segment_rows` scored.

    Attributes:
        starts: ``(n,)`` int64 start sample of each window of the segment, in order.
        values: ``(n, width)`` float32 scores (or embedding vectors) of those windows.
        duration: seconds of audio decoded; the file's duration when the segment runs to its end.
    """

    starts: np.ndarray
    values: np.ndarray
    duration: float


def segment_windows(blocks: Iterable, spec: WindowSpec, first: int, stop: int | None) -> Iterator:
    """The blocks (:class:`~birdcall.infer.long_recording.WindowBlock`) of windows ``first`` to ``stop - 1`` out of
    a file's ``blocks``: earlier windows dropped, and iteration ended once window ``stop - 1`` has been cut."""
    if not is_int(first) or first < 0 or (stop is not None and (not is_int(stop) or stop < first)):
        raise ParameterError(f"a segment is windows first to stop - 1 with 0 <= first <= stop, got {first!r}, {stop!r}")
    lo = int(first) * spec.hop_samples
    hi = None if stop is None else int(stop) * spec.hop_samples  # window starts in [lo, hi)
    for block in blocks:
        keep = block.starts >= lo
        if hi is not None:
            keep &= block.starts < hi
        if keep.all():
            yield block
        elif keep.any():
            yield type(block)(block.starts[keep], block.segment, block.offset)  # windows() indexes by start: a subset is valid
        if hi is not None and len(block.starts) and block.starts[-1] >= hi - spec.hop_samples:
            return


def segment_rows(scorer, path: Pathlike, spec: WindowSpec, first: int = 0, stop: int | None = None, *, width: int,
                 batch_size: int = 32, prefetch: bool = False) -> SegmentRows:
    """The scored windows ``first`` to ``stop - 1`` of one file as arrays (:func:`score_segment` makes its table of
    them; an embedder's vectors need no table). ``width``: values per window. With ``prefetch``, the next block is
    decoded in a thread while the current one is scored (what the engine's decoding thread does).

    Raises:
        As :func:`score_segment`.
    """
    per_batch = spec.windows_per_batch(batch_size)
    chunks = CountedStream(path, spec)
    blocks = segment_windows(spec.cut(chunks, max_windows=per_batch), spec, first, stop)
    if prefetch:
        blocks = prefetched(blocks, depth=2)
    starts: list[np.ndarray] = []
    values: list[np.ndarray] = []
    with contextlib.closing(blocks):  # a scorer error stops the decoding thread too
        for block in blocks:
            windows = block.windows(clip_samples=spec.clip_samples, shift_samples=spec.shift_samples)
            starts.append(block.starts)
            values.append(score_windows(scorer, windows, num_classes=width))
    return SegmentRows(
        np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64),
        np.concatenate(values) if values else np.zeros((0, width), dtype=np.float32),
        chunks.samples / spec.sample_rate,
    )


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

    def frame(self) -> pd.DataFrame:
        """The prediction table of the rows added so far."""
        starts = np.concatenate(self.starts) if self.starts else np.zeros(0, dtype=np.int64)
        values = np.concatenate(self.values) if self.values else np.zeros((0, len(self.codes)), dtype=np.float32)
        order = np.argsort(starts, kind="stable")  # already in order: a file's blocks arrive in order
        return scores_frame(self.path, starts[order], values[order], sample_rate=self.spec.sample_rate, clip_samples=self.spec.clip_samples, codes=self.codes)

    def finish(self, index: int, duration: float) -> FileResult:
        return FileResult(index, self.path, self.frame(), None, duration)

    def discard(self) -> None:
        self.starts.clear()
        self.values.clear()


@dataclass
class _InFlight:
    rows: Any  # the file's sink (_FrameRows or what score_files was given)
    queued: int = 0  # windows waiting in the batch queue
    duration: float | None = None  # set by Done


class _Batcher:
    """Turns producer events (:mod:`birdcall.infer.producers`) into scored files: batches windows across files,
    routes scores back."""

    def __init__(self, scorer, paths: Sequence[Pathlike], labels: LabelSet | None, spec: WindowSpec, per_batch: int, *,
                 width: int | None = None, sink: Callable[[int, str], Any] | None = None):
        self.scorer, self.paths, self.labels, self.spec, self.per_batch = scorer, paths, labels, spec, per_batch
        self.width = len(labels) if width is None else int(width)  # values per window
        self.sink = sink or (lambda index, path: _FrameRows(path, spec, labels.codes))
        self.files: dict[int, _InFlight] = {}
        self.waiting: deque = deque()  # (file index, starts, windows (b, shifts, clip)) in arrival order
        self.queued = 0
        self._buffer: np.ndarray | None = None  # the batch, when it gathers several blocks (scorers do not keep it)

    def feed(self, event: Event) -> list[FileResult]:
        if isinstance(event, Start):
            self._open(event.index)
            return []
        if isinstance(event, Block):
            index, block = event.index, event.block
            state = self._open(index)
            windows = block.windows(clip_samples=self.spec.clip_samples, shift_samples=self.spec.shift_samples)
            self.waiting.append((index, block.starts, windows))
            state.queued += len(block.starts)
            self.queued += len(block.starts)
            finished: list[FileResult] = []
            while self.queued >= self.per_batch:
                finished += self._score(self.per_batch)
            return finished
        if isinstance(event, Idle):
            # Nothing decoded is waiting: score what is queued now rather than leave the model idle until a
            # full batch is decoded (at the start of a run that wait was ~15 % of a 10-min file's run time with
            # efficientnet_b0 on OpenVINO). Batch boundaries do not change any window's scores.
            return self._score(min(self.per_batch, self.queued)) if self.queued else []
        if isinstance(event, Done):
            index = event.index
            state = self._open(index)
            state.duration = float(event.duration)
            return self._finished([index])
        if isinstance(event, Failed):
            index = event.index
            state = self.files.pop(index, None)
            if state is not None:
                state.rows.discard()
            kept = deque(item for item in self.waiting if item[0] != index)
            self.queued = sum(len(item[1]) for item in kept)
            self.waiting = kept
            return [FileResult(index, str(self.paths[index]), None, event.reason)]
        raise ParameterError(f"unknown producer event {event!r}")

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
        spec = default_spec(scorer)
    if not is_int(workers) or workers < 0:
        raise ParameterError(f"workers must be an integer >= 0, got {workers!r}")
    per_batch = spec.windows_per_batch(batch_size)
    paths = list(paths)
    if workers == 0:
        events = prefetched(local_events(paths, spec, per_batch, on_start), depth=2, idle=IDLE if eager else None)
    else:
        events = parallel_events(paths, spec, per_batch, int(workers), start_method)
    batcher = _Batcher(scorer, paths, labels if isinstance(labels, LabelSet) else None, spec, per_batch, width=width, sink=sink)
    try:
        for event in events:
            if workers and on_start is not None and isinstance(event, Start):
                on_start(str(paths[event.index]))
            yield from batcher.feed(event)
        yield from batcher.close()
    finally:
        batcher.abort()
        events.close()
