"""benchmarks/nips4b_soundscape_cv.py on a small synthetic data set: per-fold recordings written once, background
groups kept out of their fold's training, MFCC and CNN rows scored on the same windows."""

import json

import numpy as np
import pandas as pd
import pytest

from birdcall.synth import make_dataset


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("nips4b_soundscape_cv")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("scape_data")
    make_dataset(root, num_species=4, clips_per_species=6, num_background=4, num_soundscapes=0,
                 clip_duration=2.0, min_clip_duration=1.0, seed=5)  # fmt: skip
    return root


@pytest.mark.integration
def test_background_groups_are_disjoint_seeded_and_cover_every_clip(bench, tmp_path):
    paths = [tmp_path / f"bg{i}.ogg" for i in range(11)]
    groups = bench.background_groups(paths, 5, seed=0)
    assert sorted(p for g in groups for p in g) == sorted(paths)
    assert [len(g) for g in groups] == [3, 2, 2, 2, 2]
    assert groups == bench.background_groups(paths, 5, seed=0) != bench.background_groups(paths, 5, seed=1)


@pytest.mark.integration
def test_fold_view_holds_only_the_allowed_backgrounds(bench, small_data, tmp_path):
    from birdcall.data import read_clip_table

    table = read_clip_table(small_data)
    allowed = table.background_files[:2]
    root = bench.fold_data_root(tmp_path, small_data, 1, allowed)
    view = read_clip_table(root)
    assert [p.name for p in view.background_files] == [p.name for p in allowed]
    assert list(view.frame["filename"]) == list(table.frame["filename"])
    bench.fold_data_root(tmp_path, small_data, 1, allowed[:1])  # shrinking the set removes the stale link
    assert [p.name for p in read_clip_table(root).background_files] == [allowed[0].name]


@pytest.mark.integration
def test_benchmark_scores_mfcc_and_cnn_on_the_same_recordings(bench, small_data, tmp_path, capsys):
    out = tmp_path / "run"
    overrides = ["model=test_cnn", "epochs=1", "batch_size=4", "threads=1", "features.n_mels=32", "features.n_fft=512",
                 "features.hop_length=256", "select=last"]  # fmt: skip
    args = ["--data", str(small_data), "--out", str(out), "--folds", "2", "--systems", "mfcc,cnn", "--duration", "20",
            "--quiet", *overrides]  # fmt: skip
    assert bench.main(args) == 0
    result = json.loads((out / "benchmark.json").read_text())
    plain = {"MFCC + LR", "CNN test_cnn (cpu_default)"}
    assert set(result["systems"]) == plain | {f"{name} + smooth 0.25,0.5,0.25" for name in plain}  # --smooth rows by default
    assert (out / "scores" / "MFCC_+_LR_fold1.csv").is_file()
    for k in (0, 1):
        solution = pd.read_csv(out / "soundscapes" / f"fold{k}" / "solution.csv")
        placements = pd.read_csv(out / "soundscapes" / f"fold{k}" / "placements.csv")
        folds = pd.read_csv(out / "cnn" / "folds.csv")
        # every validation clip of fold k, and only those, went into fold k's recordings
        mine = {str(small_data / "train_audio" / f) for f in folds.loc[folds["fold"] == k, "filename"]}
        assert set(placements["clip"]) == mine
        # fold k's training view never holds the backgrounds its recordings were built on
        beds = set(bench.background_groups(sorted((small_data / "background").glob("*.ogg")), 2, 0)[k])
        view = {p.name for p in (out / "data" / f"fold{k}" / "background").iterdir()}
        assert view and not view & {p.name for p in beds}
        for system in result["systems"].values():
            assert system["folds"][str(k)]["windows"] == len(solution)
    pooled = {name: s["pooled"] for name, s in result["systems"].items()}
    for p in pooled.values():
        assert 0.0 <= p["cmap"] <= 1.0 and p["rtf"] > 0
    # a second run reuses the recordings (same plan) and gives the same MFCC scores
    stamp = (out / "soundscapes" / "fold0" / "solution.csv").stat().st_mtime_ns
    assert bench.main([*args[:6], "--systems", "mfcc", *args[8:]]) == 0
    again = json.loads((out / "benchmark.json").read_text())
    assert (out / "soundscapes" / "fold0" / "solution.csv").stat().st_mtime_ns == stamp
    assert again["systems"]["MFCC + LR"]["pooled"]["cmap"] == pytest.approx(pooled["MFCC + LR"]["cmap"])
    assert set(again["systems"]) == set(result["systems"])  # the CNN rows of the first run are kept in the file
    printed = capsys.readouterr().out
    assert "## Soundscape CV" in printed
    assert np.isfinite(result["systems"]["MFCC + LR"]["pooled"]["birds_cmap"])
    # the CNN is scored on the backend `predict` picks, its one-off export timed apart (with training, not the RTF)
    from birdcall.infer.cache import can_export, cached_export

    for k in (0, 1):
        row = result["systems"]["CNN test_cnn (cpu_default)"]["folds"][str(k)]
        best = out / "cnn" / f"fold{k}" / "best.safetensors"
        assert row["export_seconds"] >= 0 and row["train_seconds"] >= row["export_seconds"]
        assert f"CNN test_cnn (cpu_default) fold {k}: scored on {row['backend']}" in printed
        if can_export(best) == "":  # OpenVINO installed: the export was made before the clock started, and it ran
            assert row["backend"] == "openvino"
            assert cached_export(best, export=lambda *a: pytest.fail("exported again")).path is not None
        else:
            assert row["backend"] == "torch"


@pytest.mark.integration
def test_smooth_scores_averages_neighbouring_windows_of_the_same_recording(bench):
    scores = pd.DataFrame({"row_id": ["a_5", "a_10", "a_15", "b_5"], "x": [0.0, 1.0, 0.0, 1.0], "y": [1.0, 0.0, 0.0, 0.5]})
    out = bench.smooth_scores(scores, (0.25, 0.5, 0.25))
    assert out["row_id"].tolist() == scores["row_id"].tolist()
    # a_5: (0.5 * 0 + 0.25 * 1) / 0.75; a_10: 0.25 * 0 + 0.5 * 1 + 0.25 * 0; b_5 alone in its recording: unchanged
    np.testing.assert_allclose(out["x"], [1 / 3, 0.5, 1 / 3, 1.0])
    np.testing.assert_allclose(out["y"], [2 / 3, 0.25, 0.0, 0.5])
