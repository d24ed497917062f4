"""Every family through its tiny registered variant: test_cnn, test_sed, test_crnn."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from birdcall.data import LabelSet
from birdcall.errors import ParameterError
from birdcall.features import FeatureConfig
from birdcall.models import BirdCNN, BirdCRNN, BirdSED, clip_logits, combine_clip_logits, create_model, load_model, save_model

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
FAMILIES = {"test_cnn": BirdCNN, "test_sed": BirdSED, "test_crnn": BirdCRNN}
FRAME_MODELS = ["test_sed", "test_crnn"]
LABELS = LabelSet(("a", "b", "c"))


def _wave(batch=2, seed=0):
    return torch.randn(batch, SMALL.clip_samples, generator=torch.Generator().manual_seed(seed)) * 0.1


def _frames(model, x):
    """T' as the backbone downsamples time: its map's last axis."""
    with torch.no_grad():
        return model.backbone.forward_features(model.frontend(x)).shape[-1]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_shapes_no_nan_and_a_gradient_on_every_parameter(name, torch_seed):
    model = create_model(name, num_classes=3, features=SMALL)
    assert type(model) is FAMILIES[name] and model.config.arch == name[5:] and model.feature_config == SMALL
    x = _wave()
    out = model(x)
    logits = clip_logits(out)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    if name in FRAME_MODELS:
        assert set(out) == {"clipwise", "framewise"}
        # 1 s at hop 256 -> 126 spectrogram frames; both tiny backbones halve time 5 times with "same" padding
        assert _frames(model, x) == math.ceil(SMALL.num_frames(SMALL.clip_samples) / 32) == 4
        assert out["framewise"].shape == (2, 4, 3) and torch.isfinite(out["framewise"]).all()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert missing == []
    embedding = model.forward_head(model.forward_features(x), pre_logits=True)
    expected = (2, 4, model.num_features) if name in FRAME_MODELS else (2, model.num_features)
    assert embedding.shape == expected


@pytest.mark.parametrize("name", FRAME_MODELS)
def test_clipwise_is_the_documented_mixture_of_the_frame_outputs(name, torch_seed):
    model = create_model(name, num_classes=3, features=SMALL).eval()
    x = _wave(seed=1)
    with torch.no_grad():
        out = model(x)
        seq = model.forward_head(model.forward_features(x), pre_logits=True)
        framewise, log_attention = model.head(seq)
    attention = log_attention.exp().double()
    torch.testing.assert_close(attention.sum(dim=1), torch.ones(2, 3, dtype=torch.float64))  # over time
    torch.testing.assert_close(framewise, out["framewise"], rtol=0, atol=0)
    probs = torch.sigmoid(framewise.double())
    p = 0.75 * (attention * probs).sum(dim=1) + 0.25 * probs.amax(dim=1)
    torch.testing.assert_close(torch.sigmoid(out["clipwise"].double()), p, rtol=0, atol=1e-6)
    torch.testing.assert_close(out["clipwise"], combine_clip_logits(framewise, log_attention, (0.75, 0.25)), rtol=0, atol=0)


@pytest.mark.parametrize("name", FRAME_MODELS)
def test_examples_do_not_interact_in_eval(name, torch_seed):
    model = create_model(name, num_classes=3, features=SMALL).eval()
    x = _wave(seed=2)
    with torch.no_grad():
        both, first = model(x), model(x[:1])
    for key in ("clipwise", "framewise"):
        torch.testing.assert_close(both[key][:1], first[key], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_reset_classifier(name, torch_seed):
    model = create_model(name, num_classes=3, features=SMALL)
    before = {n: p.clone() for n, p in model.named_parameters() if n.startswith(("frontend", "backbone"))}
    model.reset_classifier(5)
    out = model(_wave(batch=1))
    assert clip_logits(out).shape == (1, 5) and model.config.num_classes == 5 and model.num_classes == 5
    if name in FRAME_MODELS:
        assert out["framewise"].shape == (1, 4, 5)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)
    with pytest.raises(ParameterError, match="num_classes"):
        model.reset_classifier(0)
    assert model.config.num_classes == 5 and clip_logits(model(_wave(batch=1))).shape == (1, 5)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("test_cnn", {"pool": "avgmax"}),
        ("test_sed", {}),
        ("test_sed", {"clip_score": (0.5, 0.5), "smooth_kernel": 5}),
        ("test_crnn", {}),
        ("test_crnn", {"rnn_type": "lstm", "rnn_layers": 2, "rnn_hidden": 8, "clip_score": (1.0, 0.0)}),
    ],
)
def test_save_load_round_trip_gives_identical_outputs(name, overrides, tmp_path, torch_seed):
    model = create_model(name, num_classes=3, features=SMALL, **overrides).eval()
    path = save_model(model, tmp_path / "m.safetensors", labels=LABELS)
    loaded, labels, _ = load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config and labels == LABELS
    x = _wave(seed=3)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=0)
    else:
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_files_written_before_the_new_fields_still_load(tmp_path, torch_seed):
    model = create_model("test_cnn", num_classes=3, features=SMALL).eval()
    path = save_model(model, tmp_path / "m.safetensors", labels=LABELS)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["birdcall"])
    for key in ("clip_score", "smooth_kernel", "rnn_type", "rnn_hidden", "rnn_layers"):
        del meta["model"][key]
    old = tmp_path / "old.safetensors"
    save_file(load_file(str(path)), str(old), metadata={"birdcall": json.dumps(meta)})
    loaded, _, _ = load_model(old)
    assert loaded.config == model.config
    x = _wave(seed=4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_sed_without_smoothing_and_multichannel_features(torch_seed):
    features = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0, channels=("logmel", "logmel_delta", "mfcc"))
    model = create_model("test_sed", num_classes=2, features=features, smooth_kernel=1)
    out = model(torch.randn(2, features.clip_samples) * 0.1)
    assert out["clipwise"].shape == (2, 2) and out["framewise"].shape == (2, 4, 2)


def test_a_backbone_without_a_2d_map_is_refused(torch_seed):
    model = create_model("test_cnn", num_classes=2, features=SMALL)
    model.backbone.forward_features = lambda x: torch.zeros(x.shape[0], 5, 8)  # what a transformer gives
    with pytest.raises(ParameterError, match="not a \\(B, C, F, T\\) map"):
        model(_wave())
