"""The run folder is guarded: a resume must match the interrupted run (config and clip table), and a new run
does not write into a folder holding another run unless asked to (and then removes only birdcall's files)."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from birdcall.config import to_yaml
from birdcall.errors import ParameterError
from birdcall.train import fit, fit_folds


def test_resume_refuses_the_state_of_another_run_even_when_config_yaml_was_rewritten(tiny_table, tiny_config, tmp_path, kill_training_at):
    # Old behaviour: a new run rewrote config.yaml before its first epoch ended; resumed, it compared its config
    # with that rewritten file, passed, and continued the old run's weights, optimiser and schedule.
    old = replace(tiny_config, epochs=2)
    kill_training_at(2)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_table, old, tmp_path, show_progress=False)
    kill_training_at(None)
    new = replace(old, optim=replace(old.optim, lr=6e-3))
    to_yaml(new, tmp_path / "config.yaml")  # what the new run had written before it was killed
    state_before = (tmp_path / "train_state.pt").read_bytes()
    with pytest.raises(ParameterError, match=r"train_state\.pt: resume refused: config differs in optim\.lr \(0\.003 -> 0\.006\)$") as info:
        fit(tiny_table, new, tmp_path, resume=True, show_progress=False)
    assert "\n" not in str(info.value)
    assert (tmp_path / "train_state.pt").read_bytes() == state_before  # refused before anything was written
    nested = replace(old, features=replace(old.features, n_mels=16))
    with pytest.raises(ParameterError, match=r"config differs in features\.n_mels \(32 -> 16\)"):
        fit(tiny_table, nested, tmp_path, resume=True, show_progress=False)


def test_resume_refuses_another_clip_table(tiny_table, tiny_config, tmp_path, kill_training_at):
    config = replace(tiny_config, epochs=2)
    kill_training_at(2)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_table, config, tmp_path, show_progress=False)
    kill_training_at(None)
    fewer = replace(tiny_table, frame=tiny_table.frame.iloc[1:].reset_index(drop=True))
    with pytest.raises(ParameterError, match=r"resume refused: the clip table differs \(files, labels, split\)"):
        fit(fewer, config, tmp_path, resume=True, show_progress=False)
    relabelled = tiny_table.frame.copy()
    relabelled.at[0, "labels"] = [next(c for c in tiny_table.labels.codes if c not in relabelled.at[0, "labels"])]
    with pytest.raises(ParameterError, match=r"the clip table differs \(labels\)"):
        fit(replace(tiny_table, frame=relabelled), config, tmp_path, resume=True, show_progress=False)
    n = len(tiny_table.frame)
    with pytest.raises(ParameterError, match=r"the clip table differs \(split\)"):
        fit(tiny_table, config, tmp_path, train_idx=np.arange(1, n), val_idx=np.arange(0, 1), resume=True, show_progress=False)
    resumed = fit(tiny_table, config, tmp_path, resume=True, show_progress=False)  # the same run resumes
    assert resumed.history["epoch"].tolist() == [1, 2]


def test_a_new_run_refuses_a_folder_holding_a_run_unless_overwrite(tiny_table, tiny_config, tmp_path):
    config = replace(tiny_config, epochs=1)
    fit(tiny_table, config, tmp_path, show_progress=False)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "metrics.csv").write_text("not a run file: one level down")
    before = (tmp_path / "train_state.pt").stat().st_mtime_ns
    with pytest.raises(ParameterError, match=r"already holds a training run \(.*best\.safetensors.*\).*overwrite") as info:
        fit(tiny_table, replace(config, optim=replace(config.optim, lr=1e-3)), tmp_path, show_progress=False)
    assert "\n" not in str(info.value)
    assert (tmp_path / "train_state.pt").stat().st_mtime_ns == before  # nothing touched
    result = fit(tiny_table, replace(config, optim=replace(config.optim, lr=1e-3)), tmp_path, overwrite=True, show_progress=False)
    assert result.history["epoch"].tolist() == [1]
    assert "lr: 0.001" in (tmp_path / "config.yaml").read_text()
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "report" / "metrics.csv").is_file()
    with pytest.raises(ParameterError, match="choose one"):
        fit(tiny_table, config, tmp_path, resume=True, overwrite=True, show_progress=False)


def test_a_partial_run_counts_and_overwrite_clears_fold_folders(tiny_table, tiny_config, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    to_yaml(tiny_config, partial / "config.yaml")  # a run killed before its first epoch ended
    with pytest.raises(ParameterError, match=r"partial: already holds a training run \(config\.yaml\)"):
        fit(tiny_table, replace(tiny_config, epochs=1), partial, show_progress=False)

    cv = tmp_path / "cv"
    config = replace(tiny_config, folds=2, epochs=1)
    fit_folds(tiny_table, config, cv, show_progress=False)
    (cv / "fold0" / "keep.txt").write_text("unrelated")
    with pytest.raises(ParameterError, match=r"already holds a training run \(config\.yaml, fold0/.*"):
        fit(tiny_table, replace(tiny_config, epochs=1), cv, show_progress=False)  # a single run into a K-fold folder
    fit(tiny_table, replace(tiny_config, epochs=1), cv, overwrite=True, show_progress=False)
    assert not (cv / "fold1").exists() and not (cv / "folds.csv").exists() and not (cv / "summary.csv").exists()
    assert sorted(p.name for p in (cv / "fold0").iterdir()) == ["keep.txt"]  # its run files went, the rest stayed
    assert (cv / "best.safetensors").is_file()


def test_folds_one_at_a_time_into_one_run_and_their_guards(tiny_table, tiny_config, tmp_path):
    config = replace(tiny_config, folds=2, epochs=1)
    fit_folds(tiny_table, config, tmp_path, only_fold=0, show_progress=False)
    fit_folds(tiny_table, config, tmp_path, only_fold=1, show_progress=False)  # the same run: adds a fold
    assert sorted(pd.read_csv(tmp_path / "summary.csv")["fold"].astype(str)) == ["0", "1", "oof"]
    with pytest.raises(ParameterError, match=r"already holds fold 0 of this run \(fold0/"):
        fit_folds(tiny_table, config, tmp_path, only_fold=0, show_progress=False)
    with pytest.raises(ParameterError, match=r"already holds a training run"):
        fit_folds(tiny_table, config, tmp_path, show_progress=False)  # all folds again
    with pytest.raises(ParameterError, match=r"already holds a training run"):
        fit_folds(tiny_table, replace(config, optim=replace(config.optim, lr=1e-3)), tmp_path, only_fold=1, show_progress=False)  # another recipe
    with pytest.raises(ParameterError, match=r"config\.yaml: resume refused: config differs in optim\.lr \(0\.003 -> 0\.001\)"):
        fit_folds(tiny_table, replace(config, optim=replace(config.optim, lr=1e-3)), tmp_path, resume=True, show_progress=False)
    (tmp_path / "benchmark.json").write_text("{}")
    fit_folds(tiny_table, replace(config, optim=replace(config.optim, lr=1e-3)), tmp_path, only_fold=1, overwrite=True, show_progress=False)
    assert not (tmp_path / "fold0").exists()  # another recipe: the whole old run went, not only fold 1
    assert (tmp_path / "benchmark.json").is_file() and "lr: 0.001" in (tmp_path / "config.yaml").read_text()
    fit_folds(tiny_table, replace(config, optim=replace(config.optim, lr=1e-3)), tmp_path, only_fold=0, show_progress=False)
    fold1_before = (tmp_path / "fold1" / "best.safetensors").stat().st_mtime_ns
    fit_folds(tiny_table, replace(config, optim=replace(config.optim, lr=1e-3)), tmp_path, only_fold=0, overwrite=True, show_progress=False)  # this fold only
    assert (tmp_path / "fold1" / "best.safetensors").stat().st_mtime_ns == fold1_before
    assert sorted(pd.read_csv(tmp_path / "summary.csv")["fold"].astype(str)) == ["0", "1", "oof"]


def test_k_fold_resume_restarts_a_model_that_never_finished_an_epoch(tiny_table, tiny_config, tmp_path, kill_training_at):
    config = replace(tiny_config, folds=2, epochs=1)
    kill_training_at(1)
    with pytest.raises(KeyboardInterrupt):
        fit_folds(tiny_table, config, tmp_path, show_progress=False)
    kill_training_at(None)
    assert (tmp_path / "fold0" / "config.yaml").is_file() and not (tmp_path / "fold0" / "train_state.pt").exists()
    with pytest.raises(ParameterError, match="already holds a training run"):
        fit_folds(tiny_table, config, tmp_path, show_progress=False)
    results = fit_folds(tiny_table, config, tmp_path, resume=True, show_progress=False)
    assert [r.best_epoch for r in results] == [1, 1]


def test_resume_accepts_a_state_saved_before_new_config_keys_existed(tmp_path):
    """A run started before an upgrade added TrainConfig keys (pseudo, distill, init_from) resumes after it; a real
    difference is still refused."""
    import pytest as _pytest

    from birdcall.config import to_dict as _to_dict
    from birdcall.errors import ParameterError as _ParameterError
    from birdcall.train import TrainConfig as _TrainConfig
    from birdcall.train.rundir import check_resume

    current = {"config": _to_dict(_TrainConfig(optim={"lr": 2e-3})), "data": {"files": "a", "labels": "b", "split": "c"}}
    old = {k: v for k, v in current["config"].items() if k not in ("pseudo", "distill", "init_from")}
    check_resume(tmp_path / "train_state.pt", {"fingerprint": {"config": old, "data": dict(current["data"])}}, current)
    with _pytest.raises(_ParameterError, match=r"config differs in optim\.lr"):
        changed = {**old, "optim": {**old["optim"], "lr": 1e-3}}
        check_resume(tmp_path / "train_state.pt", {"fingerprint": {"config": changed, "data": dict(current["data"])}}, current)
