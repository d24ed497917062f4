"""Deprecated home of the demo workflow: use :mod:`birdcall.workflows` (``from birdcall.workflows import run_demo``)."""

import warnings

from .workflows.demo import DemoConfig, DemoResult, run_demo

__all__ = ["DemoConfig", "DemoResult", "run_demo"]

warnings.warn("birdcall.demo moved to birdcall.workflows (from birdcall.workflows import run_demo, DemoConfig)", DeprecationWarning, stacklevel=2)
