"""BirdNET features of a window or a clip: embeddings (and optionally logits) of 3-s sub-windows, pooled.

One pipeline serves training and inference, so a classifier trained on BirdNET features sees at inference
exactly what it saw in training: :func:`window_features` turns a batch of windows (what the inference engine
cuts from long recordings) into features, and :func:`clip_features` (what a training set's clips go through)
cuts the clip into the same windows and runs the same code. A 5-s clip gives the features of the 5-s window
that holds it, bit for bit, whatever the sample rate both are given at (the tests check it).

The steps, for a window of ``window`` seconds at any ``sample_rate``:

1. resample to BirdNET's 48 kHz (soxr, high quality; nothing is done at 48 kHz already);
2. cut sub-windows of ``segment`` seconds starting at ``0, step, 2 step, ...`` while they end inside the window
   (5-s window, 3-s segments, 1-s step: starts 0, 1 and 2 s);
3. run BirdNET on all sub-windows of the batch in one call: ``(embedding 1024, logits 6522)`` each;
4. pool over each window's sub-windows: ``meanmax`` (mean then max, 2048 values), ``mean`` or ``max``
   (1024); with ``logits=True`` the per-species logits, max-pooled, are appended (6522 more values).
   ``stack`` keeps every sub-window's vector, in order (``k * E`` values): what the ``birdnet_finetune``
   family trains on, where the "embedding" is a tensor inside BirdNET and the pooling comes after its tail.

Any model with BirdNET's call signature can stand in (``model(segments (n, segment_samples)) -> (embeddings,
logits)`` plus ``sample_rate`` and ``segment_samples`` attributes): :class:`~birdcall.birdnet.BirdNetModel`, or
the deterministic :class:`birdcall.testing.birdnet.StandInBirdNet` that tests use without the extra.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr

from .._validate import check_int, is_number
from ..audio import num_clips
from ..errors import ParameterError
from ..features.crop import crop_or_pad

__all__ = ["POOLS", "BirdNetFeatureConfig", "clip_features", "feature_dim", "window_features"]

POOLS = ("meanmax", "mean", "max", "stack")


@dataclass(frozen=True)
class BirdNetFeatureConfig:
    """How BirdNET features of a window are made (see the module docstring).

    Attributes:
        window: seconds of the window the features describe (the engine's window length).
        segment: seconds of each sub-window BirdNET sees (3 s for BirdNET V2.4).
        step: seconds between sub-window starts; starts ``0, step, ...`` while ``start + segment <= window``.
        pool: ``"meanmax"`` (mean and max over the sub-windows, concatenated), ``"mean"``, ``"max"``, or
            ``"stack"`` (every sub-window's vector, concatenated in order; no ``logits``).
        logits: also append BirdNET's per-species logits, max-pooled over the sub-windows.

    Raises:
        ParameterError: a non-finite or non-positive duration, ``segment > window``, an unknown ``pool``, or a
            ``logits`` that is not a bool.
    """

    window: float = 5.0
    segment: float = 3.0
    step: float = 1.0
    pool: str = "meanmax"
    logits: bool = False

    def __post_init__(self) -> None:
        for name in ("window", "segment", "step"):
            value = getattr(self, name)
            if not is_number(value) or not math.isfinite(value) or value <= 0:
                raise ParameterError(f"BirdNetFeatureConfig.{name} must be a finite number of seconds > 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.segment > self.window:
            raise ParameterError(f"BirdNetFeatureConfig.segment ({self.segment} s) must fit in the window ({self.window} s)")
        if self.pool not in POOLS:
            raise ParameterError(f"BirdNetFeatureConfig.pool must be one of {POOLS}, got {self.pool!r}")
        if not isinstance(self.logits, (bool, np.bool_)):
            raise ParameterError(f"BirdNetFeatureConfig.logits must be true or false, got {self.logits!r}")
        object.__setattr__(self, "logits", bool(self.logits))
        if self.pool == "stack" and self.logits:
            raise ParameterError("BirdNetFeatureConfig: pool 'stack' keeps the sub-window vectors only; logits must be false")

    @property
    def starts(self) -> tuple[float, ...]:
        """Start of each sub-window in the window, seconds (at least one: ``segment <= window``)."""
        count = int(math.floor((self.window - self.segment) / self.step + 1e-9)) + 1
        return tuple(i * self.step for i in range(count))


def feature_dim(config: BirdNetFeatureConfig, *, embedding_dim: int = 1024, num_classes: int = 6522) -> int:
    """Length of one feature vector: ``2 * embedding_dim`` (meanmax), ``k * embedding_dim`` (stack, ``k``
    sub-windows) or ``embedding_dim``, plus ``num_classes`` with ``logits``."""
    if config.pool == "stack":
        return embedding_dim * len(config.starts)
    return embedding_dim * (2 if config.pool == "meanmax" else 1) + (num_classes if config.logits else 0)


def _check_model(model, config: BirdNetFeatureConfig) -> tuple[int, int]:
    """The model's sample rate and segment length, checked against ``config.segment``."""
    rate, size = int(model.sample_rate), int(model.segment_samples)
    if round(config.segment * rate) != size:
        raise ParameterError(f"BirdNetFeatureConfig.segment={config.segment} s, but the model takes {size / rate:g}-s segments")
    return rate, size


def _resampled(windows: np.ndarray, sample_rate: int, rate: int, length: int) -> np.ndarray:
    """``(b, n)`` windows at ``sample_rate`` -> ``(b, length)`` at ``rate`` (soxr HQ, each window on its own)."""
    if sample_rate == rate:
        return windows
    out = np.zeros((len(windows), length), dtype=np.float32)
    for i, row in enumerate(windows):
        y = soxr.resample(row, sample_rate, rate, quality="HQ")
        out[i, : min(length, len(y))] = y[:length]
    return out


def _sub_window_outputs(windows: np.ndarray, *, sample_rate: int, model, config: BirdNetFeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings (b, k, E), logits (b, k, C))`` of the ``k`` sub-windows of each window (steps 1-3)."""
    rate, size = _check_model(model, config)
    x = _resampled(windows, sample_rate, rate, int(round(config.window * rate)))
    starts = [int(round(s * rate)) for s in config.starts]
    segments = np.stack([x[:, s : s + size] for s in starts], axis=1)  # (b, k, size)
    b, k = segments.shape[:2]
    embeddings, logits = model(segments.reshape(b * k, size))
    embeddings, logits = np.asarray(embeddings, dtype=np.float32), np.asarray(logits, dtype=np.float32)
    if embeddings.ndim != 2 or logits.ndim != 2 or len(embeddings) != b * k or len(logits) != b * k:
        raise ParameterError(f"the model returned shapes {embeddings.shape}, {logits.shape} for {b * k} segments")
    return embeddings.reshape(b, k, -1), logits.reshape(b, k, -1)


def _pool(embeddings: np.ndarray, logits: np.ndarray, config: BirdNetFeatureConfig) -> np.ndarray:
    """Pool ``(..., k, E)`` embeddings and ``(..., k, C)`` logits over ``k`` (step 4) -> ``(..., D)`` float32."""
    if config.pool == "stack":
        return np.ascontiguousarray(embeddings.reshape(*embeddings.shape[:-2], -1), dtype=np.float32)
    parts = []
    if config.pool in ("meanmax", "mean"):
        parts.append(embeddings.mean(axis=-2, dtype=np.float64).astype(np.float32))
    if config.pool in ("meanmax", "max"):
        parts.append(embeddings.max(axis=-2))
    if config.logits:
        parts.append(logits.max(axis=-2))
    return np.concatenate(parts, axis=-1)


def _window_samples(config: BirdNetFeatureConfig, sample_rate: int) -> int:
    check_int("sample_rate", sample_rate, min=1)
    return int(round(config.window * sample_rate))


def window_features(windows: np.ndarray, *, sample_rate: int, model, config: BirdNetFeatureConfig | None = None) -> np.ndarray:
    """BirdNET features of each window (inference: the windows the engine cuts from long recordings).

    Args:
        windows: ``(b, round(config.window * sample_rate))`` audio.
        sample_rate: rate of ``windows`` (any; resampled to the model's 48 kHz).
        model: a :class:`~birdcall.birdnet.BirdNetModel` or anything with its call signature.
        config: the features (None: the defaults).

    Returns:
        ``(b, feature_dim(config))`` float32.

    Raises:
        ParameterError: windows of another shape, or a ``config.segment`` the model does not take.
    """
    config = config or BirdNetFeatureConfig()
    n = _window_samples(config, sample_rate)
    x = np.asarray(windows, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != n:
        raise ParameterError(f"window_features: expected (batch, {n}) windows ({config.window} s at {sample_rate} Hz), got shape {x.shape}")
    if len(x) == 0:
        return np.zeros((0, feature_dim(config, embedding_dim=int(model.embedding_dim), num_classes=int(model.num_classes))), np.float32)
    embeddings, logits = _sub_window_outputs(x, sample_rate=sample_rate, model=model, config=config)
    return _pool(embeddings, logits, config)


def clip_features(samples: np.ndarray, sample_rate: int, model, config: BirdNetFeatureConfig | None = None) -> np.ndarray:
    """BirdNET features of a whole clip of any length (training: one vector per labelled clip).

    A clip no longer than the window is tiled to fill it (as ``features.pad="wrap"`` fills short clips, and as
    the engine fills a file shorter than one window) and gives exactly :func:`window_features` of that window.
    A longer clip is cut into windows every ``window`` seconds, the last zero-padded, as the engine cuts a
    recording; the pooling then runs over the sub-windows of all its windows, leaving out the sub-windows that
    hold less than half a segment of the clip (BirdNET's own analyser drops such short tails too). With
    ``pool="stack"`` (a fixed number of sub-windows) a longer clip gives the features of its first window, the
    part of a recording clip most likely to hold the labelled call (as BirdCLEF solutions train on the first
    seconds of each recording).

    Args:
        samples: ``(n,)`` mono audio, ``n > 0``.
        sample_rate: its rate (any; resampled to 48 kHz window by window, as in :func:`window_features`).
        model: as :func:`window_features`.
        config: the features (None: the defaults).

    Returns:
        ``(feature_dim(config),)`` float32.

    Raises:
        ParameterError: an empty or multi-channel clip, or a ``config.segment`` the model does not take.
    """
    config = config or BirdNetFeatureConfig()
    n = _window_samples(config, sample_rate)
    y = np.asarray(samples, dtype=np.float32)
    if y.ndim != 1 or len(y) == 0:
        raise ParameterError(f"clip_features: expected a non-empty (n,) mono clip, got shape {y.shape}")
    if config.pool == "stack":
        y = y[:n]
    if len(y) <= n:
        return window_features(crop_or_pad(y, num_samples=n, pad="wrap")[None], sample_rate=sample_rate, model=model, config=config)[0]
    count = num_clips(len(y), clip_samples=n, hop_samples=n, final_clip="pad")
    windows = np.zeros((count, n), dtype=np.float32)
    for i in range(count):
        piece = y[i * n : (i + 1) * n]
        windows[i, : len(piece)] = piece
    embeddings, logits = _sub_window_outputs(windows, sample_rate=sample_rate, model=model, config=config)
    segment = int(round(config.segment * sample_rate))
    starts = np.arange(count)[:, None] * n + np.array([int(round(s * sample_rate)) for s in config.starts])[None, :]
    keep = np.clip(len(y) - starts, 0, segment) >= segment / 2  # (count, k); the first window is whole: never empty
    return _pool(embeddings[keep], logits[keep], config)
