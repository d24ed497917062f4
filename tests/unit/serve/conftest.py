"""Fixtures of the `birdcall serve` tests: a tiny ONNX model (exported once per session), generated recordings,
stand-in scorers that are slow or fail on purpose, and an app around any of them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from birdcall.audio import write_audio
from birdcall.data.labels import LabelSet
from birdcall.features import FeatureConfig
from birdcall.testing.signals import call_in_noise, tone

RATE = 32_000
SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
LABELS = LabelSet(("sp_a", "sp_b", "sp_c"), scientific_names=("Avis a", "Avis b", "Avis c"), common_names=("A bird", "B bird", "C bird"))


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory) -> Path:
    """An untrained ``test_cnn`` (seeded) exported to ONNX with :data:`LABELS`; 1-s windows at 32 kHz."""
    import torch

    from birdcall.export import export_onnx
    from birdcall.models import create_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model("test_cnn", num_classes=len(LABELS), features=SMALL).eval()
    return export_onnx(model, tmp_path_factory.mktemp("serve-model") / "tiny.onnx", labels=LABELS)


def write_recording(path: Path, seconds: float = 3.5, *, seed: int = 0) -> Path:
    """A tone then a synthetic call in noise, ``seconds`` long, written in the format of ``path``'s suffix."""
    rng = np.random.default_rng(seed)
    half = seconds / 2
    y = np.concatenate([tone(frequency_hz=1500.0, duration=half, sample_rate=RATE, amplitude=0.3),
                        call_in_noise(rng=rng, duration=seconds - half, call_start=0.1, call_duration=min(0.5, half / 2), sample_rate=RATE)[0]])  # fmt: skip
    return write_audio(path, y, RATE)


@pytest.fixture
def recording(tmp_path) -> Path:
    return write_recording(tmp_path / "rec.wav")


class StandInScorer:
    """A Scorer object: fixed probabilities per species, ``delay`` seconds per call, failing when ``fail`` is set."""

    def __init__(self, *, delay: float = 0.0, fail: bool = False):
        self.labels, self.features = LABELS, SMALL
        self.delay, self.fail = delay, fail
        self.calls = 0
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if self.fail:
                raise RuntimeError("the stand-in model failed on purpose")
            time.sleep(self.delay)
            return np.tile(np.array([[0.9, 0.5, 0.05]], dtype=np.float32), (len(windows), 1))
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def make_client(tmp_path, onnx_model):
    """``make_client(scorer=None, **config)``: a TestClient of the app over the ONNX model (or a Scorer object),
    uploads under ``tmp_path/uploads``; closed (lifespan ended) after the test."""
    from starlette.testclient import TestClient

    from birdcall.serve import ModelService, ServeConfig, create_app

    clients = []

    def make(scorer=None, *, raise_server_exceptions: bool = True, **settings):
        config = ServeConfig(model=str(onnx_model), tmp_dir=str(tmp_path / "uploads"), **settings)
        service = None
        if scorer is not None:
            service = ModelService(scorer, jobs=config.jobs, queue=config.queue, batch_size=config.batch_size, location=config.location())
        client = TestClient(create_app(config, service=service), raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def uploads_left(tmp_path: Path) -> list[str]:
    """Everything left in the test's upload folder (nothing, once every request is over)."""
    folder = tmp_path / "uploads"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []
