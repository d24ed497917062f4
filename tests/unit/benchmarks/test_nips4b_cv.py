"""benchmarks/nips4b_cv.py end to end on a small synthetic data set: model + MFCC baseline on the same folds,
throughput ratio, tables and benchmark.json; and BirdNET's segmenting of short clips."""

import json

import numpy as np
import pandas as pd
import pytest

from birdcall.synth import make_dataset


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("nips4b_cv")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_data")
    make_dataset(root, num_species=4, clips_per_species=6, num_background=4, num_soundscapes=1, soundscape_duration=10.0,
                 clip_duration=2.0, min_clip_duration=1.0, seed=3)  # fmt: skip
    return root


@pytest.mark.integration
def test_benchmark_runs_model_baseline_and_throughput_on_the_same_folds(bench, small_data, tmp_path, capsys):
    out = tmp_path / "run"
    overrides = ["model=test_cnn", "epochs=2", "batch_size=4", "threads=1", "features.n_mels=32", "features.n_fft=512",
                 "features.hop_length=256", "features.clip_duration=2.0", "select=last"]  # fmt: skip
    code = bench.main(["--data", str(small_data), "--out", str(out), "--folds", "3", "--quiet", "--skip-birdnet",
                       "--throughput-batches", "2", *overrides])  # fmt: skip
    assert code == 0
    result = json.loads((out / "benchmark.json").read_text())
    folds = pd.read_csv(out / "folds.csv")
    assert sorted(folds["fold"].unique()) == [0, 1, 2]
    # the model's pooled OOF covers every clip once; the baseline's OOF uses the very same clips and folds
    oof = pd.read_csv(out / "oof.csv")
    base = pd.read_csv(out / "oof_mfcc_logreg.csv")
    assert sorted(oof["filename"]) == sorted(base["filename"]) == sorted(folds["filename"])
    for system in (result["model"], result["baselines"]["mfcc_logreg"]):
        assert [r["fold"] for r in system["per_fold"]] == [0, 1, 2]
        assert 0.0 <= system["pooled"]["cmap"] <= 1.0 and system["pooled"]["num_clips"] == len(folds)
    assert all(r["best_epoch"] == 2 for r in result["model"]["per_fold"])  # select=last keeps the final epoch
    tp = result["throughput"]
    assert tp["batches"] == 2 and tp["full_clips_per_s"] > 0 and tp["model_clips_per_s"] > 0
    assert tp["ratio"] == pytest.approx(tp["full_clips_per_s"] / tp["model_clips_per_s"])
    assert result["birdnet"].startswith("BirdNET baseline skipped")
    printed = capsys.readouterr().out
    assert "## Overall (pooled out-of-fold scores)" in printed and "| mfcc_logreg |" in printed and "ratio full / model-only" in printed


@pytest.mark.integration
def test_resume_keeps_a_fold_trained_before_and_counts_its_epoch_time(bench, small_data, tmp_path):
    from birdcall.config import apply_overrides, from_yaml
    from birdcall.data import read_clip_table
    from birdcall.train import TrainConfig, fit_folds

    out = tmp_path / "run"
    overrides = ["model=test_cnn", "epochs=1", "batch_size=4", "threads=1", "features.n_mels=32", "features.n_fft=512",
                 "features.hop_length=256", "features.clip_duration=2.0", "select=last", "folds=3"]  # fmt: skip
    config = apply_overrides(from_yaml(TrainConfig, bench.REPO_ROOT / "src" / "birdcall" / "recipes" / "cpu_default.yaml"), overrides)
    fit_folds(read_clip_table(small_data), config, out, only_fold=0, show_progress=False)  # as `birdcall train --fold 0` would
    before = (out / "fold0" / "best.safetensors").stat().st_mtime_ns
    epoch_seconds = float(pd.read_csv(out / "fold0" / "metrics.csv")["seconds"].sum())
    code = bench.main(["--data", str(small_data), "--out", str(out), "--quiet", "--skip-birdnet", "--skip-throughput", "--resume", *overrides])
    assert code == 0
    assert (out / "fold0" / "best.safetensors").stat().st_mtime_ns == before  # not trained again
    result = json.loads((out / "benchmark.json").read_text())
    assert [r["fold"] for r in result["model"]["per_fold"]] == [0, 1, 2]
    assert result["model"]["per_fold"][0]["seconds"] >= epoch_seconds
    assert sorted(pd.read_csv(out / "oof.csv")["filename"]) == sorted(pd.read_csv(out / "folds.csv")["filename"])


@pytest.mark.integration
def test_birdnet_segments_keep_short_clips_and_drop_short_tails(bench):
    sr = 1000
    one = bench.birdnet_segments(np.ones(800, np.float32), sr=sr)  # 0.8 s: one zero-padded 3-s segment
    assert one.shape == (1, 3000) and one[0, :800].sum() == 800 and not one[0, 800:].any()
    tail_kept = bench.birdnet_segments(np.ones(4600, np.float32), sr=sr)  # 1.6-s tail >= 1.5 s: kept
    assert tail_kept.shape == (2, 3000) and tail_kept[1, :1600].all() and not tail_kept[1, 1600:].any()
    tail_dropped = bench.birdnet_segments(np.ones(4400, np.float32), sr=sr)  # 1.4-s tail: dropped
    assert tail_dropped.shape == (1, 3000)
