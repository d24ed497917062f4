"""Training-state checkpoints for exact resume: model, optimiser, schedule, EMA, history and best score.

Written atomically after every epoch as ``train_state.pt``. Only tensors and plain Python values go in, so
it loads with ``torch.load(..., weights_only=True)``: a checkpoint from elsewhere cannot run code. The data
order and augmentation draws are reseeded from ``(seed, epoch)`` at each epoch start, so no RNG state needs
saving for the resumed run to repeat the uninterrupted one exactly. ``fit`` also stores the run's
``fingerprint`` (config and clip-table digests, :func:`birdcall.train.rundir.run_fingerprint`) so that a resume
with another config or data is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..fileio import atomic_path
from ..layout import STATE
from ..types import Pathlike

__all__ = ["STATE_FILE", "save_train_state", "load_train_state"]

STATE_FILE = STATE  # the file name is birdcall.layout's
_FORMAT = "birdcall.train_state/1"


def save_train_state(path: Pathlike, **state: Any) -> Path:
    """Save ``state`` (state dicts, ints, floats, strings, lists/dicts of them) atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": _FORMAT, **state}, tmp)
    return Path(path)


def load_train_state(path: Pathlike) -> dict[str, Any]:
    """Load a training state saved by :func:`save_train_state` (``weights_only=True``: no arbitrary unpickling)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(p, "no training state to resume from")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several unrelated types for bad or unsafe files
        raise CheckpointError(p, f"cannot load training state ({' '.join(str(err).split())[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise CheckpointError(p, "not a birdcall training state")
    return state
