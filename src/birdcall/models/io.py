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
from .zoo import create_model

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


def read_model_info(path: Pathlike) -> dict[str, Any]:
    """The JSON header of a model file, without loading weights."""
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
    info = json.loads(meta["birdcall"])
    if info.get("format") != FORMAT:
        raise CheckpointError(p, f"unsupported model format {info.get('format')!r} (expected {FORMAT})")
    return info


def load_model(path: Pathlike, *, device: str | torch.device = "cpu"):
    """Rebuild the model described in ``path`` and load its weights. Returns ``(model, labels, info)``."""
    p = Path(path)
    info = read_model_info(p)
    try:
        model = create_model(from_dict(ModelConfig, info["model"]), features=from_dict(FeatureConfig, info["features"]))
        from safetensors.torch import load_file

        state = load_file(str(p), device=str(device))
        model.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError, SafetensorError, TypeError) as err:
        raise CheckpointError(p, f"weights do not match the described model ({' '.join(str(err).split())[:300]})") from None
    model.to(device).eval()
    return model, LabelSet.from_dict(info["labels"]), info
