"""Fixtures of the augmentation tests: seeded test signals and a folder of background (no-call) recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from birdcall.audio import write_audio
from birdcall.testing.signals import chirp, pink_noise, white_noise

SAMPLE_RATE = 16_000


@pytest.fixture
def clip() -> np.ndarray:
    """Half a second of a 1-4 kHz chirp plus a little white noise: every transform has something to change."""
    y = chirp(start_hz=1000.0, end_hz=4000.0, duration=0.5, sample_rate=SAMPLE_RATE, amplitude=0.3)
    return (y + white_noise(rng=np.random.default_rng(3), duration=0.5, sample_rate=SAMPLE_RATE, rms=0.01)).astype(
        np.float32
    )


@pytest.fixture
def noise_dir(tmp_path: Path) -> Path:
    """``background/`` with a 2 s 16 kHz WAV (float) and a 1.5 s 22.05 kHz FLAC of pink noise."""
    folder = tmp_path / "background"
    rng = np.random.default_rng(11)
    write_audio(
        folder / "a.wav",
        pink_noise(rng=rng, duration=2.0, sample_rate=SAMPLE_RATE, rms=0.1),
        SAMPLE_RATE,
        subtype="FLOAT",
    )
    write_audio(folder / "sub" / "b.flac", pink_noise(rng=rng, duration=1.5, sample_rate=22_050, rms=0.1), 22_050)
    (folder / "notes.txt").write_text("not audio")
    return folder

