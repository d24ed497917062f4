"""BirdNET features cached on disk, so a probe's training windows go through BirdNET once.

BirdNET costs ~0.06 s per 3-s segment on a laptop core, ten thousand times what the head costs to train on
its output; a K-fold run, a resumed run or a rerun with another head would otherwise pay it again and again.
Each array is stored as ``<root>/<sha256 of its key>.npy`` (written atomically; read with
``allow_pickle=False``). The key is a JSON document of everything the array depends on: the audio files
(resolved path, size, modification time), the feature settings, the BirdNET model's digest and whatever the
caller adds (a window recipe and its seed). A changed file or setting gives another key; nothing is ever
read back for the wrong input. The default root is ``birdcall``'s user cache (:func:`birdcall.fileio.cache_home`),
never the data folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_path, cache_home

__all__ = ["FeatureStore", "file_key"]


def file_key(path: Path | str) -> list:
    """``[resolved path, size, mtime_ns]``: what identifies a file's content here (cheap; no hashing)."""
    p = Path(path).resolve()
    stat = p.stat()
    return [str(p), stat.st_size, stat.st_mtime_ns]


class FeatureStore:
    """Arrays computed once per key.

    Args:
        root: the cache folder (None: ``cache_home() / "birdnet-features"``).
        enabled: False computes every array afresh and stores nothing.
    """

    def __init__(self, root: Path | str | None = None, *, enabled: bool = True):
        self.root = Path(root) if root is not None else cache_home() / "birdnet-features"
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        return self.root / f"{digest}.npy"

    def get(self, key: dict[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The array stored under ``key``, or ``compute()`` stored there first (float32)."""
        path = self.path(key)
        if self.enabled and path.is_file():
            try:
                value = np.load(path, allow_pickle=False)
                self.hits += 1
                return value
            except (OSError, ValueError):  # a damaged cache entry is computed again and replaced
                pass
        value = np.ascontiguousarray(compute(), dtype=np.float32)
        self.misses += 1
        if self.enabled:
            self.root.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.save(handle, value, allow_pickle=False)
        return value
