"""The audio transformer family (issue 21, item 1): AudioViT backbone, clip and SED heads, other window lengths."""

import pytest
import torch

from birdcall.data import LabelSet
from birdcall.errors import ParameterError
from birdcall.features import FeatureConfig
from birdcall.models import (
    BirdCNN,
    BirdSED,
    clip_logits,
    create_model,
    list_models,
    load_model,
    save_model,
)
from birdcall.models.backbones import VIT_BACKBONES, create_backbone

DEFAULT = FeatureConfig()  # the seed recipe: 128 mels, 5 s at hop 512 -> 313 frames -> 8 x 19 patches of 16 x 16
SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)  # 2 x 7 patches


def _wave(features, batch=2, seconds=None, seed=0):
    n = features.clip_samples if seconds is None else int(seconds * features.sample_rate)
    return torch.randn(batch, n, generator=torch.Generator().manual_seed(seed)) * 0.1


def test_presets_and_sizes():
    assert {"vit_tiny", "vit_small", "sed_vit_tiny", "sed_vit_small", "test_vit", "test_sed_vit"} <= set(list_models())
    model = create_model("vit_tiny", num_classes=3)  # default features
    vit = model.backbone
    assert (vit.embed_dim, len(vit.blocks), vit.blocks[0].attn.num_heads) == (192, 12, 3)
    assert vit.cls_token is None and vit.patch_embed.grid_size == (8, 19) and vit.pos_embed.shape == (1, 8 * 19, 192)
    assert vit.patch_embed.proj.in_channels == DEFAULT.num_channels and model.num_features == 192
    assert 5.0e6 < sum(p.numel() for p in model.parameters()) < 6.0e6  # DeiT-tiny without its ImageNet head


@pytest.mark.parametrize(("name", "family"), [("test_vit", BirdCNN), ("test_sed_vit", BirdSED)])
def test_forward_shapes_at_the_default_features_and_a_gradient_everywhere(name, family, torch_seed):
    model = create_model(name, num_classes=3, features=DEFAULT)
    assert type(model) is family and model.backbone.patch_embed.grid_size == (8, 19)
    x = _wave(DEFAULT)
    assert model.forward_features(x).shape == (2, 32, 8, 19)  # (B, embed_dim, mel patches, time patches)
    out = model(x)
    logits = clip_logits(out)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    if family is BirdSED:
        assert out["framewise"].shape == (2, 19, 3) and torch.isfinite(out["framewise"]).all()  # one frame per time patch
    logits.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


@pytest.mark.parametrize("seconds", [0.6, 2.5, 12.0])
def test_shorter_and_longer_windows_run_with_a_time_resampled_position_embedding(seconds, torch_seed):
    model = create_model("test_sed_vit", num_classes=3, features=SMALL).eval()
    n_time = SMALL.num_frames(int(seconds * SMALL.sample_rate)) // 16
    with torch.no_grad():
        out = model(_wave(SMALL, seconds=seconds))
    assert out["clipwise"].shape == (2, 3) and out["framewise"].shape == (2, n_time, 3)
    assert torch.isfinite(out["clipwise"]).all()


def test_position_embedding_is_untouched_at_the_training_length_and_interpolated_otherwise():
    vit = create_backbone("test_vit", in_chans=1, input_size=(32, 126))
    assert vit._audio_pos_embed(2, 7) is vit.pos_embed
    same = vit._audio_pos_embed(2, 14)  # twice as long: each training entry is between two of the new ones
    grid = vit.pos_embed.reshape(2, 7, -1)
    torch.testing.assert_close(same.reshape(2, 14, -1)[:, 0], grid[:, 0])  # the ends are kept
    torch.testing.assert_close(same.reshape(2, 14, -1)[:, 1], 0.75 * grid[:, 0] + 0.25 * grid[:, 1])


def test_too_short_windows_and_other_mel_counts_are_refused():
    with pytest.raises(ParameterError, match="smaller than one 16x16 patch"):
        create_model("test_vit", num_classes=2, features=FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=0.1))
    model = create_model("test_vit", num_classes=2, features=SMALL)
    with pytest.raises(ParameterError, match="frequency patches"):
        model.backbone.forward_features(torch.zeros(1, 1, 64, 126))
    with pytest.raises(ParameterError, match="input_size"):
        create_backbone("test_vit", in_chans=1)
    assert set(VIT_BACKBONES) >= {"vit_tiny", "vit_small", "test_vit"}


def test_model_file_round_trip(tmp_path, torch_seed):
    model = create_model("test_sed_vit", num_classes=2, features=SMALL).eval()
    path = save_model(model, tmp_path / "vit.safetensors", labels=LabelSet(("a", "b")))
    loaded, labels, _ = load_model(path)
    x = _wave(SMALL)
    with torch.no_grad():
        a, b = model(x), loaded.eval()(x)
    assert labels.codes == ("a", "b") and loaded.backbone.patch_embed.grid_size == (2, 7)
    torch.testing.assert_close(a["clipwise"], b["clipwise"], rtol=0, atol=0)
