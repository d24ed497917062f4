"""Fixtures shared by the unit tests of several packages."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def eval_dataset(tmp_path_factory):
    """A generated BirdCLEF-layout data set: 3 species x 3 WAV clips at 24 kHz and one 15-s soundscape with its
    solution (the inputs of `birdcall evaluate`)."""
    from birdcall.synth import make_dataset

    root = tmp_path_factory.mktemp("eval_data")
    return make_dataset(root, num_species=3, seed=11, clips_per_species=3, num_background=0, num_soundscapes=1, soundscape_duration=15.0,
                        audio_format="wav", sample_rate=24_000)  # fmt: skip


@pytest.fixture(autouse=True)
def _cache_home(tmp_path_factory, monkeypatch):
    """birdcall's cache folder (audio-check records...) under the test's temporary tree, never the user's."""
    monkeypatch.setenv("BIRDCALL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "birdcall-cache"))


@pytest.fixture
def standin():
    """BirdNET replaced by the deterministic stand-in (8 kHz, 3-s segments) as the process's shared model, with the
    last-batch feature memo of the birdnet_probe models cleared before and after."""
    from birdcall.birdnet import using_model
    from birdcall.models import probe as probe_module
    from birdcall.testing.birdnet import StandInBirdNet

    model = StandInBirdNet(sample_rate=8000, segment_samples=3 * 8000)
    with using_model(model):
        probe_module._LAST.clear()
        yield model
    probe_module._LAST.clear()
