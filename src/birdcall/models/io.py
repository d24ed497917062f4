"""Model files: safetensors weights with the whole description (model, features, labels) in the header.

No pickle is ever involved: safetensors stores raw tensors plus a string-to-string metadata map, where we
keep one JSON document. Loading a file from an untrusted source therefore cannot execute code, which is
the guarantee ``torch.load(..., weights_only=True)`` aims at, without torch's unpickler at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..config import from_dict, to_dict
from ..data.labels import LabelSet
from ..errors import CheckpointError
from ..features import FeatureConfig
from ..fileio import atomic_path
from ..types import Pathlike
from .cnn import ModelConfig
from .zoo import BIRDNET_FAMILIES, create_model

__all__ = ["FORMAT", "save_model", "load_model", "read_model_info"]

FORMAT = "birdcall.model/1"


def save_model(model, path: Pathlike, *, labels: LabelSet, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (weights + model/feature config + labels + ``extra``) to ``path`` atomically."""
    if len(labels) != model.num_classes:
        raise CheckpointError(path, f"{len(labels)} labels for a model with {model.num_classes} outputs")
    meta = {
        "format": FORMAT,
        "model": to_dict(model.config),
        "features": to_dict(model.feature_config),
        "labels": labels.to_dict(),
        "extra": extra or {},
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"birdcall": json.dumps(meta)})
    return Path(path)


def _one_line(err: BaseException, limit: int = 300) -> str:
    return " ".join(str(err).split())[:limit]


def _check_header(p: Path, text: str) -> dict[str, Any]:
    """Parse and validate the ``birdcall`` header entry; every problem is a CheckpointError naming ``p``."""
    try:
        info = json.loads(text)
    except ValueError as err:  # json.JSONDecodeError, or a UnicodeDecodeError
        raise CheckpointError(p, f"birdcall metadata is not valid JSON ({_one_line(err)})") from None
    if not isinstance(info, dict):
        raise CheckpointError(p, f"birdcall metadata must be a JSON object, got {type(info).__name__}")
    if info.get("format") != FORMAT:
        raise CheckpointError(p, f"unsupported model format {info.get('format')!r} (expected {FORMAT})")
    for key in ("model", "features", "labels"):
        if key not in info:
            raise CheckpointError(p, f"birdcall metadata without {key!r}")
        if not isinstance(info[key], dict):
            raise CheckpointError(p, f"birdcall metadata {key!r} must be a JSON object, got {type(info[key]).__name__}")
    if not isinstance(info.get("extra", {}), dict):
        raise CheckpointError(p, f"birdcall metadata 'extra' must be a JSON object, got {type(info['extra']).__name__}")
    parsed: dict[str, Any] = {}
    for key, parse in (("model", lambda d: from_dict(ModelConfig, d)), ("features", lambda d: from_dict(FeatureConfig, d)), ("labels", LabelSet.from_dict)):
        try:
            parsed[key] = parse(info[key])
        except (ValueError, KeyError, TypeError) as err:  # ValueError covers ParameterError
            raise CheckpointError(p, f"malformed {key!r} in birdcall metadata ({type(err).__name__}: {_one_line(err)})") from None
    if len(parsed["labels"]) != parsed["model"].num_classes:
        raise CheckpointError(p, f"{len(parsed['labels'])} labels for a model with {parsed['model'].num_classes} outputs")
    return info


def read_model_info(path: Pathlike) -> dict[str, Any]:
    """The JSON header of a model file, without loading weights.

    The header is validated: valid JSON, this `FORMAT`, ``model``, ``features`` and ``labels`` objects that
    parse (`ModelConfig`, `FeatureConfig`, `LabelSet`), and as many labels as the model has outputs.

    Raises:
        CheckpointError: missing file, not a safetensors file, or a missing or malformed header; one line naming the file.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(p, "file not found")
    try:
        with safe_open(str(p), framework="pt") as handle:
            meta = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(p, f"not a birdcall model file ({' '.join(str(err).split())})") from None
    if "birdcall" not in meta:
        raise CheckpointError(p, "safetensors file without birdcall metadata")
    return _check_header(p, meta["birdcall"])


def load_model(path: Pathlike, *, device: str | torch.device = "cpu"):
    """Rebuild the model described in ``path`` and load its weights. Returns ``(model, labels, info)``.

    Raises:
        CheckpointError: see `read_model_info`; or weights that do not match the described model, or a model
            whose number of outputs differs from the number of labels.
        MissingExtraError: a head on BirdNET (``birdnet_probe`` family) without the BirdNET extra (names ``make birdnet``).
    """
    p = Path(path)
    info = read_model_info(p)
    labels = LabelSet.from_dict(info["labels"])
    if info["model"].get("arch") in BIRDNET_FAMILIES:  # a head on BirdNET: useless without the extra, say so now
        from ..birdnet import require_extra

        require_extra()
    try:
        model = create_model(from_dict(ModelConfig, info["model"]), features=from_dict(FeatureConfig, info["features"]))
    except (ValueError, KeyError, TypeError) as err:  # e.g. an unknown architecture or timm backbone (ParameterError)
        raise CheckpointError(p, f"cannot build the described model ({_one_line(err)})") from None
    try:
        from safetensors.torch import load_file

        state = load_file(str(p), device=str(device))
        model.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError, SafetensorError, TypeError) as err:
        raise CheckpointError(p, f"weights do not match the described model ({_one_line(err)})") from None
    if len(labels) != model.num_classes:  # the header check compares with the config; this with the built model
        raise CheckpointError(p, f"{len(labels)} labels for a model with {model.num_classes} outputs")
    model.to(device).eval()
    return model, labels, info
