"""`birdcall analyze` through the real typer app (and, for kill-and-resume, a real subprocess) with a tiny model."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from typer.testing import CliRunner

from birdcall.audio import write_audio
from birdcall.cli import app
from birdcall.data.labels import LabelSet
from birdcall.features import FeatureConfig
from birdcall.testing.signals import call_in_noise, tone

runner = CliRunner()
LABELS = LabelSet(("sp_a", "sp_b", "sp_c"), scientific_names=("Avis a", "Avis b", "Avis c"), common_names=("A bird", "B bird", "C bird"))
RATE = 32_000


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    import torch

    from birdcall.models import create_model, save_model

    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = create_model("test_cnn", num_classes=3, features=FeatureConfig(n_mels=32, n_fft=512, hop_length=256, clip_duration=1.0))
    torch.random.set_rng_state(state)
    return save_model(model, tmp_path_factory.mktemp("model") / "tiny.safetensors", labels=LABELS)


def make_audio(folder: Path, count: int, seconds: float = 2.5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        y = tone(frequency_hz=500.0 + 300 * i, duration=seconds, sample_rate=RATE, amplitude=0.3)
        paths.append(write_audio(folder / f"rec{i:02d}.flac", y, RATE))
    return paths


def analyze(*args):
    return runner.invoke(app, ["analyze", "--quiet", *map(str, args)])


def derived_outputs(out: Path) -> dict[str, bytes]:
    names = ["detections.csv", "errors.csv", "raven_combined.selections.txt"]
    names += [str(p.relative_to(out)) for p in sorted(out.glob("raven/*")) + sorted(out.glob("audacity/*"))]
    return {name: (out / name).read_bytes() for name in names}


def finished(manifest: Path) -> list[dict]:
    """The done and failed records of a manifest (a run also writes a "started" record before each file)."""
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.endswith("}")]
    return [r for r in records if r["status"] in ("done", "failed")]


@pytest.mark.integration
def test_analyze_writes_every_output_and_reports_bad_files(model_path, tmp_path):
    folder = tmp_path / "audio"
    make_audio(folder / "site1", 2)
    (folder / "fake.ogg").write_text("this is not audio")
    flac = write_audio(folder / "cut.flac", call_in_noise(duration=3.0, sample_rate=RATE, rng=np.random.default_rng(1))[0], RATE)
    flac.write_bytes(flac.read_bytes()[:2000])
    out = tmp_path / "out"
    result = analyze("--model", model_path, "--out", out, "--min-confidence", "0", "--hop", "0.5", folder)
    assert result.exit_code == 1, result.output  # partial success is not silent
    assert "4 files, 8 windows, 2 skipped" in result.output  # 2.5 s at 1-s windows every 0.5 s: 4 windows a file
    assert "fake.ogg: not an audio file" in result.output and "2 file(s) skipped" in result.output

    detections = pd.read_csv(out / "detections.csv")
    assert list(detections.columns) == ["file", "start_time", "end_time", "code", "scientific_name", "common_name", "confidence"]
    assert len(detections) == 8 * 3  # every (window, species): min confidence 0
    assert sorted(set(detections["start_time"])) == [0.0, 0.5, 1.0, 1.5]
    assert set(zip(detections["code"], detections["common_name"])) == set(zip(LABELS.codes, LABELS.common_names))
    assert pd.read_parquet(out / "detections.parquet")["confidence"].dtype == np.float32
    errors = pd.read_csv(out / "errors.csv")
    assert sorted(Path(f).name for f in errors["file"]) == ["cut.flac", "fake.ogg"]
    assert sorted(p.name for p in (out / "raven").iterdir()) == ["rec00.selections.txt", "rec01.selections.txt"]
    assert len((out / "raven" / "rec00.selections.txt").read_text().splitlines()) == 1 + 4 * 3
    assert "Begin Path" in (out / "raven_combined.selections.txt").read_text().splitlines()[0]
    assert len((out / "audacity" / "rec01.txt").read_text().splitlines()) == 4 * 3
    assert len(finished(out / "manifest.jsonl")) == 4


def test_filters_and_missing_inputs(model_path, tmp_path):
    make_audio(tmp_path / "audio", 1)
    (tmp_path / "exclude.txt").write_text("sp_b  # never report\n")
    out = tmp_path / "out"
    result = analyze("--model", model_path, "--out", out, "--min-confidence", "0", "--top-k", "1", "--exclude", tmp_path / "exclude.txt", tmp_path / "audio")
    assert result.exit_code == 0, result.output
    detections = pd.read_csv(out / "detections.csv")
    assert len(detections) == 3 and "sp_b" not in set(detections["code"])  # one species for each of the 3 windows

    result = analyze("--model", model_path, "--out", tmp_path / "other", tmp_path / "nowhere")
    assert result.exit_code == 2 and "nowhere: no such file or folder" in result.output
    result = analyze("--model", model_path, "--out", out, "--hop", "0.5", tmp_path / "audio")  # other settings, same folder
    assert result.exit_code == 2 and "other settings" in result.output


def test_shards_merged_from_separate_folders(model_path, tmp_path):
    make_audio(tmp_path / "audio", 3)
    args = ["--model", model_path, "--batch-size", "1", "--min-confidence", "0", tmp_path / "audio"]
    assert analyze("--out", tmp_path / "one", *args).exit_code == 0
    for i in range(2):
        result = analyze("--out", tmp_path / f"shard{i}", "--shard", f"{i}/2", *args)
        assert result.exit_code == 0, result.output
        assert "incomplete" in result.output and f"shard {1 - i}/2" in result.output
    result = runner.invoke(app, ["analyze", "--merge", "--out", str(tmp_path / "shard0"), str(tmp_path / "shard1")])
    assert result.exit_code == 0 and "merged: 3 files, 9 windows, 0 skipped" in result.output, result.output
    assert derived_outputs(tmp_path / "shard0") == derived_outputs(tmp_path / "one")


# The real command in a subprocess, killed by SIGKILL at a deterministic point: the wrapper patches TorchScorer so
# that the process kills itself (no cleanup, no atexit, as `kill -9` does) when it is asked to score window
# KILL_AT + 1, and then runs `python -m birdcall.cli` as is. With --batch-size 1 every call scores one window, so
# the kill lands after the first KILL_AT windows, i.e. inside the fourth 3-window file.
KILL_AT = 10
KILLED_CLI = """
import os, runpy, signal, sys
from birdcall.infer import scorer
call = scorer.TorchScorer.__call__
calls = 0
def scoring_then_killed(self, windows):
    global calls
    calls += 1
    if calls > int(os.environ.get("BIRDCALL_TEST_KILL_AT", "1000000")):
        os.kill(os.getpid(), signal.SIGKILL)
    return call(self, windows)
scorer.TorchScorer.__call__ = scoring_then_killed
sys.argv = ["birdcall", *sys.argv[1:]]
runpy.run_module("birdcall.cli", run_name="__main__", alter_sys=True)
"""


@pytest.mark.integration
def test_killed_run_resumes_to_the_uninterrupted_result(model_path, tmp_path):
    audio = tmp_path / "audio"
    paths = make_audio(audio, 8, seconds=3.0)
    (audio / "rec99.ogg").write_text("not audio either")
    out = tmp_path / "out"
    args = ["analyze", "--model", str(model_path), "--backend", "torch", "--out", str(out), "--min-confidence", "0", "--batch-size", "1", "--workers", "1",
            "--quiet", str(audio)]  # torch: the kill counts TorchScorer calls
    command = [sys.executable, "-c", KILLED_CLI, *args]

    environment = {**os.environ, "BIRDCALL_TEST_KILL_AT": str(KILL_AT)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment)
    children = []
    while process.poll() is None:  # the decoding worker, to check below that it notices its parent died
        try:
            children = psutil.Process(process.pid).children(recursive=True) or children
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    output = process.stdout.read().decode()
    manifest = out / "manifest.jsonl"
    done_before = len(finished(manifest))
    assert process.returncode == -signal.SIGKILL, output
    assert done_before == KILL_AT // 3, output  # the three files whose windows were all scored, nothing more
    assert children, "the decoding worker process was never seen"
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive  # the decoding worker noticed and exited

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)  # not killed this time
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr  # one unreadable file
    assert "9 files, 24 windows, 1 skipped" in rerun.stdout and f"{done_before} file(s) were done by an earlier run" in rerun.stdout
    records = finished(manifest)
    assert sorted(r["file"] for r in records) == sorted(map(str, [*paths, audio / "rec99.ogg"]))  # each file once

    reference = tmp_path / "reference"
    result = analyze("--model", model_path, "--backend", "torch", "--out", reference, "--min-confidence", "0", "--batch-size", "1", audio)
    assert result.exit_code == 1
    assert derived_outputs(out) == derived_outputs(reference)
    detections = pd.read_csv(out / "detections.csv")
    assert len(detections) == 8 * 3 * 3 and not detections.duplicated(["file", "start_time", "code"]).any()


def test_frontend_option_host_and_graph_give_the_same_detections(model_path, tmp_path):
    from birdcall.export import export_onnx
    from birdcall.models import load_model

    net, labels, _ = load_model(model_path)
    onnx_path = export_onnx(net, tmp_path / "tiny.onnx", labels=labels)
    make_audio(tmp_path / "audio", 2)
    tables = {}
    for frontend in ("host", "graph"):
        out = tmp_path / frontend
        result = analyze("--model", onnx_path, "--out", out, "--min-confidence", "0", "--frontend", frontend, tmp_path / "audio")
        assert result.exit_code == 0, result.output
        tables[frontend] = pd.read_csv(out / "detections.csv")
    host, graph = tables["host"], tables["graph"]
    assert len(host) == 2 * 3 * 3  # 2 files x 3 windows x 3 species
    pd.testing.assert_frame_equal(host.drop(columns="confidence"), graph.drop(columns="confidence"))
    assert np.abs(host["confidence"] - graph["confidence"]).max() <= 1e-4

    result = analyze("--model", model_path, "--out", tmp_path / "torch", "--backend", "torch", "--frontend", "host", tmp_path / "audio")
    assert result.exit_code == 2 and "frontend='host' applies to the onnx and openvino backends only" in result.output


def test_merge_reports_a_crafted_record_and_writes_nothing_outside_the_target(model_path, tmp_path):
    make_audio(tmp_path / "audio", 1)
    src = tmp_path / "s1" / "s2" / "src"
    assert analyze("--model", model_path, "--out", src, tmp_path / "audio").exit_code == 0
    (tmp_path / "s1" / "payload.bin").write_bytes(b"not yours")  # src/../../payload.bin
    with open(src / "manifest.jsonl", "a") as handle:
        handle.write(json.dumps({"file": "/x.wav", "status": "done", "part": "../../payload.bin"}) + "\n")
    number = len((src / "manifest.jsonl").read_text().splitlines())
    target = tmp_path / "A" / "B" / "C"
    result = runner.invoke(app, ["analyze", "--merge", "--out", str(target), str(src)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "A" / "payload.bin").exists() and not list(tmp_path.glob("A/**/payload.bin"))
    warning = [line for line in result.output.splitlines() if line.startswith("warning:")]
    expected = (f"warning: {src / 'manifest.jsonl'}, line {number}: corrupt record skipped (part '../../payload.bin' is not "
                "parts/<name>.parquet inside this folder); /x.wav is not merged")
    assert warning == [expected]


def test_disk_full_while_writing_the_tables_is_one_line_with_exit_code_2(model_path, tmp_path, monkeypatch):
    import errno

    from birdcall.infer import writers

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    make_audio(tmp_path / "audio", 1)
    out = tmp_path / "out"
    monkeypatch.setattr(writers, "write_raven", full)
    result = analyze("--model", model_path, "--out", out, tmp_path / "audio")
    assert result.exit_code == 2 and "Traceback" not in result.output
    expected = (f"error: {out / 'raven' / 'rec00.selections.txt'}: cannot write (No space left on device); "
                "the files finished so far are kept: rerun the same command to resume")
    assert result.output.strip().splitlines() == [expected]
