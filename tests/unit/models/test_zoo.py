import contextlib

import pytest
import torch

from birdcall._compat import import_timm
from birdcall.errors import ParameterError
from birdcall.features import FeatureConfig
from birdcall.models import ModelConfig, clip_logits, create_model, list_models, model_config
from birdcall.models.backbones import VIT_BACKBONES, create_backbone
from birdcall.models.zoo import BACKBONES

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
REQUIRED = list(BACKBONES)  # efficientnet_b0, mobilenetv3 large/small, resnet34, resnext50, regnety_008, eca_nfnet_l0, convnext tiny/nano


def test_every_family_on_every_backbone_is_a_valid_preset():
    timm = import_timm()
    names = list_models()
    for arch in ("cnn", "sed", "crnn"):
        assert f"test_{arch}" in names
        for short in REQUIRED:
            config = model_config(f"{arch}_{short}", num_classes=4)
            assert config.arch == arch and timm.is_model(config.backbone)
    assert list_models("sed_*") == sorted([f"sed_{s}" for s in BACKBONES] + [f"sed_{v}" for v in VIT_BACKBONES if not v.startswith("test_")])
    assert model_config("cnn_resnext50", num_classes=2).backbone == "resnext50_32x4d"


@pytest.mark.parametrize("short", REQUIRED)
def test_each_backbone_builds_with_one_input_channel(short):
    """Construction only (the big ones take ~1 s); forwards are in the cheap tests below."""
    backbone = create_backbone(BACKBONES[short], in_chans=1)
    first_conv = backbone.get_submodule(backbone.pretrained_cfg["first_conv"])
    assert first_conv.in_channels == 1 and backbone.num_features > 0


@pytest.mark.parametrize("name", ["cnn_mobilenetv3_small", "sed_mobilenetv3_small", "crnn_mobilenetv3_small"])
def test_a_real_backbone_runs_in_every_family(name, torch_seed):
    model = create_model(name, num_classes=3, features=SMALL, rnn_hidden=32).eval()
    with torch.no_grad():
        out = model(torch.randn(1, SMALL.clip_samples) * 0.1)
    assert clip_logits(out).shape == (1, 3) and torch.isfinite(clip_logits(out)).all()
    if isinstance(out, dict):
        assert out["framewise"].shape == (1, 4, 3)


def test_bad_names_fields_and_values():
    with pytest.raises(ParameterError, match="unknown model 'nope'"):
        create_model("nope", num_classes=2)
    with pytest.raises(ParameterError, match="unknown ModelConfig field"):
        create_model("test_sed", num_classes=2, clip_weights=(1.0, 0.0))
    with pytest.raises(ParameterError, match="unknown model architecture 'rnn'"):
        model_config("test_cnn", num_classes=2, arch="rnn")
    with pytest.raises(ParameterError, match="clip_score"):
        ModelConfig(arch="sed", num_classes=2, clip_score=(0.75, 0.5))
    with pytest.raises(ParameterError, match="clip_score"):
        ModelConfig(arch="sed", num_classes=2, clip_score=(1.0,))
    with pytest.raises(ParameterError, match="smooth_kernel"):
        ModelConfig(arch="sed", num_classes=2, smooth_kernel=2)
    with pytest.raises(ParameterError, match="rnn_type"):
        ModelConfig(arch="crnn", num_classes=2, rnn_type="transformer")
    with pytest.raises(ParameterError, match="rnn_hidden"):
        ModelConfig(arch="crnn", num_classes=2, rnn_hidden=0)
    assert ModelConfig(num_classes=2, clip_score=[1, 0]).clip_score == (1.0, 0.0)


@pytest.mark.integration
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.birdnet) if n == "birdnet_finetune" else n for n in list_models() if not n.startswith("test_")],
)
def test_every_preset_runs(name, torch_seed):
    features, birdnet = SMALL, contextlib.nullcontext()
    if name == "birdnet_finetune":  # BirdNET's torch port itself (the extra): 48 kHz windows
        features = FeatureConfig(sample_rate=48_000, clip_duration=5.0)
    elif name.startswith("birdnet_"):  # heads on BirdNET: a window of at least one 3-s segment, the stand-in BirdNET
        from birdcall.birdnet import using_model
        from birdcall.testing.birdnet import StandInBirdNet

        features = FeatureConfig(sample_rate=8000, clip_duration=5.0, fmax=4000.0, n_fft=512, hop_length=256, n_mels=32)
        birdnet = using_model(StandInBirdNet(sample_rate=8000, segment_samples=24000))
    model = create_model(name, num_classes=3, features=features).eval()
    with torch.no_grad(), birdnet:
        out = model(torch.randn(1, features.clip_samples) * 0.1)
    assert clip_logits(out).shape == (1, 3) and torch.isfinite(clip_logits(out)).all()
    if isinstance(out, dict):
        with torch.no_grad():
            frames = model.forward_features(torch.zeros(1, SMALL.clip_samples)).shape[-1]
        assert out["framewise"].shape == (1, frames, 3) and torch.isfinite(out["framewise"]).all()
