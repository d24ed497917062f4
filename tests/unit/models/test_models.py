import pytest
import torch

from birdcall.data import LabelSet
from birdcall.errors import CheckpointError, ParameterError
from birdcall.features import FeatureConfig
from birdcall.models import ModelConfig, create_model, list_models, load_model, read_model_info, save_model

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)


@pytest.fixture
def model(torch_seed):
    return create_model("test_cnn", num_classes=3, features=SMALL)


def test_forward_shape_no_nan_and_every_parameter_gets_a_gradient(model):
    x = torch.randn(2, SMALL.clip_samples) * 0.1
    logits = model(x)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    logits.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert missing == []
    embedding = model.forward_head(model.forward_features(x), pre_logits=True)
    assert embedding.shape == (2, model.num_features)


def test_reset_classifier_changes_outputs_and_config(model):
    model.reset_classifier(5)
    assert model(torch.zeros(1, SMALL.clip_samples)).shape == (1, 5) and model.config.num_classes == 5


def test_save_load_round_trip_gives_identical_outputs(model, tmp_path):
    labels = LabelSet(("a", "b", "c"), ("A a", "B b", "C c"), ("Ay", "Bee", "Cee"))
    path = save_model(model, tmp_path / "m.safetensors", labels=labels, extra={"epoch": 3})
    model.eval()
    x = torch.randn(2, SMALL.clip_samples) * 0.1
    loaded, loaded_labels, info = load_model(path)
    assert loaded_labels == labels and info["extra"]["epoch"] == 3
    assert loaded.feature_config == SMALL and loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert read_model_info(path)["features"]["n_mels"] == 32


def test_model_file_is_not_a_pickle_and_bad_files_raise(model, tmp_path):
    labels = LabelSet(("a", "b", "c"))
    path = save_model(model, tmp_path / "m.safetensors", labels=labels)
    assert not path.read_bytes().startswith(b"\x80")  # no pickle protocol header
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="bad.safetensors: not a birdcall model file"):
        load_model(bad)
    with pytest.raises(CheckpointError, match="file not found"):
        load_model(tmp_path / "none.safetensors")
    with pytest.raises(CheckpointError, match="2 labels for a model with 3 outputs"):
        save_model(model, tmp_path / "x.safetensors", labels=LabelSet(("a", "b")))


def test_presets_and_bad_names():
    assert "cnn_efficientnet_b0" in list_models() and "test_cnn" in list_models()
    with pytest.raises(ParameterError, match="unknown model"):
        create_model("nope", num_classes=2)
    with pytest.raises(ParameterError, match="num_classes"):
        ModelConfig(num_classes=0)
    with pytest.raises(ParameterError, match="unknown timm backbone"):
        create_model("test_cnn", num_classes=2, features=SMALL, backbone="no_such_net")


def test_multichannel_features_feed_the_backbone(torch_seed):
    features = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0, channels=("logmel", "logmel_delta", "mfcc"))
    model = create_model("test_cnn", num_classes=2, features=features)
    assert model(torch.randn(2, features.clip_samples) * 0.1).shape == (2, 2)
