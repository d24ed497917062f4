"""The demo end to end, at a size that runs in well under a minute: every step is the real code path."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from birdcall.workflows import DemoConfig, run_demo
from birdcall.eval.submission import read_solution, score_submission
from birdcall.synth import SynthConfig
from birdcall.train import TrainConfig


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    config = DemoConfig(
        synth=SynthConfig(num_species=4, seed=1, clips_per_species=16, num_background=4, num_soundscapes=1, soundscape_duration=60.0),
        train=TrainConfig(model="cnn_mobilenetv3_small", epochs=12, batch_size=8, optim={"lr": 3e-3}, data={"val_fraction": 0.2}, threads=2),
    )
    return run_demo(out, config, show_progress=False, log=lambda m: None)


@pytest.mark.integration
def test_run_folder_holds_every_artifact(demo_run):
    root = demo_run.run_dir
    for rel in ("data/train_metadata.csv", "data/solution.csv", "train/config.yaml", "train/metrics.csv",
                "train/best.safetensors", "submission.csv", "scores.json"):
        assert (root / rel).is_file(), rel
    history = pd.read_csv(root / "train" / "metrics.csv")
    assert history["epoch"].tolist() == list(range(1, 13))
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]  # it learned something
    assert history["macro_auc"].max() > history["macro_auc"].iloc[0] + 0.1
    saved = json.loads((root / "scores.json").read_text())
    assert saved["scores"]["padded_cmap"] == pytest.approx(demo_run.scores["padded_cmap"])


@pytest.mark.integration
def test_submission_covers_every_window_and_beats_chance(demo_run):
    root = demo_run.run_dir
    solution = read_solution(root / "data" / "solution.csv")
    submission = pd.read_csv(root / "submission.csv")
    assert submission["row_id"].tolist() == solution["row_id"].tolist()  # 12 windows of the 60-s soundscape, in order
    assert list(submission.columns) == list(solution.columns)
    assert submission.drop(columns="row_id").to_numpy().min() >= 0 and submission.drop(columns="row_id").to_numpy().max() <= 1
    # a constant or shuffled submission is the no-skill baseline on the same windows
    rng = np.random.default_rng(0)
    shuffled = submission.copy()
    shuffled.iloc[:, 1:] = rng.permutation(submission.iloc[:, 1:].to_numpy())
    chance = np.mean([score_submission(solution, shuffled.assign(**{c: rng.permutation(shuffled[c].to_numpy()) for c in shuffled.columns[1:]}))["cmap"] for _ in range(20)])
    # measured: cmAP 0.93 against 0.40 for shuffled scores; a model that learned nothing sits at chance
    assert demo_run.scores["cmap"] > chance + 0.25, (demo_run.scores, chance)


@pytest.mark.integration
def test_the_demo_runs_again_into_the_same_folder(tmp_path):
    # `make demo` twice: the second run replaces the first one's training run instead of refusing the folder
    from birdcall.features import FeatureConfig

    small = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0)
    config = DemoConfig(synth=SynthConfig(num_species=2, seed=2, clips_per_species=4, num_background=2, num_soundscapes=1, soundscape_duration=10.0),
                        train=TrainConfig(model="test_cnn", features=small, epochs=1, batch_size=4, threads=1))  # fmt: skip
    first = run_demo(tmp_path, config, show_progress=False, log=lambda m: None)
    second = run_demo(tmp_path, replace(config, train=replace(config.train, epochs=2)), show_progress=False, log=lambda m: None)
    assert first.run_dir == second.run_dir
    assert pd.read_csv(tmp_path / "train" / "metrics.csv")["epoch"].tolist() == [1, 2]


def test_demo_data_is_synth_of_its_config_and_the_defaults_are_kept(tmp_path):
    """The demo's data set is ``make_dataset`` of ``DemoConfig.synth``, whose defaults are those the demo always had."""
    default = DemoConfig().synth
    assert (default.num_species, default.seed, default.clips_per_species, default.num_background, default.num_soundscapes) == (12, 0, 24, 20, 3)
    assert default.soundscape_duration == 180.0 and default == replace(SynthConfig(), clips_per_species=24)
