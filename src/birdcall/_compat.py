"""Import-order workarounds for the pinned torch/torchvision pair. Import this before ``timm``.

On the project's CPU machines torch is the local CPU wheel (2.13.0) while ``torchvision==0.28.0`` from PyPI is
a CUDA build whose C++ ops do not load; torchvision's Python side then fails at import with
"operator torchvision::nms does not exist", which breaks ``import timm``. Declaring the two op schemas it looks
up makes the import work. We only declare them when they are not registered already, so a normal install with
working torchvision kernels is untouched. The ops have no kernel here: calling them would raise, and nothing
in birdcall calls them.
"""

from __future__ import annotations

_LIBRARY = None  # keep the torch.library.Library alive for the life of the process


def ensure_torchvision_ops() -> None:
    global _LIBRARY
    import torch

    missing = [name for name in ("nms", "qnms") if not _op_registered(torch, name)]
    if not missing or _LIBRARY is not None:
        return
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    for name in missing:
        _LIBRARY.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


def _op_registered(torch, name: str) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
        return True
    except RuntimeError:
        return False


def import_timm():
    """Return the ``timm`` module, applying the workaround first."""
    ensure_torchvision_ops()
    import timm

    return timm
