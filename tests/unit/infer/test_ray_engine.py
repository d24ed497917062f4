"""The Ray engine (birdcall.infer.ray_engine) against the local engine: the same bytes, resume after the driver is
killed, actors killed mid-file, a file that kills every actor, a corrupt file, segments of a long file.

One local Ray with 2 CPUs serves the module (the `ray_session` fixture); the driver-kill test runs the CLI in a
subprocess that joins it. Without the extra the tests skip, except in CI (the `ray` marker, tests/conftest.py).
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from birdcall.audio import write_audio
from birdcall.data.labels import LabelSet
from birdcall.errors import MissingExtraError
from birdcall.features import FeatureConfig
from birdcall.infer.run import DetectionOptions, EngineOptions, RayOptions, WindowOptions, run_inference
from birdcall.testing.signals import tone

RATE = 8000
LABELS = LabelSet(("sp_a", "sp_b", "sp_c"))
RAY = pytest.mark.ray
SLOW = pytest.mark.integration  # a Ray session takes seconds to start


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    import torch

    from birdcall.export import export_onnx
    from birdcall.models import create_model

    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    net = create_model("test_cnn", num_classes=3, features=FeatureConfig(sample_rate=RATE, n_mels=16, n_fft=256, hop_length=128, fmax=4000.0,
                                                                        clip_duration=1.0))
    torch.random.set_rng_state(state)
    return export_onnx(net.eval(), tmp_path_factory.mktemp("model") / "tiny.onnx", labels=LABELS)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Five files (one 13 s long, split into segments), a text file named .ogg and a truncated FLAC."""
    folder = tmp_path_factory.mktemp("audio")
    for i, seconds in enumerate([2.5, 3.0, 4.2, 13.3, 1.5]):
        write_audio(folder / f"rec{i}.flac", tone(frequency_hz=300.0 + 250 * i, duration=seconds, sample_rate=11025, amplitude=0.3), 11025)
    (folder / "notes.ogg").write_text("not audio")
    flac = write_audio(folder / "cut.flac", tone(frequency_hz=700.0, duration=3.0, sample_rate=RATE, amplitude=0.3), RATE)
    flac.write_bytes(flac.read_bytes()[:1500])
    return folder


def outputs(out: Path, kind: str) -> dict[str, bytes]:
    """The combined outputs of a run (what a user reads), by name."""
    if kind == "detections":
        names = ["detections.csv", "detections.parquet", "errors.csv", "raven_combined.selections.txt"]
        names += [str(p.relative_to(out)) for p in sorted(out.glob("raven/*")) + sorted(out.glob("audacity/*"))]
        return {name: (out / name).read_bytes() for name in names}
    state = out.parent / f".{out.name}.parts"
    return {"out": out.read_bytes(), "errors.csv": (state / "errors.csv").read_bytes()}


def finished(manifest: Path) -> list[dict]:
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.endswith("}")]
    return [r for r in records if r.get("status") in ("done", "failed")]


def ray_engine(batch_size: int = 4, **kw) -> EngineOptions:
    return EngineOptions(engine="ray", batch_size=batch_size, ray=RayOptions(**{"num_actors": 2, "segment_duration": 4.0, **kw}))


# ------------------------------------------------------------------------------------------------ without the extra


def test_without_ray_one_line_error_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(MissingExtraError, match=r"birdcall\[ray\]") as err:
        run_inference("missing.onnx", [tmp_path], tmp_path / "out", engine=EngineOptions(engine="ray"))
    assert "\n" not in str(err.value)
    from typer.testing import CliRunner

    from birdcall.cli import app

    result = CliRunner().invoke(app, ["analyze", "--engine", "ray", "--model", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "o"), str(tmp_path)])
    assert result.exit_code == 2 and "error: --engine ray needs the optional extra ray" in result.output


# ------------------------------------------------------------------------------------------------ same bytes


@RAY
@SLOW
@pytest.mark.parametrize("kind", ["detections", "submission", "scores"])
def test_ray_outputs_equal_the_local_engine(ray_session, onnx_model, audio, tmp_path, kind):
    suffix = {"detections": "", "submission": ".csv", "scores": ".parquet"}[kind]
    # overlapping windows (not for a submission: its row ids are the windows' end seconds); 4-s segments cut the
    # 13.3-s file mid-chunk
    window = WindowOptions(hop=None if kind == "submission" else 0.7, chunk_duration=2.0)
    detection = DetectionOptions(min_confidence=0.0) if kind == "detections" else None
    local = run_inference(onnx_model, [audio], tmp_path / f"local{suffix}", kind=kind, window=window, detection=detection,
                          engine=EngineOptions(batch_size=3))
    ray = run_inference(onnx_model, [audio], tmp_path / f"ray{suffix}", kind=kind, window=window, detection=detection, engine=ray_engine())
    assert ray.line() == local.line() == f"7 files, {27 if kind == 'submission' else 35} windows, 2 skipped"
    assert dict(ray.errors) == dict(local.errors)  # the corrupt and the non-audio file, with the local reasons
    assert outputs(tmp_path / f"ray{suffix}", kind) == outputs(tmp_path / f"local{suffix}", kind)


@RAY
@SLOW
def test_embeddings_equal_the_local_engine(ray_session, tmp_path, audio):
    import torch

    from birdcall.models import create_model, save_model

    torch.manual_seed(1)
    net = create_model("test_cnn", num_classes=3, features=FeatureConfig(sample_rate=RATE, n_mels=16, n_fft=256, hop_length=128, fmax=4000.0,
                                                                        clip_duration=1.0))
    checkpoint = save_model(net, tmp_path / "tiny.safetensors", labels=LABELS)
    # torch is not batch-invariant to the last bit (~2e-9 here) as ONNX Runtime is: one window a call, one thread, in both
    local = run_inference(checkpoint, [audio], tmp_path / "local.parquet", kind="embeddings", engine=EngineOptions(batch_size=1, threads=1))
    ray = run_inference(checkpoint, [audio], tmp_path / "ray.parquet", kind="embeddings", engine=ray_engine(batch_size=1, num_actors=1))
    assert ray.line() == local.line()
    assert outputs(tmp_path / "ray.parquet", "x") == outputs(tmp_path / "local.parquet", "x")


# ------------------------------------------------------------------------------------------------ actors that die


class PoisonScorer:
    """Each window's mean, first, last sample; SIGKILLs its own process (an actor) on a window of constant 0.25,
    every time (``marker`` None) or only until ``marker`` exists (created just before the kill: a file that kills
    one actor, then scores on the next)."""

    labels = LabelSet(("mean", "first", "last"))
    features = FeatureConfig(sample_rate=RATE, n_fft=256, hop_length=128, n_mels=16, fmin=0.0, fmax=4000.0, clip_duration=1.0)

    def __init__(self, marker: str | None):
        self.marker = marker

    def __call__(self, windows):
        if np.any(np.all(windows == np.float32(0.25), axis=1)) and (self.marker is None or not os.path.exists(self.marker)):
            if self.marker is not None:
                Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return np.stack([windows.mean(axis=1), windows[:, 0], windows[:, -1]], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory):
    """Four clean files and one (poison.wav, 6 s) whose windows from 2 s on are constant 0.25: scored in the
    second of its two 3-s segments."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors cannot import this test module
    folder = tmp_path_factory.mktemp("poisoned")
    for i in range(4):
        write_audio(folder / f"ok{i}.wav", tone(frequency_hz=400.0 + 200 * i, duration=2.0, sample_rate=RATE, amplitude=0.3), RATE, subtype="FLOAT")
    samples = np.full(6 * RATE, 0.25, dtype=np.float32)
    samples[: 2 * RATE] = tone(frequency_hz=500.0, duration=2.0, sample_rate=RATE, amplitude=0.3)
    write_audio(folder / "poison.wav", samples, RATE, subtype="FLOAT")
    return folder


@RAY
@SLOW
def test_actor_killed_mid_file_is_retried_on_another(ray_session, poisoned, tmp_path):
    marker = tmp_path / "killed-once"
    summary = run_inference(PoisonScorer(str(marker)), [poisoned], tmp_path / "ray", kind="scores", model_id="poison",
                            engine=ray_engine(segment_duration=3.0))
    assert marker.exists()  # an actor did die
    assert summary.line() == "5 files, 14 windows, 0 skipped"
    local = run_inference(PoisonScorer(None), [poisoned / f"ok{i}.wav" for i in range(4)], tmp_path / "local.parquet", kind="scores", model_id="poison")
    import pandas as pd

    both = pd.read_parquet(summary.outputs[0])
    assert both[both["file"].str.endswith("poison.wav")]["start_time"].tolist() == [float(s) for s in range(6)]  # the segments meet
    assert both[~both["file"].str.endswith("poison.wav")].reset_index(drop=True).equals(pd.read_parquet(local.outputs[0]))


@RAY
@SLOW
def test_a_file_that_kills_every_actor_is_reported_not_retried_for_ever(ray_session, poisoned, tmp_path):
    summary = run_inference(PoisonScorer(None), [poisoned], tmp_path / "ray.parquet", kind="scores", model_id="poison", engine=ray_engine(segment_duration=3.0))
    assert summary.line() == "5 files, 8 windows, 1 skipped"
    (file, reason), = summary.errors
    assert file.endswith("poison.wav") and reason.startswith("killed 2 Ray actors")
    errors = (tmp_path / ".ray.parquet.parts" / "errors.csv").read_text()
    assert "poison.wav" in errors and "killed 2 Ray actors" in errors


# ------------------------------------------------------------------------------------------------ the driver killed

KILLED_CLI = """
import os, runpy, signal, sys
from birdcall.infer import run_state
append = run_state.Manifest.append
done = 0
def append_then_killed(self, record):
    global done
    append(self, record)
    done += record.get("status") == "done"
    if done >= int(os.environ["BIRDCALL_TEST_KILL_AFTER"]):
        os.kill(os.getpid(), signal.SIGKILL)  # as kill -9: no cleanup
run_state.Manifest.append = append_then_killed
sys.argv = ["birdcall", *sys.argv[1:]]
runpy.run_module("birdcall.cli", run_name="__main__", alter_sys=True)
"""


@RAY
@SLOW
def test_driver_killed_half_way_resumes_with_the_local_engine(ray_session, onnx_model, audio, tmp_path):
    out = tmp_path / "out"
    common = ["analyze", "--model", str(onnx_model), "--min-confidence", "0", "--hop", "0.7", "--batch-size", "3", "--quiet", str(audio)]
    address = ray_session.get_runtime_context().gcs_address
    command = [sys.executable, "-c", KILLED_CLI, *common, "--out", str(out), "--engine", "ray", "--ray-address", address, "--num-actors", "2",
               "--segment-duration", "4"]
    killed = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "BIRDCALL_TEST_KILL_AFTER": "2"}, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    before = finished(out / "manifest.jsonl")
    assert sum(r["status"] == "done" for r in before) == 2

    from typer.testing import CliRunner

    from birdcall.cli import app

    rerun = CliRunner().invoke(app, [*common, "--out", str(out)])  # the local engine finishes what Ray started
    assert rerun.exit_code == 1 and "7 files, 35 windows, 2 skipped" in rerun.output, rerun.output
    files = [r["file"] for r in finished(out / "manifest.jsonl") if r["status"] == "done"]
    assert len(files) == len(set(files)) == 5  # each file once: no duplicate, no loss
    reference = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "reference")])
    assert reference.exit_code == 1
    assert outputs(out, "detections") == outputs(tmp_path / "reference", "detections")


@RAY
@SLOW
@pytest.mark.parametrize("mode", ["filter", "weight"])
def test_ray_applies_the_location_filter_as_the_local_engine_does(ray_session, onnx_model, audio, tmp_path, mode):
    from birdcall.infer.location import LocationOptions

    table = tmp_path / "occurrence.csv"
    table.write_text("species_code,lat,lon,week,probability\nsp_a,52.5,13.4,19,0.9\nsp_b,52.5,13.4,19,0.01\nsp_c,52.5,13.4,19,0.02\n")
    where = LocationOptions(52.5, 13.4, 19, mode=mode, occurrence=str(table))
    detection = DetectionOptions(min_confidence=0.0)
    plain = run_inference(onnx_model, [audio], tmp_path / "plain", detection=detection, engine=EngineOptions(batch_size=3))
    local = run_inference(onnx_model, [audio], tmp_path / "local", detection=detection, location=where, engine=EngineOptions(batch_size=3))
    ray = run_inference(onnx_model, [audio], tmp_path / "ray", detection=detection, location=where, engine=ray_engine())
    assert ray.line() == local.line() == plain.line()
    assert outputs(tmp_path / "ray", "detections") == outputs(tmp_path / "local", "detections")
    assert outputs(tmp_path / "local", "detections") != outputs(tmp_path / "plain", "detections")  # the filter did something
