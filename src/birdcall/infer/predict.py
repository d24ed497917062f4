"""In-memory prediction: the window scores of one file, or of many files as one table.

Nothing is written: for runs that must survive interruption, or that write detections, submissions or Raven tables,
use :func:`~birdcall.infer.run.run_inference`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.labels import LabelSet
from ..errors import ParameterError
from ..types import Pathlike
from .batching import default_spec, score_file, score_files
from .long_recording import WindowSpec, scores_frame

__all__ = ["PredictResult", "predict_file", "predict_files"]


def predict_file(scorer, path: Pathlike, *, labels: LabelSet | None = None, spec: WindowSpec | None = None, batch_size: int = 32) -> pd.DataFrame:
    """Scores for every window of ``path``: index (file, start_time, end_time), one column per species.

    The same as :func:`~birdcall.infer.batching.score_file`.

    Args:
        scorer: a :class:`~birdcall.infer.scorer.Scorer` (or any callable ``(B, N) -> (B, C)`` with ``labels`` and ``spec``).
        path: the audio file.
        labels: the scorer's species (None: ``scorer.labels``).
        spec: how to cut windows (None: the scorer's sample rate, clip duration and padding, no overlap, no TTA).
        batch_size: scorer rows per call; with TTA each window takes ``len(spec.tta_shifts)`` of them.

    Raises:
        AudioLoadError: the file cannot be decoded (a truncated file raises after its readable part).
        ParameterError: invalid arguments, or a scorer that returns the wrong shape.
    """
    return score_file(scorer, path, spec, labels=labels, batch_size=batch_size)


@dataclass(frozen=True)
class PredictResult:
    scores: pd.DataFrame  # as predict_file, all files concatenated in input order
    errors: tuple[tuple[str, str], ...]  # (file, one-line reason) for every skipped file


def predict_files(
    scorer,
    paths: Sequence[Pathlike],
    *,
    labels: LabelSet | None = None,
    spec: WindowSpec | None = None,
    batch_size: int = 32,
    workers: int = 0,
    show_progress: bool = True,
) -> PredictResult:
    """:func:`predict_file` over many files, in memory; a file that cannot be read is recorded and skipped.

    Windows are batched across files, and with ``workers > 0`` files are decoded in that many processes
    (:func:`~birdcall.infer.batching.score_files`).
    """
    from ..progress import make_progress

    labels = labels if labels is not None else getattr(scorer, "labels", None)
    if not isinstance(labels, LabelSet):
        raise ParameterError("predict_files: the scorer has no LabelSet; pass labels=")
    spec = spec if spec is not None else default_spec(scorer)
    paths = list(paths)
    frames: dict[int, pd.DataFrame] = {}
    errors: dict[int, tuple[str, str]] = {}
    with make_progress(disable=not show_progress) as progress:
        task = progress.add_task("predict", total=len(paths), rate="")
        for result in score_files(scorer, paths, labels=labels, spec=spec, batch_size=batch_size, workers=workers):
            if result.ok:
                frames[result.index] = result.scores
            else:
                errors[result.index] = (str(Path(paths[result.index])), result.reason)
            progress.update(task, advance=1)
    ordered = [frames[i] for i in sorted(frames)]
    empty = scores_frame("", np.zeros(0), np.zeros((0, len(labels))), sample_rate=spec.sample_rate, clip_samples=spec.clip_samples, codes=labels.codes)
    scores = pd.concat(ordered) if ordered else empty
    return PredictResult(scores, tuple(errors[i] for i in sorted(errors)))
