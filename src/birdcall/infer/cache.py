"""The OpenVINO export that ``predict``/``analyze`` run in place of a torch checkpoint, cached beside it.

A birdcall checkpoint run through OpenVINO (host STFT, float32) scores the same windows as torch to the export's
parity tolerance, faster and in less memory (figures: `benchmarks/RESULTS.md`). :func:`cached_export`
exports a checkpoint once with :func:`birdcall.export.export_openvino` (which checks OpenVINO against ONNX
Runtime, and ONNX Runtime against torch, in float32) and keeps the result beside it::

    <checkpoint folder>/.birdcall-cache/openvino-<first 16 hex of the checkpoint's sha256>/
        model.xml, model.bin    the IR
        source.json             {"checkpoint": name, "sha256": full digest, "files": {name: sha256}}

A cache is used only when ``source.json`` names the checkpoint's full digest and the IR files still have the
digests it records; anything else (another checkpoint, an edited or truncated file) is exported again. The
folder is written under a temporary name and renamed into place, so a reader never sees half a cache, and two
processes exporting at once both end with a valid one; the temporary folders of killed exports are removed by
the next export once they are an hour old. Nothing here raises for the cache's sake: a folder that
cannot be written, a model family that cannot be exported or a failed parity check give ``None`` and the reason.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from ..errors import BirdcallError
from ..fileio import hash_files

__all__ = ["CACHE_DIR", "CachedExport", "cache_folder", "cached_export", "can_export", "remove_leftovers"]

CACHE_DIR = ".birdcall-cache"
_SOURCE = "source.json"
_FILES = ("model.xml", "model.bin")
# an export takes seconds to a minute here; a temporary folder this old was left by a killed process
STALE_SECONDS = 3600.0


class CachedExport(NamedTuple):
    """What :func:`cached_export` found: the IR to open (None: use torch), and why not when None."""

    path: Path | None
    reason: str = ""
    exported: bool = False  # exported by this call (False: an earlier run's cache was reused)
    expected: bool = False  # no export by design (OpenVINO not installed, a family that cannot be exported, a bad header): no warning


def cache_folder(checkpoint: Path, digest: str) -> Path:
    """The cache folder of the checkpoint with sha256 ``digest``."""
    return Path(checkpoint).parent / CACHE_DIR / f"openvino-{digest[:16]}"


def can_export(checkpoint: Path) -> str:
    """``""`` if OpenVINO can run ``checkpoint`` here, else why not (missing package, a family that runs BirdNET's
    TFLite graph inside)."""
    for package in ("openvino", "onnxruntime", "onnx"):
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed"
    from ..models import BIRDNET_FAMILIES
    from ..models.io import read_model_info

    try:
        arch = read_model_info(checkpoint)["model"]["arch"]
    except (BirdcallError, KeyError, TypeError) as err:
        return f"unreadable header ({err})"
    if arch in BIRDNET_FAMILIES and arch != "birdnet_finetune":
        return f"a {arch} model cannot be exported"
    return ""


def _valid(folder: Path, digest: str) -> bool:
    try:
        source = json.loads((folder / _SOURCE).read_text(encoding="utf-8"))
        return source.get("sha256") == digest and all(hash_files([folder / name]) == source["files"][name] for name in _FILES)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def cached_export(checkpoint: Path, digest: str | None = None, *, export=None) -> CachedExport:
    """The OpenVINO IR of ``checkpoint`` from its cache, exported (and parity-checked) first if there is none.

    Args:
        checkpoint: a birdcall ``.safetensors`` file.
        digest: its sha256 (computed when None).
        export: ``(checkpoint, xml_path) -> None`` that writes the IR (tests count calls); None: `export_openvino`.

    Returns:
        A :class:`CachedExport`; its ``path`` is None when the checkpoint must run on torch, with the reason.
    """
    checkpoint = Path(checkpoint)
    digest = digest or hash_files([checkpoint])
    folder = cache_folder(checkpoint, digest)
    if _valid(folder, digest):
        return CachedExport(folder / "model.xml")
    why = can_export(checkpoint)
    if why:
        return CachedExport(None, why, expected=True)  # by design, or a bad file that torch reports itself
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(folder.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    except OSError as err:
        return CachedExport(None, f"cannot write the export cache in {checkpoint.parent} ({err.strerror or err})")
    try:
        (export or _export)(checkpoint, tmp / "model.xml")
        files = {name: hash_files([tmp / name]) for name in _FILES}
        (tmp / _SOURCE).write_text(json.dumps({"checkpoint": checkpoint.name, "sha256": digest, "files": files}, indent=2) + "\n", encoding="utf-8")
        _move_into_place(tmp, folder, digest)
    except Exception as err:  # noqa: BLE001 - the exporters, OpenVINO and the file system raise many types: torch it is
        return CachedExport(None, f"no OpenVINO export ({' '.join(str(err).split())[:300]})")
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    if not _valid(folder, digest):
        return CachedExport(None, f"the export cache {folder} is not valid after writing it")
    return CachedExport(folder / "model.xml", exported=True)


def remove_leftovers(cache_dir: Path, *, older_than: float = STALE_SECONDS) -> list[Path]:
    """Remove what killed exports left in ``cache_dir`` (``.openvino-*.tmp`` and ``.*.stale`` folders) once they
    are ``older_than`` seconds old; younger ones may be another process's export in progress. Returns the removed."""
    now = time.time()
    removed = []
    for path in [*cache_dir.glob(".openvino-*.tmp"), *cache_dir.glob(".openvino-*.stale")]:
        with contextlib.suppress(OSError):
            if path.is_dir() and now - path.stat().st_mtime > older_than:
                shutil.rmtree(path)
                removed.append(path)
    return removed


def _move_into_place(tmp: Path, folder: Path, digest: str) -> None:
    """Rename ``tmp`` to ``folder``; a valid ``folder`` written meanwhile by another process is kept, an invalid
    one is moved aside and removed first."""
    for _ in range(3):
        try:
            os.rename(tmp, folder)
            return
        except OSError:
            if not folder.exists():
                raise
        if _valid(folder, digest):
            return  # another process got there first
        stale = folder.with_name(f".{folder.name}.{os.getpid()}.stale")
        with contextlib.suppress(OSError):
            os.rename(folder, stale)
        with contextlib.suppress(OSError):
            shutil.rmtree(stale)
    os.rename(tmp, folder)


def _export(checkpoint: Path, xml: Path) -> None:
    """``birdcall export --format openvino``: the IR checked against torch and ONNX Runtime in float32."""
    from ..export import export_openvino
    from ..models import load_model

    model, labels, _ = load_model(checkpoint)
    export_openvino(model, xml, labels=labels)
