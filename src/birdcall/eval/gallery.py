"""The error gallery: the most confident false positives and the most missed false negatives, each with the
log-mel spectrogram of its window and the window's audio (16-bit PCM WAV) to listen to."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import check_int
from ..errors import AudioLoadError, BirdcallError
from ..features import FeatureConfig
from ..metrics import check_arrays
from .inputs import EvalInputs, WindowRef, read_window

__all__ = ["GalleryItem", "build_gallery", "select_errors", "wav_bytes", "window_media"]

FALSE_POSITIVE, FALSE_NEGATIVE = "false positive", "false negative"


@dataclass(frozen=True)
class GalleryItem:
    """One error: sample ``row`` scored ``score`` for ``species``, against its ``true_labels``.

    ``image_png`` and ``wav`` hold the window's log-mel picture and audio; without them ``problem`` says why.
    """

    kind: str
    row: int
    sample_id: str
    species: str
    score: float
    true_labels: tuple[str, ...]
    window: WindowRef | None = None
    image_png: bytes | None = None
    wav: bytes | None = None
    problem: str = ""


def select_errors(y_true: Any, y_score: Any, *, count: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The ``count`` highest-scored negative and lowest-scored positive (sample, species) pairs.

    Args:
        y_true: ``(n, c)`` 0/1 labels.
        y_score: ``(n, c)`` scores.
        count: pairs of each kind.

    Returns:
        ``(false positives, false negatives)``, lists of ``(row, column)``: false positives by score from the
        highest, false negatives from the lowest; ties in row-major order.

    Raises:
        ParameterError: invalid arrays or a negative ``count``.
    """
    check_int("count", count, min=0)
    truth, score = check_arrays(y_true, y_score)
    flat_truth, flat_score = truth.ravel(), score.ravel()
    negatives = np.flatnonzero(flat_truth == 0)
    positives = np.flatnonzero(flat_truth == 1)
    fp = negatives[np.argsort(-flat_score[negatives], kind="stable")][:count]
    fn = positives[np.argsort(flat_score[positives], kind="stable")][:count]
    columns = truth.shape[1]
    return [(int(k // columns), int(k % columns)) for k in fp], [(int(k // columns), int(k % columns)) for k in fn]


def wav_bytes(y: Any, *, sample_rate: int) -> bytes:
    """A mono 16-bit PCM WAV file of ``y`` (clipped to [-1, 1]), as bytes."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(np.asarray(y, dtype=np.float32), -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def window_media(window: WindowRef, features: FeatureConfig, *, title: str = "") -> tuple[bytes | None, bytes | None, str]:
    """The log-mel picture (PNG) and audio (WAV) of one window, read with ``features``' sample rate.

    Returns:
        ``(image_png, wav, problem)``: an unreadable window gives ``(None, None, why)``; a picture that cannot be
        drawn gives ``(None, wav, why)`` (as a report figure: one picture that fails does not sink the page).
    """
    from ..features import log_mel
    from .plots import figure_png, spectrogram_figure

    try:
        y = read_window(window, sample_rate=features.sample_rate)
    except AudioLoadError as err:
        return None, None, f"audio unavailable: {err}"
    wav = wav_bytes(y, sample_rate=features.sample_rate)
    try:
        figure = spectrogram_figure(log_mel(y=y, config=features), sample_rate=features.sample_rate, hop_length=features.hop_length,
                                    fmin=features.fmin, fmax=features.fmax, title=title)  # fmt: skip
        return figure_png(figure), wav, ""
    except (BirdcallError, ValueError) as err:
        return None, wav, f"spectrogram could not be drawn: {err}"


def _render(item: GalleryItem, features: FeatureConfig) -> GalleryItem:
    from dataclasses import replace

    if item.window is None:
        return replace(item, problem="no audio for this sample")
    title = f"{item.window.path.name}  {item.window.start_time:g}-{item.window.start_time + item.window.duration:g} s"  # drawn literally
    image, wav, problem = window_media(item.window, features, title=title)
    return replace(item, image_png=image, wav=wav, problem=problem)


def build_gallery(inputs: EvalInputs, *, count: int = 8) -> tuple[list[GalleryItem], list[GalleryItem]]:
    """The false positives and false negatives of :func:`select_errors`, with picture and audio when the
    window's audio can be read (with ``inputs.features``, else the default :class:`FeatureConfig`).

    Returns:
        ``(false positives, false negatives)``; an unreadable window leaves its item without picture and sound,
        and says why in ``problem``.
    """
    features = inputs.features or FeatureConfig()
    codes = inputs.labels.codes
    fp, fn = select_errors(inputs.y_true, inputs.y_score, count=count)
    out = []
    for kind, pairs in ((FALSE_POSITIVE, fp), (FALSE_NEGATIVE, fn)):
        items = []
        for row, column in pairs:
            truth = tuple(codes[j] for j in np.flatnonzero(inputs.y_true[row]))
            window = inputs.windows[row] if inputs.windows is not None else None
            item = GalleryItem(kind, row, inputs.sample_ids[row], codes[column], float(inputs.y_score[row, column]), truth, window)
            items.append(_render(item, features) if inputs.windows is not None else item)
        out.append(items)
    return out[0], out[1]
