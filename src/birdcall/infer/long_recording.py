"""Windows over recordings of any length: how a file is cut (:class:`WindowSpec`), the cutting as a stream, and
the table the window scores make.

A file is streamed in chunks (memory bounded by the chunk, not the file) and cut into the windows that
:func:`birdcall.audio.clip_times` describes; their scores make a DataFrame indexed by (``file``, ``start_time``,
``end_time``) with one column per species (:func:`scores_frame`).

Test-time augmentation by time shift (``tta_shifts``, seconds): window ``[s, s + clip)`` is also scored as
``[s + shift, s + shift + clip)`` for every shift, cut from the neighbouring audio of the same file (zeros
before its start and after its end), and the probabilities are averaged. The windows themselves (their
number, start times and index) stay those of the unshifted clip table.

:func:`iter_window_blocks` does the cutting as a stream (it also serves :func:`iter_windows`); the producers of
:mod:`birdcall.infer.producers` run it over many files, in a thread or in worker processes, and
:mod:`birdcall.infer.batching` scores the windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._validate import is_int, is_number
from ..audio import num_clips, stream
from ..audio.clips import FINAL_CLIP_POLICIES
from ..errors import ParameterError
from ..features.crop import PAD_MODES
from ..types import Pathlike

__all__ = [
    "WindowSpec",
    "WindowBlock",
    "iter_window_blocks",
    "iter_windows",
    "score_windows",
    "scores_frame",
]

Scorer = Callable[[np.ndarray], np.ndarray]  # any callable (batch, num_samples) -> (batch, classes); see scorer.Scorer


@dataclass(frozen=True)
class WindowSpec:
    """How a recording is cut into scored windows.

    Attributes:
        sample_rate: rate the audio is decoded and resampled to (the model's).
        clip_duration: window length, seconds.
        hop: seconds between window starts (None: ``clip_duration``; smaller values overlap the windows).
        tta_shifts: time shifts in seconds at which every window is also scored; the scores are averaged.
        final_clip: ``"pad"`` or ``"drop"``, as :func:`birdcall.audio.num_clips`.
        chunk_duration: seconds decoded at a time (bounds the memory of one file). The in-memory
            :func:`~birdcall.infer.predict_file` keeps this default; runs of the engine decode 30 s at a time
            (:class:`~birdcall.infer.run.WindowOptions`, where the measurement is).
        pad: a file shorter than one window is ``"zero"``-padded or ``"wrap"``ped (tiled), as the model's
            ``FeatureConfig.pad`` fills its short training clips. The final partial window of a longer file is
            always zero-padded.
    """

    sample_rate: int
    clip_duration: float
    hop: float | None = None
    tta_shifts: tuple[float, ...] = (0.0,)
    final_clip: str = "pad"
    chunk_duration: float = 60.0
    pad: str = "zero"

    def __post_init__(self) -> None:
        if not is_int(self.sample_rate) or self.sample_rate <= 0:
            raise ParameterError(f"sample_rate must be a positive integer, got {self.sample_rate!r}")
        for name in ("clip_duration", "chunk_duration") + (("hop",) if self.hop is not None else ()):
            value = getattr(self, name)
            if not is_number(value) or not math.isfinite(value) or value <= 0:
                raise ParameterError(f"{name} must be a finite number of seconds > 0, got {value!r}")
        try:
            shifts = tuple(float(s) for s in self.tta_shifts)
        except (TypeError, ValueError):
            raise ParameterError(f"tta_shifts must be numbers (seconds), got {self.tta_shifts!r}") from None
        if not shifts or not all(math.isfinite(s) for s in shifts):
            raise ParameterError(f"tta_shifts must be one or more finite numbers (seconds), got {self.tta_shifts!r}")
        object.__setattr__(self, "tta_shifts", shifts)
        if self.final_clip not in FINAL_CLIP_POLICIES:
            raise ParameterError(f"final_clip must be one of {FINAL_CLIP_POLICIES}, got {self.final_clip!r}")
        if self.pad not in PAD_MODES:
            raise ParameterError(f"pad must be one of {PAD_MODES}, got {self.pad!r}")
        if self.clip_samples < 1 or self.hop_samples < 1:
            raise ParameterError(f"clip_duration and hop must each span at least one sample at {self.sample_rate} Hz")

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_duration * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        return int(round((self.clip_duration if self.hop is None else self.hop) * self.sample_rate))

    @property
    def shift_samples(self) -> tuple[int, ...]:
        return tuple(int(round(s * self.sample_rate)) for s in self.tta_shifts)

    def windows_per_batch(self, batch_size: int) -> int:
        """Windows per scorer call when a call takes ``batch_size`` rows (every TTA shift is one row)."""
        if not is_int(batch_size) or batch_size < 1:
            raise ParameterError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        return max(1, int(batch_size) // len(self.tta_shifts))

    def blocks(self, path: Pathlike, *, max_windows: int) -> Iterator[WindowBlock]:
        """:func:`iter_window_blocks` over the decoded, resampled audio of ``path``.

        Raises:
            AudioLoadError: as :func:`birdcall.audio.stream` (at once, or after the readable part).
        """
        return self.cut(stream(path, sample_rate=self.sample_rate, chunk_duration=self.chunk_duration), max_windows=max_windows)

    def cut(self, chunks: Iterable[np.ndarray], *, max_windows: int) -> Iterator[WindowBlock]:
        """:func:`iter_window_blocks` over ``chunks`` (consecutive audio at ``sample_rate``) with this spec's windows."""
        return iter_window_blocks(
            chunks,
            clip_samples=self.clip_samples,
            hop_samples=self.hop_samples,
            shift_samples=self.shift_samples,
            final_clip=self.final_clip,
            max_windows=max_windows,
            pad=self.pad,
        )


@dataclass(frozen=True)
class WindowBlock:
    """Consecutive windows of one file and the stretch of audio they are cut from.

    Window ``k`` at shift ``d`` (samples) is ``segment[starts[k] + d - offset:][:clip_samples]``. Sending the
    segment instead of the windows keeps overlapping and shifted windows from multiplying the data.

    Attributes:
        starts: ``(b,)`` int64 start sample of each (unshifted) window.
        segment: float32 audio from absolute sample ``offset`` on, zero outside the file.
        offset: absolute sample index of ``segment[0]`` (negative when a shift reaches before the start).
    """

    starts: np.ndarray
    segment: np.ndarray
    offset: int

    def windows(self, *, clip_samples: int, shift_samples: Sequence[int] = (0,)) -> np.ndarray:
        """The windows as a new ``(b, len(shift_samples), clip_samples)`` float32 array."""
        index = self.starts[:, None] + np.asarray(shift_samples, dtype=np.int64)[None, :] - self.offset
        return np.lib.stride_tricks.sliding_window_view(self.segment, clip_samples)[index]


def iter_window_blocks(
    chunks: Iterable[np.ndarray],
    *,
    clip_samples: int,
    hop_samples: int,
    shift_samples: Sequence[int] = (0,),
    final_clip: str = "pad",
    max_windows: int = 32,
    pad: str = "zero",
) -> Iterator[WindowBlock]:
    """Cut a stream of consecutive chunks into blocks of at most ``max_windows`` consecutive windows.

    A block ends at ``max_windows`` windows or at the end of the chunk that completed its last window, whichever
    comes first, so each block is handed on as soon as its audio is decoded.

    The windows are exactly those of ``num_clips(total, clip_samples=..., hop_samples=..., final_clip=...)``
    (starts ``0, hop, 2 hop, ...``; incomplete ones zero padded). Each block carries the audio its windows
    need at every shift of ``shift_samples``. Memory holds one chunk plus one block's audio, whatever the
    stream length.

    Raises:
        ParameterError: ``clip_samples``, ``hop_samples`` or ``max_windows`` < 1, empty ``shift_samples``,
            unknown ``final_clip``.
    """
    if clip_samples < 1 or hop_samples < 1 or max_windows < 1:
        raise ParameterError(f"clip_samples, hop_samples and max_windows must be >= 1, got {clip_samples}, {hop_samples}, {max_windows}")
    if final_clip not in FINAL_CLIP_POLICIES:
        raise ParameterError(f"final_clip must be one of {FINAL_CLIP_POLICIES}, got {final_clip!r}")
    if pad not in PAD_MODES:
        raise ParameterError(f"pad must be one of {PAD_MODES}, got {pad!r}")
    shifts = tuple(int(s) for s in shift_samples)
    if not shifts:
        raise ParameterError("shift_samples must hold at least one shift (0 for none)")
    lo = min(shifts)  # a window at s needs the samples [s + lo, s + hi)
    hi = max(shifts) + clip_samples
    ready_margin = max(clip_samples, hi)  # a window exists for sure once s + clip_samples samples are known

    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # absolute index of buf[0]
    pending: list[int] = []
    count = 0  # windows taken so far; window k starts at k * hop_samples

    def cut() -> WindowBlock:
        a, b = pending[0] + lo, pending[-1] + hi
        segment = np.zeros(b - a, dtype=np.float32)
        x0, x1 = max(a, buf_start), min(b, buf_start + len(buf))
        if x1 > x0:
            segment[x0 - a : x1 - a] = buf[x0 - buf_start : x1 - buf_start]
        block = WindowBlock(np.asarray(pending, dtype=np.int64), segment, a)
        pending.clear()
        return block

    for chunk in chunks:
        buf = np.concatenate([buf, np.asarray(chunk, dtype=np.float32)])
        end = buf_start + len(buf)
        while count * hop_samples + ready_margin <= end:
            pending.append(count * hop_samples)
            count += 1
            if len(pending) == max_windows:
                yield cut()
        if pending:  # every window this chunk completed, at once: a consumer can start before max_windows are decoded
            yield cut()
        keep_from = (pending[0] if pending else count * hop_samples) + lo
        drop = min(max(0, keep_from - buf_start), len(buf))
        buf, buf_start = buf[drop:], buf_start + drop
    total = buf_start + len(buf)
    if pad == "wrap" and 0 < total < clip_samples and buf_start == 0:
        # The whole file is shorter than one window: tile it, as FeatureConfig.pad="wrap" tiles short training
        # clips (np.resize repeats cyclically), over every sample a shifted window can reach.
        buf = np.resize(buf, max(hi, clip_samples))
    for _ in range(count, num_clips(total, clip_samples=clip_samples, hop_samples=hop_samples, final_clip=final_clip)):
        pending.append(count * hop_samples)
        count += 1
        if len(pending) == max_windows:
            yield cut()
    if pending:
        yield cut()


def iter_windows(chunks: Iterable[np.ndarray], *, clip_samples: int, hop_samples: int, final_clip: str = "pad") -> Iterator[tuple[int, np.ndarray]]:
    """Cut a stream of consecutive chunks into ``(start_sample, window)`` pairs.

    Produces exactly ``num_clips(total, clip_samples=..., hop_samples=..., final_clip=...)`` windows,
    the incomplete ones zero padded, while holding at most one chunk plus one window in memory.
    """
    for block in iter_window_blocks(chunks, clip_samples=clip_samples, hop_samples=hop_samples, final_clip=final_clip, max_windows=1):
        yield int(block.starts[0]), block.segment


def score_windows(scorer: Scorer, windows: np.ndarray, *, num_classes: int) -> np.ndarray:
    """Score ``(b, shifts, num_samples)`` windows in one call; average over the shifts.

    Returns:
        ``(b, num_classes)`` float32.

    Raises:
        ParameterError: the scorer returns another shape.
    """
    b, shifts, n = windows.shape
    out = np.asarray(scorer(windows.reshape(b * shifts, n)), dtype=np.float32)
    if out.shape != (b * shifts, num_classes):
        raise ParameterError(f"scorer returned shape {out.shape}, expected {(b * shifts, num_classes)}")
    if shifts == 1:
        return out
    return out.reshape(b, shifts, num_classes).mean(axis=1, dtype=np.float64).astype(np.float32)


def scores_frame(file: str, starts: np.ndarray, values: np.ndarray, *, sample_rate: int, clip_samples: int, codes: Sequence[str]) -> pd.DataFrame:
    """A prediction table: index (file, start_time, end_time) from window start samples, one column per code."""
    start_times = np.asarray(starts, dtype=np.float64) / sample_rate
    index = pd.MultiIndex.from_arrays(
        [[file] * len(start_times), start_times, start_times + clip_samples / sample_rate], names=["file", "start_time", "end_time"]
    )
    return pd.DataFrame(np.asarray(values, dtype=np.float32).reshape(len(start_times), len(codes)), index=index, columns=list(codes))
