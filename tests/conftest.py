"""Shared fixtures: seeded randomness and the location of the real NIPS4B data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


@pytest.fixture
def torch_seed():
    """Seed torch for one test and restore the global RNG state afterwards."""
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(1234)
    yield 1234
    torch.random.set_rng_state(state)


def _nips4b_dir() -> Path | None:
    env = os.environ.get("BIRDCALL_NIPS4B")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data" / "nips4b")
    for path in candidates:
        if (path / "train_metadata.csv").is_file():
            return path
    return None


@pytest.fixture(scope="session")
def nips4b_dir() -> Path:
    """The real NIPS4B data beside the project. Missing data skips locally but fails in CI (CI=true)."""
    path = _nips4b_dir()
    if path is None:
        message = "NIPS4B data not found beside the repo (../shared/data/nips4b) nor at $BIRDCALL_NIPS4B"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
