"""fit: run folder contents, exact resume after an interruption, k-fold layout, divergence handling."""

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from birdcall.errors import BirdcallError, ParameterError
from birdcall.models import load_model
from birdcall.train import fit, fit_folds
from birdcall.train import loop as loop_module


def test_run_folder_and_best_model(tiny_table, tiny_config, tmp_path):
    result = fit(tiny_table, tiny_config, tmp_path, show_progress=False)
    for name in ("config.yaml", "metrics.csv", "last.safetensors", "best.safetensors", "oof.csv", "train_state.pt"):
        assert (tmp_path / name).is_file(), name
    history = pd.read_csv(tmp_path / "metrics.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    assert result.best_epoch == int(history.loc[history["padded_cmap"].idxmax(), "epoch"])
    model, labels, info = load_model(result.best_path)
    assert info["extra"]["epoch"] == result.best_epoch and labels == tiny_table.labels
    oof = pd.read_csv(tmp_path / "oof.csv")
    assert set(oof["filename"]) <= set(tiny_table.frame["filename"]) and list(oof.columns[2:]) == list(labels.codes)


def test_select_last_keeps_the_final_epoch(tiny_table, tiny_config, tmp_path):
    from dataclasses import replace

    result = fit(tiny_table, replace(tiny_config, select="last"), tmp_path, show_progress=False)
    assert result.best_epoch == tiny_config.epochs
    _, _, info = load_model(result.best_path)
    assert info["extra"]["epoch"] == tiny_config.epochs
    assert set(pd.read_csv(tmp_path / "oof.csv")["epoch"]) == {tiny_config.epochs}
    last = load_file(tmp_path / "last.safetensors")
    best = load_file(tmp_path / "best.safetensors")
    assert all(torch.equal(last[k], best[k]) for k in last)
    with pytest.raises(ParameterError, match="select"):
        replace(tiny_config, select="median")


def test_resume_after_interruption_equals_uninterrupted_run(tiny_table, tiny_config, tmp_path, kill_training_at):
    full = fit(tiny_table, tiny_config, tmp_path / "full", show_progress=False)

    kill_training_at(3)  # as if the job were killed during epoch 3
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_table, tiny_config, tmp_path / "cut", show_progress=False)
    assert pd.read_csv(tmp_path / "cut" / "metrics.csv")["epoch"].tolist() == [1, 2]
    kill_training_at(None)
    resumed = fit(tiny_table, tiny_config, tmp_path / "cut", resume=True, show_progress=False)

    a, b = load_file(tmp_path / "full" / "last.safetensors"), load_file(tmp_path / "cut" / "last.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    pd.testing.assert_frame_equal(full.history.drop(columns="seconds"), resumed.history.drop(columns="seconds"))


def test_resume_refuses_a_different_config(tiny_table, tiny_config, tmp_path):
    fit(tiny_table, tiny_config.__class__(**{**tiny_config.__dict__, "epochs": 1}), tmp_path, show_progress=False)
    with pytest.raises(ParameterError, match=r"train_state.pt: resume refused: config differs in epochs \(1 -> 3\)"):
        fit(tiny_table, tiny_config, tmp_path, resume=True, show_progress=False)


def test_non_finite_loss_stops_naming_epoch_and_step(tiny_table, tiny_config, tmp_path):
    bad = tiny_config.__class__(**{**tiny_config.__dict__, "optim": {"lr": 1e12}, "grad_clip": 0.0, "epochs": 2})
    with pytest.raises(BirdcallError, match=r"loss is (nan|inf) at epoch \d+, step \d+"):
        fit(tiny_table, bad, tmp_path, show_progress=False)


def test_k_fold_layout_and_summary(tiny_table, tiny_config, tmp_path):
    config = tiny_config.__class__(**{**tiny_config.__dict__, "folds": 3, "epochs": 1})
    results = fit_folds(tiny_table, config, tmp_path, show_progress=False)
    assert len(results) == 3
    folds = pd.read_csv(tmp_path / "folds.csv")
    assert sorted(folds["fold"].unique()) == [0, 1, 2] and len(folds) == len(tiny_table.frame)
    oof = pd.read_csv(tmp_path / "oof.csv")
    assert sorted(oof["filename"]) == sorted(tiny_table.frame["filename"])  # every clip predicted exactly once
    for fold in range(3):
        fold_oof = pd.read_csv(tmp_path / f"fold{fold}" / "oof.csv")
        assert set(fold_oof["filename"]) == set(folds.loc[folds["fold"] == fold, "filename"])
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary["fold"].astype(str).tolist() == ["0", "1", "2", "oof"]
    assert np.isfinite(summary["padded_cmap"]).all()
    with pytest.raises(ParameterError):
        fit_folds(tiny_table, config, tmp_path, only_fold=3, show_progress=False)


@pytest.mark.integration
def test_seed_ensemble_layout_oof_mean_and_inference_models(tiny_table, tiny_config, tmp_path):
    from dataclasses import replace

    from birdcall.infer import run_models
    from birdcall.metrics import score_arrays
    from birdcall.train.cv import SEED_STRIDE

    config = replace(tiny_config, folds=2, epochs=1, seeds=2, select="last")
    results = fit_folds(tiny_table, config, tmp_path, show_progress=False)
    assert len(results) == 4  # 2 folds x 2 seeds
    codes = list(tiny_table.labels.codes)
    oof = pd.read_csv(tmp_path / "oof.csv").set_index("filename")
    assert sorted(oof.index) == sorted(tiny_table.frame["filename"])  # one row per clip: the seeds are averaged, not stacked
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("fold")
    for fold in (0, 1):
        first = pd.read_csv(tmp_path / f"fold{fold}" / "oof.csv").set_index("filename")
        second = pd.read_csv(tmp_path / f"fold{fold}" / "seed1" / "oof.csv").set_index("filename").loc[first.index]
        assert not np.allclose(first[codes], second[codes])  # another seed: another model
        np.testing.assert_allclose(oof.loc[first.index, codes], (first[codes] + second[codes]) / 2, atol=2e-6)
        seed_of = [load_model(tmp_path / f"fold{fold}" / d / "best.safetensors")[2] for d in ("", "seed1")]
        assert [pd.read_csv(tmp_path / f"fold{fold}" / d / "metrics.csv")["epoch"].tolist() for d in ("", "seed1")] == [[1], [1]]
        assert (tmp_path / f"fold{fold}" / "seed1" / "config.yaml").read_text().count(f"seed: {SEED_STRIDE}") == 1
        assert all(info["labels"]["codes"] == codes for info in seed_of)
        truth = (tiny_table.labels.encode(tiny_table.frame.set_index("filename").loc[first.index, "labels"]) > 0).astype(int)
        expected = score_arrays(truth, oof.loc[first.index, codes].to_numpy())["padded_cmap"]
        assert summary.loc[str(fold), "padded_cmap"] == pytest.approx(expected) and summary.loc[str(fold), "models"] == 2
    assert [p.relative_to(tmp_path).as_posix() for p in run_models(tmp_path)] == [
        "fold0/best.safetensors", "fold0/seed1/best.safetensors", "fold1/best.safetensors", "fold1/seed1/best.safetensors"]
    with pytest.raises(ParameterError, match="seeds"):
        replace(tiny_config, folds=0, seeds=2)


def test_every_augmentation_stage_and_the_full_loss_optimiser_set_train(tiny_table, tiny_config, tmp_path, monkeypatch):
    from dataclasses import replace

    from birdcall.augment import AugmentConfig

    augment = AugmentConfig(waveform=[{"name": "time_shift"}, {"name": "pink_noise"}, {"name": "gain"}], batch=[{"name": "mixup"}],
                            spectrogram=[{"name": "cutmix"}, {"name": "freq_mask", "p": 1.0, "max_width": 4}, {"name": "time_mask", "p": 1.0, "max_width": 4}])
    config = tiny_config.__class__(**{**tiny_config.__dict__, "epochs": 2, "augment": augment,
                                      "loss": {"loss": "bce+focal", "label_smoothing": 0.05, "class_weight_power": 0.5},
                                      "optim": {"optimizer": "sgd", "lr": 0.05}, "ema_decay": 0.9, "amp": True,
                                      "data": replace(tiny_config.data, balanced_sampling=True, cache_dir=str(tmp_path / "cache"))})
    seen = []
    from birdcall.models.cnn import WaveformModel

    original = WaveformModel.forward_features

    def spy(self, x):
        seen.append(x.ndim)
        return original(self, x)

    monkeypatch.setattr(WaveformModel, "forward_features", spy)
    result = fit(tiny_table, config, tmp_path / "run", show_progress=False)
    assert 4 in seen and 2 in seen  # training fed augmented features, evaluation raw waveforms
    assert np.isfinite(result.history["train_loss"]).all()
    assert any((tmp_path / "cache").rglob("*.npy"))  # clips decoded once into the memory-mapped cache


@pytest.mark.integration
def test_training_draws_as_it_did_with_the_flat_augment_builders(tiny_table, tiny_config, tmp_path, monkeypatch, legacy_stages):
    """Augment as lists trains bit-identical weights to the frozen builders of the flat AugmentConfig (issue 18)."""
    from dataclasses import replace

    from birdcall.augment import AugmentConfig
    from birdcall.config import from_dict

    flat = {"time_shift_p": 0.5, "gain_p": 0.5, "pink_noise_p": 0.3, "background_noise_snr_db": [5, 20], "mixup_p": 0.5, "cutmix_p": 0.5,
            "freq_mask_p": 0.8, "time_mask_p": 0.8, "freq_mask_max_width": 4, "time_mask_max_width": 4}  # fmt: skip
    config = replace(tiny_config, epochs=2, augment=from_dict(AugmentConfig, flat))
    new = fit(tiny_table, config, tmp_path / "lists", show_progress=False)
    plain = fit(tiny_table, replace(config, augment=AugmentConfig()), tmp_path / "plain", show_progress=False)
    assert plain.history["train_loss"].tolist() != new.history["train_loss"].tolist()  # the augmentation does reach the weights
    monkeypatch.setattr(loop_module, "waveform_augment", lambda config, background: legacy_stages(flat, background)[0])
    monkeypatch.setattr(loop_module, "build_batch_augment", lambda augment: legacy_stages(flat, [])[1])
    monkeypatch.setattr(loop_module, "build_spectrogram_augment", lambda augment: legacy_stages(flat, [])[2])
    old = fit(tiny_table, config, tmp_path / "flat", show_progress=False)
    a, b = load_file(tmp_path / "lists" / "last.safetensors"), load_file(tmp_path / "flat" / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    assert new.history["train_loss"].tolist() == old.history["train_loss"].tolist()


def test_pool_and_drop_path_reach_the_saved_model(tiny_table, tiny_config, tmp_path):
    from dataclasses import replace

    from birdcall.train.loop import model_overrides

    assert model_overrides(tiny_config) == {"drop_rate": tiny_config.net.drop_rate}  # None keeps the preset's values
    config = replace(tiny_config, epochs=1, net=replace(tiny_config.net, pool="avgmax", drop_path_rate=0.1))
    assert model_overrides(config) == {"drop_rate": tiny_config.net.drop_rate, "pool": "avgmax", "drop_path_rate": 0.1}
    result = fit(tiny_table, config, tmp_path, show_progress=False)
    model, _, _ = load_model(result.best_path)
    assert model.config.pool == "avgmax" and model.config.drop_path_rate == 0.1
    with pytest.raises(ParameterError, match="pool"):
        fit(tiny_table, replace(config, net={"pool": "median"}), tmp_path / "bad", show_progress=False)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["test_vit", "test_sed_vit"])
def test_the_audio_transformers_train_through_fit(tiny_table, tiny_config, tmp_path, name):
    """One epoch of the transformer family through the same fit, and the saved model reloads as trained."""
    from dataclasses import replace

    result = fit(tiny_table, replace(tiny_config, model=name, epochs=1), tmp_path, show_progress=False)
    assert np.isfinite(result.history["train_loss"]).all() and result.history["epoch"].tolist() == [1]
    model, labels, _ = load_model(result.best_path)
    assert model.config.backbone == "test_vit" and model.backbone.patch_embed.grid_size == (2, 7) and labels == tiny_table.labels
