"""The cached OpenVINO export a detections/submission run gives a torch checkpoint by default (birdcall.infer.cache):
made once, reused, never used when it does not match, and torch with one warning when it cannot be made."""

import json
import threading
import warnings

import numpy as np
import pandas as pd
import pytest

from birdcall.audio import write_audio
from birdcall.data.labels import LabelSet
from birdcall.errors import ExportError
from birdcall.features import FeatureConfig
from birdcall.infer import cache
from birdcall.infer.models import BackendWarning, default_streams, open_scorer
from birdcall.infer.run import DetectionOptions, EngineOptions, run_inference
from birdcall.testing.signals import tone

pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")

LABELS = LabelSet(("aa", "bb", "cc"))
RATE = 32_000


@pytest.fixture
def checkpoint(tmp_path):
    import torch

    from birdcall.models import create_model, save_model

    state = torch.random.get_rng_state()
    torch.manual_seed(3)
    model = create_model("test_cnn", num_classes=3, features=FeatureConfig(n_mels=32, n_fft=512, hop_length=256, clip_duration=1.0))
    torch.random.set_rng_state(state)
    return save_model(model, tmp_path / "model" / "best.safetensors", labels=LABELS)


@pytest.fixture
def audio(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    for name, seconds in [("a", 2.5), ("b", 1.0)]:
        write_audio(folder / f"{name}.wav", tone(frequency_hz=700.0, duration=seconds, sample_rate=RATE, amplitude=0.3), RATE)
    return folder


@pytest.fixture
def exports(monkeypatch):
    """Count the real exports."""
    calls = []
    real = cache._export

    def counting(checkpoint, xml):
        calls.append(checkpoint)
        real(checkpoint, xml)

    monkeypatch.setattr(cache, "_export", counting)
    return calls


def cache_dirs(checkpoint):
    root = checkpoint.parent / cache.CACHE_DIR
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


@pytest.mark.integration
def test_a_checkpoint_runs_on_its_cached_export_made_once(checkpoint, exports):
    from birdcall.fileio import hash_files

    first = open_scorer(checkpoint, auto_export=True)
    digest = hash_files([checkpoint])
    xml = checkpoint.parent / cache.CACHE_DIR / f"openvino-{digest[:16]}" / "model.xml"
    assert (first.backend, first.note) == ("openvino", "new export of best.safetensors")
    assert first.scorer.path == xml and xml.with_suffix(".bin").is_file()
    assert json.loads((xml.parent / "source.json").read_text())["sha256"] == digest
    assert int(first.scorer.compiled.get_property("NUM_STREAMS")) == default_streams()
    mtime = xml.stat().st_mtime_ns
    second = open_scorer(checkpoint, auto_export=True)
    assert (second.backend, second.note) == ("openvino", "cached export of best.safetensors")
    assert len(exports) == 1 and xml.stat().st_mtime_ns == mtime
    assert cache_dirs(checkpoint) == [xml.parent.name]  # no temporary left
    assert open_scorer(checkpoint).backend == "torch"  # open_model's default is unchanged


def fake_export(calls):
    def export(checkpoint, xml):  # the cache logic only: no OpenVINO
        calls.append(checkpoint)
        xml.write_text("<net/>")
        xml.with_suffix(".bin").write_bytes(b"\0" * 8)

    return export


@pytest.mark.parametrize("tamper", ["corrupt_xml", "truncated_bin", "other_digest"])
def test_a_cache_that_does_not_match_is_exported_again(checkpoint, tamper):
    calls = []
    xml = cache.cached_export(checkpoint, export=fake_export(calls)).path
    if tamper == "corrupt_xml":
        xml.write_text("<ne")
    elif tamper == "truncated_bin":
        xml.with_suffix(".bin").write_bytes(b"")
    else:  # a cache written for another checkpoint under this name
        source = json.loads((xml.parent / "source.json").read_text())
        (xml.parent / "source.json").write_text(json.dumps({**source, "sha256": "0" * 64}))
    again = cache.cached_export(checkpoint, export=fake_export(calls))
    assert again.path == xml and again.exported and len(calls) == 2
    assert xml.read_text() == "<net/>" and cache_dirs(checkpoint) == [xml.parent.name]
    assert not cache.cached_export(checkpoint, export=fake_export(calls)).exported  # valid again


def test_an_unwritable_folder_or_a_failed_export_runs_torch_with_one_warning(checkpoint, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache.tempfile, "mkdtemp", refuse)  # a read-only folder (tests may run as root)
    with pytest.warns(BackendWarning, match="running on torch: cannot write the export cache.*Permission denied") as caught:
        opened = open_scorer(checkpoint, auto_export=True)
    assert opened.backend == "torch" and len(caught) == 1 and not cache_dirs(checkpoint)
    monkeypatch.undo()

    def fail(checkpoint, xml):
        raise ExportError(f"{xml}: OpenVINO (f32) and ONNX Runtime differ by 1e-2")

    monkeypatch.setattr(cache, "_export", fail)
    with pytest.warns(BackendWarning, match="running on torch: no OpenVINO export .*differ by"):
        assert open_scorer(checkpoint, auto_export=True).backend == "torch"
    assert cache_dirs(checkpoint) == []  # the failed export's temporary is gone


def test_two_processes_exporting_at_once_both_end_with_the_valid_cache(checkpoint):
    barrier = threading.Barrier(2)

    calls = []

    def slow_export(checkpoint, xml):
        fake_export(calls)(checkpoint, xml)
        barrier.wait(timeout=10)  # both have written their temporary before either renames it

    results = [None, None]

    def run(i):
        results[i] = cache.cached_export(checkpoint, export=slow_export)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0].path == results[1].path and results[0].path.is_file()
    assert len(cache_dirs(checkpoint)) == 1 and cache.cached_export(checkpoint, export=slow_export).exported is False


def detections(out):
    return pd.read_parquet(out / "detections.parquet").sort_values(["file", "start_time", "code"]).reset_index(drop=True)


@pytest.mark.integration
def test_the_default_run_equals_torch_within_the_export_tolerance_and_torch_makes_no_cache(checkpoint, audio, tmp_path):
    from birdcall.export.metadata import TOLERANCE

    every = DetectionOptions(min_confidence=0.0)  # every (window, species): the same rows whatever the backend
    torch_run = run_inference(checkpoint, [audio], tmp_path / "torch", engine=EngineOptions(backend="torch"), detection=every)
    assert torch_run.backend == "torch" and not cache_dirs(checkpoint)
    fast = run_inference(checkpoint, [audio], tmp_path / "fast", detection=every)
    assert (fast.backend, fast.backend_note) == ("openvino", "new export of best.safetensors")
    assert json.loads((fast.state_dir / "run.json").read_text())["backend"] == "openvino"
    expected, actual = detections(tmp_path / "torch"), detections(tmp_path / "fast")
    assert len(expected) == 4 * len(LABELS)
    pd.testing.assert_frame_equal(actual.drop(columns="confidence"), expected.drop(columns="confidence"))
    np.testing.assert_allclose(actual["confidence"], expected["confidence"], rtol=0, atol=TOLERANCE)


def test_a_run_recorded_on_torch_resumes_on_torch(checkpoint, audio, tmp_path, exports):
    out = tmp_path / "out"
    first = run_inference(checkpoint, [audio / "a.wav"], out, engine=EngineOptions(backend="torch"))
    assert first.backend == "torch"
    again = run_inference(checkpoint, [audio], out)  # no --backend: the recorded torch run goes on
    assert again.backend == "torch" and again.resumed == 1 and not exports
    run_json = out / "run.json"
    settings = json.loads(run_json.read_text())
    del settings["backend"]  # a run.json from before backends were recorded
    run_json.write_text(json.dumps(settings))
    with warnings.catch_warnings():
        warnings.simplefilter("error", BackendWarning)
        last = run_inference(checkpoint, [audio], out)
    assert last.resumed == 2 and not exports and "backend" not in json.loads(run_json.read_text())


def test_the_next_export_removes_what_killed_exports_left_but_not_a_young_one(checkpoint):
    import os
    import time

    root = checkpoint.parent / cache.CACHE_DIR
    old_tmp, old_stale, young = root / ".openvino-0123456789abcdef.x1.tmp", root / ".openvino-0123456789abcdef.9.stale", root / ".openvino-fedcba9876543210.x2.tmp"
    for folder in (old_tmp, old_stale, young):
        folder.mkdir(parents=True)
        (folder / "model.bin").write_bytes(b"half")
    hours_ago = time.time() - 2 * cache.STALE_SECONDS
    for folder in (old_tmp, old_stale):
        os.utime(folder, (hours_ago, hours_ago))
    result = cache.cached_export(checkpoint, export=fake_export([]))
    assert result.exported
    assert not old_tmp.exists() and not old_stale.exists()
    assert young.exists()  # perhaps another process's export in progress
    assert cache_dirs(checkpoint) == sorted([young.name, result.path.parent.name])


@pytest.mark.integration
def test_a_cross_validated_run_folder_runs_every_fold_on_its_own_cached_export(tmp_path, audio, exports):
    """``predict``/``analyze --model RUN`` on a K-fold run: each fold's checkpoint is exported once into its own
    folder's cache, and the ensemble of the exports scores as the torch ensemble does."""
    import torch

    from birdcall.export.metadata import TOLERANCE
    from birdcall.models import create_model, save_model

    run = tmp_path / "run"
    features = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, clip_duration=1.0)
    state = torch.random.get_rng_state()
    for fold in (0, 1):
        torch.manual_seed(10 + fold)
        save_model(create_model("test_cnn", num_classes=3, features=features), run / f"fold{fold}" / "best.safetensors", labels=LABELS)
    torch.random.set_rng_state(state)

    every = DetectionOptions(min_confidence=0.0)
    fast = run_inference(run, [audio], tmp_path / "fast", detection=every)
    assert fast.backend == "openvino" and fast.backend_note == "cached exports of 2 checkpoints"
    assert exports == [run / "fold0" / "best.safetensors", run / "fold1" / "best.safetensors"]
    for fold in (0, 1):
        assert len(cache_dirs(run / f"fold{fold}" / "best.safetensors")) == 1
    again = run_inference(run, [audio], tmp_path / "again", detection=every)
    assert again.backend == "openvino" and len(exports) == 2  # reused, not exported again
    torch_run = run_inference(run, [audio], tmp_path / "torch", engine=EngineOptions(backend="torch"), detection=every)
    expected, actual = detections(tmp_path / "torch"), detections(tmp_path / "fast")
    assert len(expected) == 4 * len(LABELS)
    pd.testing.assert_frame_equal(actual.drop(columns="confidence"), expected.drop(columns="confidence"))
    np.testing.assert_allclose(actual["confidence"], expected["confidence"], rtol=0, atol=TOLERANCE)
