"""Opening models for inference, and the digests that identify them in a run's settings.

:func:`open_model` turns what a user names (a checkpoint, a run folder, an exported ONNX or OpenVINO model, a list
of them, or a Scorer object) into a :class:`~birdcall.infer.scorer.Scorer`; :func:`open_embedder` does the same
for an :class:`~birdcall.infer.scorer.Embedder`. :data:`MODEL_SUFFIXES` is the one map from a model file's suffix
to the backend that opens it; :func:`model_backend` and :func:`model_digest` say what a run records about the model.

With ``auto_export=True`` and no backend named (what ``predict`` and ``analyze`` do), :func:`open_scorer` runs a
torch checkpoint (or each checkpoint of a run folder) through its cached OpenVINO export
(:mod:`birdcall.infer.cache`), and falls back to torch with one :class:`BackendWarning` saying why when there is
none; OpenVINO then runs :func:`default_streams` streams unless told otherwise.

:func:`model_header` and :func:`model_licences` read what a model file says about itself without loading its
weights (no torch for an exported model); :func:`model_card` sums them up for a model a user names.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

from ..birdnet.model import BIRDNET_FAMILIES, BIRDNET_LICENSE, NON_COMMERCIAL_NOTE
from ..errors import BirdcallError, ParameterError
from ..fileio import hash_files
from ..types import Pathlike
from .cache import cached_export
from .ensemble import EnsembleScorer, load_ensemble, run_models
from .scorer import BIRDNET, load_embedder, load_scorer

__all__ = [
    "MODEL_SUFFIXES", "BackendWarning", "ModelCard", "OpenedModel", "default_streams", "is_embedder", "is_scorer", "model_backend", "model_card",
    "model_digest", "model_header", "model_licences", "open_embedder", "open_model", "open_scorer", "suffix_backend",
]  # fmt: skip

MODEL_SUFFIXES = {".safetensors": "torch", ".onnx": "onnx", ".xml": "openvino"}
"""The backend that opens a model file, by its (lower-case) suffix."""


def suffix_backend(path: Path) -> str | None:
    """The backend that opens the model file ``path`` by its suffix (:data:`MODEL_SUFFIXES`), None for another suffix."""
    return MODEL_SUFFIXES.get(Path(path).suffix.lower())


class BackendWarning(UserWarning):
    """A checkpoint runs on torch because its OpenVINO export could not be used (the message says why)."""


class OpenedModel(NamedTuple):
    """What :func:`open_scorer` opened: the scorer, the backend that runs it and, for a cached export, which."""

    scorer: Any
    backend: str | None  # "torch", "onnx", "openvino"; comma-separated for a list; None for a Scorer object
    note: str = ""  # e.g. "cached export of best.safetensors"


def default_streams() -> int:
    """OpenVINO CPU streams when none are asked for: one per core, at most 2 (each batch split across them)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def open_model(model: Any, *, backend: str | None = None, threads: int | None = None, streams: int | None = None, frontend: str = "auto"):
    """Open ``model`` as a :class:`~birdcall.infer.scorer.Scorer`; :func:`open_scorer` without ``auto_export``.

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
    return open_scorer(model, backend=backend, threads=threads, streams=streams, frontend=frontend).scorer


def open_scorer(
    model: Any, *, backend: str | None = None, threads: int | None = None, streams: int | None = None, frontend: str = "auto",
    auto_export: bool = False,
) -> OpenedModel:
    """Open ``model`` as a :class:`~birdcall.infer.scorer.Scorer` and say which backend runs it.

    Args:
        model, backend, threads, streams, frontend: as in :func:`open_model`.
        auto_export: with ``backend=None``, run each ``.safetensors`` checkpoint (of a run folder too) through
            its cached, parity-checked OpenVINO export (:func:`~birdcall.infer.cache.cached_export`), or torch
            with a :class:`BackendWarning` when there is none. OpenVINO runs ``streams`` or :func:`default_streams`.

    Raises:
        As :func:`open_model`.
    """
    if is_scorer(model):
        return OpenedModel(model, None)
    if isinstance(model, (list, tuple)):  # several models (files or run folders, any formats): their mean
        if not model:
            raise ParameterError("no model given")
        opened = [open_scorer(m, backend=backend, threads=threads, streams=streams, frontend=frontend, auto_export=auto_export) for m in model]
        notes = "; ".join(o.note for o in opened if o.note)
        return OpenedModel(EnsembleScorer([o.scorer for o in opened]), ",".join(str(o.backend) for o in opened), notes)
    path = Path(model)
    if not path.exists():
        raise ParameterError(f"{path}: model not found")
    auto = auto_export and backend is None
    if path.is_dir():
        if not auto:
            if backend == "openvino" and streams is None:
                streams = default_streams()
            return OpenedModel(load_ensemble(path, backend=backend or "torch", threads=threads, streams=streams, frontend=frontend), backend or "torch")
        members = [_open_file(p, None, threads, streams, frontend, auto=True) for p in run_models(path)]
        backends = list(dict.fromkeys(m.backend for m in members))
        notes = [m.note for m in members if m.note]
        note = notes[0] if len(notes) == 1 else (f"cached exports of {len(notes)} checkpoints" if notes else "")
        return OpenedModel(EnsembleScorer([m.scorer for m in members]), "+".join(backends), note)
    return _open_file(path, backend, threads, streams, frontend, auto=auto)


def _open_file(path: Path, backend: str | None, threads: int | None, streams: int | None, frontend: str, *, auto: bool) -> OpenedModel:
    chosen = backend or suffix_backend(path)
    if chosen is None:
        raise ParameterError(f"{path}: unknown model format; expected {', '.join(MODEL_SUFFIXES)} or a run folder (or pass --backend)")
    if auto and chosen == "torch":
        found = cached_export(path)
        if found.path is not None:
            scorer = load_scorer(found.path, backend="openvino", threads=threads, streams=streams or default_streams(), frontend=frontend)
            return OpenedModel(scorer, "openvino", f"{'new' if found.exported else 'cached'} export of {path.name}")
        if not found.expected:
            warnings.warn(f"{path}: running on torch: {found.reason}", BackendWarning, stacklevel=3)
        return OpenedModel(load_scorer(path, backend="torch", threads=threads, frontend="auto"), "torch")
    if chosen == "openvino" and streams is None:
        streams = default_streams()
    return OpenedModel(load_scorer(path, backend=chosen, threads=threads, streams=streams, frontend=frontend), chosen)



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


# ------------------------------------------------------------------------------------------------ headers


def model_header(file: Path) -> tuple[dict, Any, dict]:
    """``(model description, FeatureConfig, extra)`` of one model file, without loading its weights.

    A ``.safetensors`` checkpoint's header, an ``.onnx`` or ``.xml`` export's metadata; neither imports torch (a
    checkpoint served through its cached OpenVINO export never needs it), so a checkpoint's header is read here
    as :func:`birdcall.models.save_model` writes it and checked only as far as these fields go; loading the
    model checks all of it (:func:`birdcall.models.read_model_info`). Exports carry no ``extra``, hence no
    licence of their own: :func:`model_licences` still finds BirdNET's from the model's family.

    Raises:
        ParameterError: another suffix.
        CheckpointError: a malformed model file.
    """
    suffix = Path(file).suffix.lower()
    if suffix == ".safetensors":
        import json

        from safetensors import SafetensorError, safe_open

        from ..config import from_dict
        from ..errors import CheckpointError
        from ..features.config import FeatureConfig

        try:
            with safe_open(str(file), framework="numpy") as handle:
                info = json.loads((handle.metadata() or {})["birdcall"])
            model, extra = info["model"], info.get("extra") or {}
            if not isinstance(model, dict) or not isinstance(extra, dict):
                raise TypeError("'model' and 'extra' must be JSON objects")
            return model, from_dict(FeatureConfig, info["features"]), extra
        except (SafetensorError, OSError, ValueError, KeyError, TypeError) as err:  # ValueError covers ParameterError and JSON errors
            raise CheckpointError(file, f"not a birdcall model file or a malformed header ({type(err).__name__}: {' '.join(str(err).split())[:200]})") from None
    if suffix in (".onnx", ".xml"):
        from ..export import read_export_info

        _, features, info = read_export_info(file)
        return info.get("model") or {}, features, {}
    raise ParameterError(f"{file}: unknown model format; expected .safetensors, .onnx, .xml or a run folder")


def model_licences(model: dict, extra: dict) -> list[str]:
    """Every licence a model header names: its backbone's (``extra.backbone.license``), its own
    (``extra.license``), its teachers' (``extra.teachers``, recursively); BirdNET's when the model is built on
    BirdNET (its family), even if the header does not say so (an ONNX export of one, say)."""
    found: list[str] = []
    backbone = extra.get("backbone")
    if isinstance(backbone, dict) and isinstance(backbone.get("license"), str):
        found.append(backbone["license"])
    if isinstance(extra.get("license"), str):
        found.append(extra["license"])
    stack = list(extra.get("teachers") or []) if isinstance(extra.get("teachers"), list) else []
    while stack:
        entry = stack.pop(0)
        if isinstance(entry, dict):
            if isinstance(entry.get("license"), str):
                found.append(entry["license"])
            if isinstance(entry.get("teachers"), list):
                stack.extend(entry["teachers"])
    if model.get("arch") in BIRDNET_FAMILIES:
        found.append(BIRDNET_LICENSE)
    return found


class ModelCard(NamedTuple):
    """What a model (a file or a run folder) says about itself, as :func:`model_card` reads it.

    Attributes:
        name: the file or folder name.
        files: its model files (a run folder's members, in order).
        arch: architecture family of the first file (``cnn``, ``sed``... None when not recorded).
        backbone: its backbone (None when not recorded).
        license: BirdNET's when any file is built on it, else the first licence a header names, else None
            (the model's terms are its owner's: birdcall records none for models it trains from scratch).
        note: the non-commercial note that goes with BirdNET's licence, or a header's own note (None: none).
    """

    name: str
    files: tuple[str, ...]
    arch: str | None
    backbone: str | None
    license: str | None
    note: str | None


def model_card(model: Pathlike) -> ModelCard:
    """Read :class:`ModelCard` of a model file or run folder from its headers (no weights loaded).

    Raises:
        ParameterError: a missing path or an unknown model format.
        CheckpointError: a malformed model file, or a folder without models.
    """
    path = Path(model)
    if not path.exists():
        raise ParameterError(f"{path}: model not found")
    files = run_models(path) if path.is_dir() else [path]
    headers = [model_header(f) for f in files]
    licences = [lic for m, _, extra in headers for lic in model_licences(m, extra)]
    licence = BIRDNET_LICENSE if BIRDNET_LICENSE in licences else (licences[0] if licences else None)
    notes = [extra.get("note") for _, _, extra in headers if isinstance(extra.get("note"), str)]
    note = NON_COMMERCIAL_NOTE if licence == BIRDNET_LICENSE else (notes[0] if notes else None)
    first = headers[0][0]
    arch, backbone = first.get("arch"), first.get("backbone")
    return ModelCard(path.name, tuple(str(f) for f in files), str(arch) if arch else None, str(backbone) if backbone else None, licence, note)
