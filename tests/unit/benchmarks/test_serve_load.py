"""benchmarks/serve_load.py: the upload schedule, and a tiny run end to end against a real server."""

import json

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("serve_load")


def test_the_schedule_is_seeded_and_spreads_the_corrupt_uploads(bench):
    plan = bench.schedule(["10s", "60s"], [3, 1], ["bad-a", "bad-b"], 40, every=8, seed=1)
    assert plan == bench.schedule(["10s", "60s"], [3, 1], ["bad-a", "bad-b"], 40, every=8, seed=1)
    assert [i for i, name in enumerate(plan) if name.startswith("bad")] == [8, 16]
    assert set(plan) == {"10s", "60s", "bad-a", "bad-b"}
    assert bench.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5 and bench.percentile([5.0], 0.95) == 5.0


@pytest.mark.integration
def test_a_short_load_run_reports_every_figure(bench, tmp_path, capsys):
    code = bench.main(["--out", str(tmp_path), "--arch", "test_cnn", "--num-classes", "5", "--detections", "4", "--lengths", "3,6",
                       "--weights", "1,1", "--duration", "4", "--clients", "2", "--corrupt", "3"])  # fmt: skip
    assert code == 0
    result = json.loads((tmp_path / "serve_load.json").read_text())
    summary = result["summary"]
    assert summary["failed"] == 0 and summary["ok"] >= 2 and summary["requests"] == summary["ok"] + 3
    assert [status for _, status, _ in summary["corrupt"]] == [422, 422, 422] and summary["corrupt_sent"] == 3
    assert summary["audio_per_wall_s"] > 0 and summary["analyze_audio_per_wall_s"] > 0 and len(result["analyze_rates"]) == 2
    assert summary["rss_mb"]["samples"] >= 2 and summary["rss_mb"]["peak"] > 50
    assert result["uploads_left"] == [] and result["model"].endswith("(openvino)")
    assert all(run["summary"] == "2 files, 3 windows, 0 skipped" for run in result["analyze_runs"])  # 3 s and 6 s in 5-s windows
    printed = capsys.readouterr().out
    assert "| requests ok | failed |" in printed and "corrupt-text.wav: not an audio file" in printed
