"""benchmarks/frontier.py: points from the soundscape benchmark's tables, the frontier, the plot."""

import json

import pytest


def _table(path, systems, folds=5):
    data = {"folds": folds, "systems": {name: {"folds": {str(k): {"cmap": c} for k, c in per_fold.items()}, "pooled": {"cmap": pooled, "rtf": rtf}}
                                        for name, (per_fold, pooled, rtf) in systems.items()}}  # fmt: skip
    path.write_text(json.dumps(data))
    return path


@pytest.mark.integration
def test_points_frontier_and_plot(load_benchmark, tmp_path):
    frontier = load_benchmark("frontier")
    full = _table(tmp_path / "benchmark.json", {
        "slow good": ({k: 0.5 for k in range(5)}, 0.50, 20.0),
        "fast bad": ({k: 0.2 for k in range(5)}, 0.20, 200.0),
        "dominated": ({k: 0.3 for k in range(5)}, 0.30, 10.0),
        "fast bad + smooth 0.25,0.5,0.25": ({k: 0.9 for k in range(5)}, 0.90, 900.0),
    })  # fmt: skip
    screen = _table(tmp_path / "benchmark-fold0.json", {"student": ({0: 0.45}, 0.45, 180.0), "slow good": ({0: 0.1}, 0.1, 1.0)}, folds=5)
    pooled = frontier.points([full, screen], fold=None, include=None)
    assert {p["system"] for p in pooled} == {"slow good", "fast bad", "dominated"}  # smooth rows and 1-fold screens left out
    fold0 = {p["system"]: p for p in frontier.points([full, screen], fold=0, include=None)}
    assert fold0["slow good"]["cmap"] == 0.5  # the first table naming a system wins
    assert fold0["student"]["cmap"] == 0.45 and fold0["student"]["rtf"] == 180.0
    front = [p["system"] for p in frontier.frontier(list(fold0.values()))]
    assert front == ["slow good", "student", "fast bad"]  # by speed; "dominated" is beaten on both axes
    out = frontier.plot(list(fold0.values()), tmp_path / "f.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
