"""benchmarks/transfer_coverage.py: per-species AP of teacher and student against the teacher's coverage of each
species in the transfer set, grouped; the "all" row is the systems' pooled cmAP."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from birdcall.data.labels import LabelSet
from birdcall.metrics import score_arrays

CODES = ["aaa", "bbb", "ccc", "ddd"]


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("transfer_coverage")


def test_coverage_and_groups(bench):
    probs = np.array([[0.9, 0.1, 0.5], [0.6, 0.2, 0.49], [0.1, 0.7, 0.5]])
    assert bench.coverage(probs, ["a", "b", "c"], ["c", "a", "zzz", "b"], 0.5).tolist() == [2, 2, 0, 1]
    assert bench.groups(np.array([0, 2, 3, 10, 11, 40]), [2, 10]) == ["0-2", "0-2", "3-10", "3-10", "> 10", "> 10"]
    assert bench.groups(np.array([0.5, 1.5]), [1]) == ["0-1", "> 1"]  # means over folds need not be whole


def test_groups_by_coverage_and_the_all_row_is_pooled_cmap(bench, tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    run = tmp_path / "run"
    systems = ["teacher (t)", "CNN (s)"]
    truth, scores = [], {n: [] for n in systems}
    for k in (0, 1):
        ids = [f"rec{k}_{5 * (i + 1)}" for i in range(15)]
        y = (rng.random((15, len(CODES))) < 0.4).astype(int)
        y[0] = 1
        folder = run / "soundscapes" / f"fold{k}"
        folder.mkdir(parents=True)
        frame = pd.DataFrame(y, columns=CODES).assign(row_id=ids)[["row_id", *CODES]]
        frame.to_csv(folder / "solution.csv", index=False)
        truth.append(frame)
        (run / "scores").mkdir(exist_ok=True)
        for name in systems:
            s = pd.DataFrame(np.clip(y * 0.3 + rng.random(y.shape) * 0.7, 0, 1), columns=CODES).assign(row_id=ids)
            scores[name].append(s)
            s.iloc[::-1].to_csv(run / "scores" / f"{bench.score_slug(name)}_fold{k}.csv", index=False)  # any row order
    # the teacher heard aaa in 0 / 2 windows (mean 1), bbb in 4 / 6 (5), ccc in 12 / 14 (13), ddd nowhere
    heard = {0: [0, 4, 12], 1: [2, 6, 14]}
    files = {k: SimpleNamespace(labels=LabelSet(("ccc", "aaa", "bbb")), probs=np.stack([(np.arange(20) < n).astype(float) for n in
                                 (heard[k][2], heard[k][0], heard[k][1])], axis=1)) for k in (0, 1)}  # fmt: skip
    import birdcall.infer.pseudo_labels as module

    monkeypatch.setattr(module, "read_pseudo_labels", lambda path, audio_root: files[int(str(path)[-9])])
    argv = ["--run", str(run), "--folds", "2", "--labels", str(tmp_path / "pl/fold{fold}.parquet"), "--audio", str(tmp_path),
            "--teacher", systems[0], "--student", systems[1], "--bins", "2,10", "--species"]  # fmt: skip
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    per_species = {c.split("|")[1].strip(): c for c in lines if c.split("|")[1].strip() in CODES}
    assert [float(per_species[c].split("|")[3]) for c in CODES] == [1.0, 5.0, 13.0, 0.0]
    summary = {line.split("|")[1].strip(): [v.strip() for v in line.split("|")[2:-1]] for line in lines if line.split("|")[1].strip() in ("0-2", "3-10", "> 10", "all")}
    assert [summary[g][0] for g in ("0-2", "3-10", "> 10", "all")] == ["2", "1", "1", "4"]
    y = pd.concat(truth, ignore_index=True)[CODES].to_numpy()
    for j, name in enumerate(systems):
        pooled = pd.concat(scores[name], ignore_index=True)[CODES].to_numpy()
        assert float(summary["all"][1 + j]) == pytest.approx(score_arrays(y, pooled)["cmap"], abs=1e-3)
    assert float(summary["all"][3]) == pytest.approx(float(summary["all"][2]) / float(summary["all"][1]), abs=2e-3)
    # a zero-shot system that scores only aaa and ccc: the species it "knows"
    for k in (0, 1):
        zs = scores[systems[0]][k].copy()
        zs[["bbb", "ddd"]] = 0.0
        zs.to_csv(run / "scores" / f"{bench.score_slug('zero-shot (z)')}_fold{k}.csv", index=False)
    assert bench.main([*argv, "--known-by", "zero-shot (z)"]) == 0
    lines = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    known = {c[1].strip(): [v.strip() for v in c[2:-1]] for c in lines if c[1].strip() in ("known", "not known")}
    assert known["known"][0] == "2" and known["not known"][0] == "2"
    ap = {line[1].strip(): float(line[4]) for line in lines if line[1].strip() in CODES}  # the teacher's AP per species
    assert float(known["known"][1]) == pytest.approx((ap["aaa"] + ap["ccc"]) / 2, abs=2e-3)
    with pytest.raises(SystemExit, match="no scores of 'CNN \\(x\\)'"):
        bench.main([*argv[:-1], "CNN (x)"])
