"""benchmarks/soundscape_ensemble.py: systems' saved window scores pooled over the folds asked for, and their mean
probability, scored as the soundscape benchmark scores them."""

import numpy as np
import pandas as pd
import pytest

from birdcall.metrics import score_arrays

CODES = ["aaa", "bbb", "ccc"]


@pytest.fixture(scope="module")
def ensemble(load_benchmark):
    return load_benchmark("soundscape_ensemble")


def _run_folder(root, ensemble, systems, folds=(0, 1, 2), windows=12, seed=0):
    """A run folder as the benchmark leaves it: per fold a solution.csv and each system's scores."""
    rng = np.random.default_rng(seed)
    data = root / "data"
    data.mkdir()
    pd.DataFrame({"species_code": CODES, "taxon": ["bird", "bird", "insect"]}).to_csv(data / "taxonomy.csv", index=False)
    truth, scores = {}, {name: {} for name in systems}
    for k in folds:
        ids = [f"rec{k}_{5 * (i + 1)}" for i in range(windows)]
        labels = rng.random((windows, len(CODES))) < 0.3
        labels[0] = True  # every species present in every fold
        folder = root / "run" / "soundscapes" / f"fold{k}"
        folder.mkdir(parents=True)
        truth[k] = pd.DataFrame(labels.astype(int), columns=CODES).assign(row_id=ids)[["row_id", *CODES]]
        truth[k].to_csv(folder / "solution.csv", index=False)
        (root / "run" / "scores").mkdir(exist_ok=True)
        for name in systems:
            frame = pd.DataFrame(np.clip(labels * 0.4 + rng.random(labels.shape) * 0.6, 0, 1), columns=CODES).assign(row_id=ids)
            scores[name][k] = frame
            frame.to_csv(root / "run" / "scores" / f"{ensemble.score_slug(name)}_fold{k}.csv", index=False)
    return data, truth, scores


def _table(text):
    lines = [line for line in text.splitlines() if line.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return {row[0]: dict(zip(head, row)) for row in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}


def test_systems_pooled_over_the_folds_given_and_their_mean(ensemble, tmp_path, capsys):
    systems = ["CNN a (base)", "CNN a (gtcc)"]
    data, truth, scores = _run_folder(tmp_path, ensemble, systems)
    assert ensemble.main([*systems, "--run", str(tmp_path / "run"), "--data", str(data), "--only-fold", "0,2"]) == 0
    table = _table(capsys.readouterr().out)
    assert list(table) == [*systems, "ensemble (mean probability)"]
    solution = pd.concat([truth[0], truth[2]], ignore_index=True)
    for name in systems:
        pooled = pd.concat([scores[name][0], scores[name][2]], ignore_index=True)
        want = score_arrays(solution[CODES].to_numpy(), pooled[CODES].to_numpy())
        assert float(table[name]["pooled cmAP"]) == pytest.approx(want["cmap"], abs=1e-4)
        assert "fold 1" not in table[name] and float(table[name]["fold 2"]) == pytest.approx(
            score_arrays(truth[2][CODES].to_numpy(), scores[name][2][CODES].to_numpy())["cmap"], abs=1e-4)
        birds = score_arrays(solution[CODES[:2]].to_numpy(), pooled[CODES[:2]].to_numpy())  # ccc is an insect
        assert float(table[name]["birds-only cmAP"]) == pytest.approx(birds["cmap"], abs=1e-4)
    mean = [(scores[systems[0]][k][CODES] + scores[systems[1]][k][CODES]) / 2 for k in (0, 2)]
    want = score_arrays(solution[CODES].to_numpy(), pd.concat(mean, ignore_index=True).to_numpy())
    assert float(table["ensemble (mean probability)"]["pooled cmAP"]) == pytest.approx(want["cmap"], abs=1e-4)


def test_one_system_needs_no_ensemble_flag_and_bad_folds_are_refused(ensemble, tmp_path, capsys):
    data, truth, scores = _run_folder(tmp_path, ensemble, ["CNN a (base)"], folds=(0, 1))
    run = str(tmp_path / "run")
    with pytest.raises(SystemExit, match="two or more systems"):
        ensemble.main(["CNN a (base)", "--run", run, "--data", str(data), "--only-fold", "0,1"])
    assert ensemble.main(["CNN a (base)", "--run", run, "--data", str(data), "--only-fold", "0,1", "--no-ensemble"]) == 0
    assert list(_table(capsys.readouterr().out)) == ["CNN a (base)"]
    with pytest.raises(SystemExit, match="--only-fold: expected fold numbers"):
        ensemble.main(["CNN a (base)", "--run", run, "--data", str(data), "--only-fold", "0,x", "--no-ensemble"])
    with pytest.raises(SystemExit, match="no scores of 'CNN a \\(gtcc\\)' for fold 0"):
        ensemble.main(["CNN a (gtcc)", "--run", run, "--data", str(data), "--only-fold", "0", "--no-ensemble"])
