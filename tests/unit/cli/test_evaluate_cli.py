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
from birdcall.testing.runs import write_fake_run

runner = CliRunner()
FEATURES = FeatureConfig(sample_rate=16_000, n_fft=512, hop_length=512, n_mels=32, fmin=50.0, fmax=8000.0, clip_duration=5.0)


@pytest.fixture(scope="module")
def run(eval_dataset, tmp_path_factory):
    """A 2-fold run folder as `birdcall train --folds 2` writes it, with untrained test models and made-up scores."""
    run = tmp_path_factory.mktemp("evaluate_run") / "run"
    return write_fake_run(run, eval_dataset.root, eval_dataset.species_codes, features=FEATURES, rng=np.random.default_rng(0))


def _invoke(*args):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def test_evaluate_is_a_registered_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "evaluate" in result.output


@pytest.mark.integration
def test_evaluate_submission(eval_dataset, tmp_path):
    solution = pd.read_csv(eval_dataset.solution_path)
    submission = solution.copy()
    submission[list(eval_dataset.species_codes)] = np.random.default_rng(1).uniform(size=(len(solution), 3)).round(3)
    submission.to_csv(tmp_path / "submission.csv", index=False)
    result = _invoke("--solution", eval_dataset.solution_path, "--submission", tmp_path / "submission.csv", "--data", eval_dataset.soundscapes_dir,
                     "--out", tmp_path / "report", "--gallery-size", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "padded cmAP" in result.stdout and "wrote" in result.stdout
    document = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert document["kind"] == "submission" and document["summary"]["num_samples"] == 3
    assert document["gallery"][0]["file"].endswith(".wav")
    assert (tmp_path / "report" / "report.html").read_text().count("<audio ") == 2


@pytest.mark.integration
def test_evaluate_model_on_clips(eval_dataset, run, tmp_path):
    result = _invoke("--model", run / "fold0" / "best.safetensors", "--data", eval_dataset.root, "--out", tmp_path / "report", "--gallery-size", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert "top-1 accuracy (9 with a primary label)" in result.stdout
    table = pd.read_csv(tmp_path / "report" / "per_species.csv")
    assert table["species"].tolist() == list(eval_dataset.species_codes)
    assert (tmp_path / "report" / "figures" / "tsne.png").is_file() and (tmp_path / "report" / "figures" / "confusion.png").is_file()


@pytest.mark.integration
def test_evaluate_run_out_of_fold(eval_dataset, run, tmp_path):
    result = _invoke("--run", run, "--data", eval_dataset.root, "--out", tmp_path / "report", "--gallery-size", "0", "--no-embeddings")
    assert result.exit_code == 0, result.output
    oof = pd.read_csv(run / "oof.csv")
    frame = read_clip_table(eval_dataset.root).frame.set_index("filename").loc[oof["filename"]]
    codes = list(eval_dataset.species_codes)
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
