"""Workflows: several library steps run together for one purpose, on the ordinary code paths.

``demo``: synthesise a chorus data set, train, predict its soundscapes and score them (`birdcall demo`).
"""

from .demo import DemoConfig as DemoConfig
from .demo import DemoResult as DemoResult
from .demo import run_demo as run_demo

__all__ = ["DemoConfig", "DemoResult", "run_demo"]
