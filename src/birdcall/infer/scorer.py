"""Scorers: anything that turns a batch of raw waveform windows into species probabilities.

A scorer is called as ``scorer(windows)`` with ``(batch, num_samples)`` float32 audio at
``scorer.features.sample_rate`` and returns ``(batch, len(scorer.labels))`` float32 probabilities.
:func:`load_scorer` opens any model a user can point at (``--model``) with the chosen backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..data.labels import LabelSet
from ..errors import ParameterError
from ..features import FeatureConfig
from ..types import Pathlike

__all__ = ["Scorer", "TorchScorer", "load_scorer", "BACKENDS"]

BACKENDS = ("torch", "onnx", "openvino")


@runtime_checkable
class Scorer(Protocol):
    labels: LabelSet
    features: FeatureConfig

    def __call__(self, windows: np.ndarray) -> np.ndarray: ...


class TorchScorer:
    """A birdcall torch model as a :class:`Scorer` (sigmoid probabilities, no gradients)."""

    def __init__(self, model, *, labels: LabelSet | None = None, threads: int | None = None):
        import torch

        self.torch = torch
        self.model = model.eval()
        self.labels = labels
        self.features: FeatureConfig = model.feature_config
        if threads:
            torch.set_num_threads(threads)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        from ..models import clip_logits

        with self.torch.inference_mode():
            x = self.torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
            return self.torch.sigmoid(clip_logits(self.model(x))).float().numpy()


def load_scorer(model: Pathlike, *, backend: str = "torch", threads: int | None = None) -> Scorer:
    """Open ``model`` as a :class:`Scorer`.

    Args:
        model: a birdcall checkpoint (``.safetensors``).
        backend: ``"torch"``, ``"onnx"`` or ``"openvino"``.
        threads: intra-op threads of the backend (None: its default).

    Raises:
        ParameterError: unknown backend, or a model file the backend cannot run.
        CheckpointError: the checkpoint is missing or malformed.
    """
    if backend not in BACKENDS:
        raise ParameterError(f"backend must be one of {BACKENDS}, got {backend!r}")
    path = Path(model)
    if backend == "torch":
        if path.suffix != ".safetensors":
            raise ParameterError(f"{path}: the torch backend runs birdcall checkpoints (.safetensors)")
        from ..models import load_model

        net, labels, _ = load_model(path)
        return TorchScorer(net, labels=labels, threads=threads)
    raise ParameterError(f"{path}: backend {backend!r} is not available yet")
