"""Prediction over recordings of any length.

A file is streamed in chunks (memory bounded by the chunk, not the file), cut into the windows that
:func:`birdcall.audio.clip_times` describes, scored in batches, and returned as a DataFrame indexed by
(``file``, ``start_time``, ``end_time``) with one column per species (probabilities).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..audio import num_clips, stream
from ..data.labels import LabelSet
from ..errors import AudioLoadError, ParameterError
from ..progress import track
from ..types import Pathlike

__all__ = ["iter_windows", "predict_file", "predict_files", "PredictResult"]

Scorer = Callable[[np.ndarray], np.ndarray]  # any callable (batch, num_samples) -> (batch, classes); see scorer.Scorer


def iter_windows(chunks: Iterable[np.ndarray], *, clip_samples: int, hop_samples: int, final_clip: str = "pad") -> Iterator[tuple[int, np.ndarray]]:
    """Cut a stream of consecutive chunks into ``(start_sample, window)`` pairs.

    Produces exactly ``num_clips(total, clip_samples=..., hop_samples=..., final_clip=...)`` windows,
    the incomplete ones zero padded, while holding at most one chunk plus one window in memory.
    """
    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # absolute index of buf[0]
    next_start = 0
    emitted = 0
    for chunk in chunks:
        buf = np.concatenate([buf, np.asarray(chunk, dtype=np.float32)])
        while next_start + clip_samples <= buf_start + len(buf):
            offset = next_start - buf_start
            yield next_start, buf[offset : offset + clip_samples].copy()
            emitted += 1
            next_start += hop_samples
        drop = min(max(0, next_start - buf_start), len(buf))
        buf, buf_start = buf[drop:], buf_start + drop
    total = buf_start + len(buf)
    for _ in range(emitted, num_clips(total, clip_samples=clip_samples, hop_samples=hop_samples, final_clip=final_clip)):
        offset = next_start - buf_start
        window = np.zeros(clip_samples, dtype=np.float32)
        part = buf[max(0, offset) : max(0, offset) + clip_samples]
        window[: len(part)] = part
        yield next_start, window
        next_start += hop_samples


def predict_file(
    scorer: Scorer,
    path: Pathlike,
    *,
    labels: LabelSet,
    sample_rate: int,
    clip_duration: float,
    hop: float | None = None,
    batch_size: int = 32,
    chunk_duration: float = 60.0,
    final_clip: str = "pad",
) -> pd.DataFrame:
    """Scores for every window of ``path``: index (file, start_time, end_time), one column per species.

    Raises:
        AudioLoadError: the file cannot be decoded (a truncated file raises after its readable part).
    """
    if batch_size < 1:
        raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
    clip_samples = int(round(clip_duration * sample_rate))
    hop_samples = int(round((hop or clip_duration) * sample_rate))
    starts: list[int] = []
    scores: list[np.ndarray] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            out = np.asarray(scorer(np.stack(batch)), dtype=np.float32)
            if out.shape != (len(batch), len(labels)):
                raise ParameterError(f"scorer returned shape {out.shape}, expected {(len(batch), len(labels))}")
            scores.append(out)
            batch.clear()

    chunks = stream(path, sample_rate=sample_rate, chunk_duration=chunk_duration)
    for start, window in iter_windows(chunks, clip_samples=clip_samples, hop_samples=hop_samples, final_clip=final_clip):
        starts.append(start)
        batch.append(window)
        if len(batch) == batch_size:
            flush()
    flush()
    start_times = np.asarray(starts, dtype=np.float64) / sample_rate
    index = pd.MultiIndex.from_arrays(
        [[str(path)] * len(starts), start_times, start_times + clip_samples / sample_rate], names=["file", "start_time", "end_time"]
    )
    values = np.concatenate(scores) if scores else np.zeros((0, len(labels)), dtype=np.float32)
    return pd.DataFrame(values, index=index, columns=list(labels.codes))


@dataclass(frozen=True)
class PredictResult:
    scores: pd.DataFrame  # as predict_file, all files concatenated
    errors: tuple[tuple[str, str], ...]  # (file, one-line reason) for every skipped file


def predict_files(scorer: Scorer, paths: Sequence[Pathlike], *, show_progress: bool = True, **kwargs) -> PredictResult:
    """:func:`predict_file` over many files; a file that cannot be read is recorded and skipped."""
    frames, errors = [], []
    for path in track(paths, description="predict", disable=not show_progress, unit="files"):
        try:
            frames.append(predict_file(scorer, path, **kwargs))
        except AudioLoadError as err:
            errors.append((str(Path(path)), err.cause))
    labels: LabelSet = kwargs["labels"]
    scores = pd.concat(frames) if frames else pd.DataFrame(columns=list(labels.codes))
    return PredictResult(scores, tuple(errors))
