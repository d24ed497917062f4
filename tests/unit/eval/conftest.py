"""Small evaluation inputs built in code: clips synthesised with birdcall.testing.signals, hand-made scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from birdcall.audio import write_audio
from birdcall.data.labels import LabelSet
from birdcall.eval import EvalInputs, WindowRef
from birdcall.features import FeatureConfig
from birdcall.testing.signals import tone, white_noise

# 16 kHz, 1-s windows: cheap to load, draw and embed.
FEATURES = FeatureConfig(sample_rate=16_000, n_fft=512, hop_length=256, n_mels=32, fmin=50.0, fmax=8000.0, clip_duration=1.0)
CODES = ("amecro", "barswa", "cangoo")


def write_clips(folder, count: int, *, rng: np.random.Generator, sample_rate: int = 16_000) -> list:
    """``count`` 1-s WAV clips: a tone at a different pitch in each, over a little white noise."""
    paths = []
    for i in range(count):
        y = tone(frequency_hz=500.0 + 250.0 * i, duration=1.0, sample_rate=sample_rate, amplitude=0.3)
        y = y + white_noise(duration=1.0, sample_rate=sample_rate, rng=rng, rms=0.01)
        paths.append(write_audio(folder / f"clip_{i:02d}.wav", y, sample_rate))
    return paths


def make_scores(rng: np.random.Generator):
    """12 clips of 3 species, primary labels 4 per species, a few secondaries; scores correlated with truth."""
    primary = np.repeat([0, 1, 2], 4)
    y_true = np.zeros((12, 3), dtype=np.int8)
    y_true[np.arange(12), primary] = 1
    y_true[[0, 5, 9], [1, 2, 0]] = 1
    y_score = np.clip(0.55 * y_true + rng.uniform(0.0, 0.45, size=(12, 3)), 0.0, 1.0)
    return y_true, y_score, primary


def make_full_inputs(folder, rng: np.random.Generator) -> EvalInputs:
    """EvalInputs with every optional part: primary labels, audio windows (in ``folder``), embeddings, history."""
    y_true, y_score, primary = make_scores(rng)
    paths = write_clips(folder / "clips", len(y_true), rng=rng)
    embeddings = (np.eye(3)[primary] * 5.0 + rng.normal(0, 0.3, size=(12, 3))).astype(np.float32)
    history = pd.DataFrame({"epoch": [1, 2, 1, 2], "fold": [0, 0, 1, 1], "train_loss": [0.7, 0.5, 0.72, 0.55],
                            "val_loss": [0.69, 0.6, 0.7, 0.62], "padded_cmap": [0.8, 0.9, 0.79, 0.88]})  # fmt: skip
    return EvalInputs(
        "run", y_true, y_score, LabelSet(CODES, common_names=("American Crow", "Barn Swallow", "Canada Goose")),
        tuple(p.name for p in paths), primary=primary, windows=tuple(WindowRef(p, 0.0, 1.0) for p in paths),
        embeddings=embeddings, embedding_rows=np.arange(12), embedding_source="test embeddings", history=history,
        features=FEATURES, source={"run": str(folder / "run")},
    )  # fmt: skip


@pytest.fixture
def scores(rng):
    return make_scores(rng)


@pytest.fixture
def full_inputs(tmp_path, rng):
    return make_full_inputs(tmp_path, rng)


@pytest.fixture
def bare_inputs(scores):
    """EvalInputs of soundscape-like windows: no primary labels, audio, embeddings or history."""
    y_true, y_score, _ = scores
    return EvalInputs("submission", y_true, y_score, LabelSet(CODES), tuple(f"sc_{5 * (i + 1)}" for i in range(len(y_true))),
                      source={"solution": "solution.csv", "submission": "submission.csv"})  # fmt: skip


# 5-s windows at 16 kHz: the synthetic soundscape solution has 5-s rows.
MODEL_FEATURES = FeatureConfig(sample_rate=16_000, n_fft=512, hop_length=512, n_mels=32, fmin=50.0, fmax=8000.0, clip_duration=5.0)


def save_test_model(path, codes, *, seed: int = 0):
    """An untrained ``test_cnn`` over ``codes`` saved at ``path`` (weights drawn from ``seed``)."""
    import torch

    from birdcall.models import create_model, save_model

    torch.manual_seed(seed)
    model = create_model("test_cnn", num_classes=len(codes), features=MODEL_FEATURES).eval()
    save_model(model, path, labels=LabelSet(tuple(codes)))
    return model
