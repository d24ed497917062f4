"""Opening models for inference, and the digests that identify them in a run's settings.

:func:`open_model` turns what a user names (a checkpoint, a run folder, an exported ONNX or OpenVINO model, a list
of them, or a Scorer object) into a :class:`~birdcall.infer.scorer.Scorer`; :func:`open_embedder` does the same
for an :class:`~birdcall.infer.scorer.Embedder`. :data:`MODEL_SUFFIXES` is the one map from a model file's suffix
to the backend that opens it; :func:`model_backend` and :func:`model_digest` say what a run records about the model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..errors import BirdcallError, ParameterError
from ..fileio import hash_files
from .ensemble import EnsembleScorer, load_ensemble, run_models
from .scorer import BIRDNET, load_embedder, load_scorer

__all__ = ["MODEL_SUFFIXES", "is_embedder", "is_scorer", "model_backend", "model_digest", "open_embedder", "open_model", "suffix_backend"]

MODEL_SUFFIXES = {".safetensors": "torch", ".onnx": "onnx", ".xml": "openvino"}
"""The backend that opens a model file, by its (lower-case) suffix."""


def suffix_backend(path: Path) -> str | None:
    """The backend that opens the model file ``path`` by its suffix (:data:`MODEL_SUFFIXES`), None for another suffix."""
    return MODEL_SUFFIXES.get(Path(path).suffix.lower())


def open_model(model: Any, *, backend: str | None = None, threads: int | None = None, streams: int | None = None, frontend: str = "auto"):
    """Open ``model`` as a :class:`~birdcall.infer.scorer.Scorer`.

    Args:
        model: a Scorer (returned as is); a ``.safetensors`` checkpoint; a run folder (an ensemble of its
            folds, :func:`~birdcall.infer.ensemble.load_ensemble`); an ``.onnx`` or OpenVINO ``.xml`` model; or a
            list of those, an :class:`~birdcall.infer.ensemble.EnsembleScorer` of their mean (a run folder
            counts as one member).
        backend: ``torch``, ``onnx`` or ``openvino``; None picks it from the suffix (torch for a folder).
        threads: intra-op threads of the backend.
        streams: OpenVINO CPU streams (each batch split across them); openvino backend only.
        frontend: where an exported model computes its STFT: ``"auto"``, ``"host"`` or ``"graph"``
            (:func:`~birdcall.infer.scorer.load_scorer`).

    Raises:
        ParameterError: a path that does not exist or that no backend opens, or ``streams``/``frontend`` with
            a backend they do not apply to.
        CheckpointError: a malformed model file.
    """
    if is_scorer(model):
        return model
    if isinstance(model, (list, tuple)):  # several models (files or run folders, any formats): their mean
        if not model:
            raise ParameterError("no model given")
        return EnsembleScorer([open_model(m, backend=backend, threads=threads, streams=streams, frontend=frontend) for m in model])
    path = Path(model)
    if not path.exists():
        raise ParameterError(f"{path}: model not found")
    if path.is_dir():
        return load_ensemble(path, backend=backend or "torch", threads=threads, streams=streams, frontend=frontend)
    chosen = backend or suffix_backend(path)
    if chosen is None:
        raise ParameterError(f"{path}: unknown model format; expected {', '.join(MODEL_SUFFIXES)} or a run folder (or pass --backend)")
    return load_scorer(path, backend=chosen, threads=threads, streams=streams, frontend=frontend)



def is_scorer(model: Any) -> bool:
    """Whether ``model`` is a Scorer object (callable, with ``labels`` and ``features``) rather than a path."""
    return callable(model) and hasattr(model, "labels") and hasattr(model, "features")


def open_embedder(model: Any, *, birdnet=None, threads: int | None = None):
    """Open ``model`` as an :class:`~birdcall.infer.scorer.Embedder` (``birdcall embed``).

    Args:
        model: an Embedder (returned as is); ``"birdnet"``; a ``.safetensors`` checkpoint; a training run folder
            with one model (its ``best.safetensors``). A run folder with several (folds, seeds) is refused: each
            model embeds into its own space, so there is no one embedding of the run; name one of its files.
        birdnet: BirdNET feature settings (:func:`~birdcall.infer.scorer.load_embedder`).
        threads: intra-op threads.

    Raises:
        ParameterError: a missing path, a run folder of several models, an exported model.
        MissingExtraError: ``"birdnet"`` without the BirdNET extra.
        CheckpointError: a malformed model file.
    """
    if is_embedder(model):
        return model
    if str(model) != BIRDNET:
        path = Path(model)
        if not path.exists():
            raise ParameterError(f"{path}: model not found (give {BIRDNET!r} or a birdcall .safetensors checkpoint)")
        if path.is_dir():
            models = run_models(path)
            if len(models) > 1:
                raise ParameterError(
                    f"{path}: a run folder with {len(models)} models (folds or seeds), each embedding into its own space; "
                    f"give one of them, e.g. --model {models[0]}"
                )
            model = models[0]
    return load_embedder(model, birdnet=birdnet, threads=threads)



def is_embedder(model: Any) -> bool:
    """Whether ``model`` is an Embedder object rather than a name or a path."""
    return callable(model) and all(hasattr(model, name) for name in ("dim", "settings", "sample_rate", "clip_duration"))


def model_backend(model: Any, backend: str | None) -> str | None:
    """The backend :func:`open_model` uses for ``model`` (None for a Scorer object; comma-separated for a list)."""
    if is_scorer(model):
        return None
    if isinstance(model, (list, tuple)):
        return ",".join(str(model_backend(m, backend)) for m in model)
    path = Path(model)
    return backend or ("torch" if path.is_dir() else suffix_backend(path))


def model_digest(model: Any, model_id: str | None) -> str | None:
    """sha256 over the bytes of the model files (the same on every machine), ``model_id`` for an object."""
    if model_id is not None:
        return model_id
    if is_scorer(model):
        return None
    if isinstance(model, (list, tuple)):  # an ensemble: its members' digests, in order
        return hashlib.sha256("|".join(str(model_digest(m, None)) for m in model).encode()).hexdigest()
    path = Path(model)
    if path.is_dir():
        try:
            files = run_models(path)
        except (ImportError, BirdcallError):
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (*MODEL_SUFFIXES, ".bin"))
    else:
        files = [path] + ([path.with_suffix(".bin")] if path.suffix.lower() == ".xml" and path.with_suffix(".bin").is_file() else [])
    return hash_files(files)
