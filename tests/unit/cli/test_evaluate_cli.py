"""`birdcall evaluate` through the real typer app, for its three kinds of input, on a tiny generated data set."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from birdcall.cli import app
from birdcall.data import LabelSet, read_clip_table
from birdcall.eval import evaluate_arrays
from birdcall.features import FeatureConfig
from birdcall.synth import make_dataset

runner = CliRunner()
FEATURES = FeatureConfig(sample_rate=16_000, n_fft=512, hop_length=512, n_mels=32, fmin=50.0, fmax=8000.0, clip_duration=5.0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate_data")
    return make_dataset(root, num_species=3, seed=4, clips_per_species=3, num_background=0, num_soundscapes=1, soundscape_duration=15.0,
                        audio_format="wav", sample_rate=24_000)  # fmt: skip


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """A 2-fold run folder as `birdcall train --folds 2` writes it, with untrained test models and made-up scores."""
    import torch

    from birdcall.models import create_model, save_model

    run = tmp_path_factory.mktemp("evaluate_run")
    table = read_clip_table(data.root)
    codes = list(data.species_codes)
    folds = np.arange(len(table.frame)) % 2
    pd.DataFrame({"filename": table.frame["filename"], "labels": [" ".join(c) for c in table.frame["labels"]], "fold": folds}).to_csv(
        run / "folds.csv", index=False)  # fmt: skip
    oof = pd.DataFrame(np.random.default_rng(0).uniform(size=(len(folds), 3)).round(4), columns=codes)
    oof.insert(0, "filename", table.frame["filename"])
    oof.insert(1, "epoch", 1)
    oof.assign(fold=folds).to_csv(run / "oof.csv", index=False)
    for fold in (0, 1):
        torch.manual_seed(fold)
        save_model(create_model("test_cnn", num_classes=3, features=FEATURES), run / f"fold{fold}" / "best.safetensors", labels=LabelSet(tuple(codes)))
        pd.DataFrame({"epoch": [1], "train_loss": [0.7], "padded_cmap": [0.5]}).to_csv(run / f"fold{fold}" / "metrics.csv", index=False)
    return run


def _invoke(*args):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def test_evaluate_is_a_registered_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "evaluate" in result.output


def test_evaluate_submission(data, tmp_path):
    solution = pd.read_csv(data.solution_path)
    submission = solution.copy()
    submission[list(data.species_codes)] = np.random.default_rng(1).uniform(size=(len(solution), 3)).round(3)
    submission.to_csv(tmp_path / "submission.csv", index=False)
    result = _invoke("--solution", data.solution_path, "--submission", tmp_path / "submission.csv", "--data", data.soundscapes_dir,
                     "--out", tmp_path / "report", "--gallery-size", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "padded cmAP" in result.stdout and "wrote" in result.stdout
    document = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert document["kind"] == "submission" and document["summary"]["num_samples"] == 3
    assert document["gallery"][0]["file"].endswith(".wav")
    assert (tmp_path / "report" / "report.html").read_text().count("<audio ") == 2


def test_evaluate_model_on_clips(data, run, tmp_path):
    result = _invoke("--model", run / "fold0" / "best.safetensors", "--data", data.root, "--out", tmp_path / "report", "--gallery-size", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert "top-1 accuracy (9 with a primary label)" in result.stdout
    table = pd.read_csv(tmp_path / "report" / "per_species.csv")
    assert table["species"].tolist() == list(data.species_codes)
    assert (tmp_path / "report" / "figures" / "tsne.png").is_file() and (tmp_path / "report" / "figures" / "confusion.png").is_file()


def test_evaluate_run_out_of_fold(data, run, tmp_path):
    result = _invoke("--run", run, "--data", data.root, "--out", tmp_path / "report", "--gallery-size", "0", "--no-embeddings")
    assert result.exit_code == 0, result.output
    oof = pd.read_csv(run / "oof.csv")
    frame = read_clip_table(data.root).frame.set_index("filename").loc[oof["filename"]]
    codes = list(data.species_codes)
    expected = evaluate_arrays(LabelSet(tuple(codes)).encode(frame["labels"]), oof[codes].to_numpy(),
                               primary=[codes.index(p) for p in frame["primary_label"]])  # fmt: skip
    summary = json.loads((tmp_path / "report" / "metrics.json").read_text())["summary"]
    for key in ("padded_cmap", "cmap", "macro_auc", "micro_auc", "top1_accuracy", "ece"):
        assert summary[key] == pytest.approx(expected.summary[key], abs=1e-12)
    assert (tmp_path / "report" / "figures" / "training_curves.png").is_file()
    assert not (tmp_path / "report" / "figures" / "tsne.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give exactly one input"),
        (["--submission", "s.csv"], "--submission needs --solution"),
        (["--model", "m.safetensors"], "--model needs --data"),
        (["--run", "r", "--solution", "s.csv"], "--solution does not apply"),
        (["--run", "r", "--model", "m.safetensors"], "got --model and --run"),
        (["--run", "no_such_run"], "no_such_run: not a folder"),
    ],
)
def test_evaluate_usage_errors_are_one_line(args, message, tmp_path):
    result = _invoke(*args, "--out", tmp_path / "report")
    assert result.exit_code == 2
    assert "error:" in result.output and message in result.output
    assert not (tmp_path / "report").exists()
