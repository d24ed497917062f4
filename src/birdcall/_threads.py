"""torch's intra-op thread count for one block of work.

``torch.set_num_threads`` is process-wide: training or scoring with ``threads=1`` used to leave every later
torch call in the process (a notebook's next cell, the rest of a test session) on one thread. Library entry
points that take a ``threads`` option set it through :func:`torch_threads`, which puts the caller's count back.
torch is imported only when a count is given, so torch-free paths (ONNX, OpenVINO) stay torch-free.
"""

from __future__ import annotations

import contextlib
import functools
import sys

__all__ = ["keeps_torch_threads", "torch_threads"]


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run a block with ``threads`` torch intra-op threads (``None`` or 0: unchanged), then restore the count."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def keeps_torch_threads(func):
    """Decorate an entry point whose scorers may set torch's thread count: the caller's count is put back after it.

    torch is never imported here: when the caller had not imported it, there is no count of theirs to keep.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        torch = sys.modules.get("torch")
        before = torch.get_num_threads() if torch is not None else None
        try:
            return func(*args, **kwargs)
        finally:
            if before is not None and torch.get_num_threads() != before:
                torch.set_num_threads(before)

    return wrapper
