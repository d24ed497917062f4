"""`init_weights` (``TrainConfig.init_from``): starting weights from a birdcall model file or a timm backbone's weights.

Tiny models (``test_cnn``, ``test_sed``, ``test_crnn``) on small features; every file is written under tmp_path."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from birdcall._compat import import_timm
from birdcall.data.labels import LabelSet
from birdcall.errors import CheckpointError, ParameterError
from birdcall.features import FeatureConfig
from birdcall.models import create_model, save_model
from birdcall.train.init import InitReport, init_weights

import_timm()  # the torchvision workaround before the tests' own timm imports (so a test runs alone, too)

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
ABC = LabelSet(("aaa", "bbb", "ccc"))
HEAD = {"test_cnn": "classifier.", "test_sed": "head.", "test_crnn": "head."}
BACKBONE = {"test_cnn": "test_efficientnet", "test_sed": "test_efficientnet", "test_crnn": "test_resnet"}


def _model(name="test_cnn", *, seed, labels=ABC, features=SMALL, **overrides):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return create_model(name, num_classes=len(labels), features=features, **overrides)


def _checkpoint(path, name="test_cnn", *, labels=ABC, features=SMALL, seed=1, **overrides):
    """A birdcall model file as after training: no tensor keeps its initial value (zero biases, BatchNorm's 0 and 1
    statistics), so a tensor left fresh cannot pass for a loaded one. The front end is left as built."""
    model = _model(name, seed=seed, labels=labels, features=features, **overrides)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not key.startswith("frontend."):
                tensor.add_(torch.rand(tensor.shape, generator=gen))
    save_model(model, path, labels=labels)
    return load_file(str(path))


def _timm_weights(name, seed=3):
    """State dict of a plain timm model (3 input channels, 1000-class classifier), as a downloaded file holds."""
    timm = import_timm()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return {k: v.contiguous() for k, v in timm.create_model(name, pretrained=False).state_dict().items()}


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------------ birdcall model files


@pytest.mark.parametrize("name", ["test_cnn", "test_sed", "test_crnn"])
def test_same_species_load_every_tensor(name, tmp_path):
    saved = _checkpoint(tmp_path / "m.safetensors", name)
    model = _model(name, seed=2)
    assert any(not torch.equal(v, saved[k]) for k, v in model.state_dict().items())  # the fresh model differs
    report = init_weights(model, tmp_path / "m.safetensors", labels=ABC)
    state = model.state_dict()
    assert state.keys() == saved.keys()
    for key, tensor in state.items():
        assert torch.equal(tensor, saved[key]), key
    assert report == InitReport(path=str(tmp_path / "m.safetensors"), source="birdcall", loaded=len(saved), head="loaded")


@pytest.mark.parametrize("name", ["test_cnn", "test_sed", "test_crnn"])
def test_other_species_keep_the_fresh_head_and_load_the_rest(name, tmp_path):
    saved = _checkpoint(tmp_path / "m.safetensors", name)
    other = LabelSet(("xxx", "yyy", "zzz"))  # as many species as the file: shapes alone would not tell
    fresh = _state(_model(name, seed=2, labels=other))
    model = _model(name, seed=2, labels=other)
    report = init_weights(model, tmp_path / "m.safetensors", labels=other)
    head = HEAD[name]
    head_keys = [k for k in saved if k.startswith(head)]
    assert head_keys and report.head == "reinitialised"
    for key, tensor in model.state_dict().items():
        if key.startswith(head):
            assert torch.equal(tensor, fresh[key]), key
            assert not torch.equal(tensor, saved[key]), key
        else:
            assert torch.equal(tensor, saved[key]), key
    assert report.loaded == len(saved) - len(head_keys)
    assert sorted(k for k, _ in report.skipped) == sorted(head_keys)


@pytest.mark.parametrize("name", ["test_cnn", "test_sed", "test_crnn"])
def test_shared_species_rows_of_the_head_are_copied(name, tmp_path):
    saved = _checkpoint(tmp_path / "m.safetensors", name)
    labels = LabelSet(("bbx", "ccc", "new", "aaa"))  # ccc <- row 2, aaa <- row 0; bbx and new stay fresh
    fresh = _state(_model(name, seed=2, labels=labels))
    model = _model(name, seed=2, labels=labels)
    report = init_weights(model, tmp_path / "m.safetensors", labels=labels)
    assert report.head == "partial: 2 of 4 species"
    state = model.state_dict()
    head_keys = [k for k in state if k.startswith(HEAD[name])]
    assert len(head_keys) == (2 if name == "test_cnn" else 4)  # weight + bias (+ attention weight + bias)
    for key in head_keys:
        assert state[key].shape[0] == 4
        assert torch.equal(state[key][1], saved[key][2]), key
        assert torch.equal(state[key][3], saved[key][0]), key
        assert torch.equal(state[key][[0, 2]], fresh[key][[0, 2]]), key
    backbone = [k for k in state if k.startswith("backbone.")]
    assert backbone and all(torch.equal(state[k], saved[k]) for k in backbone)


def test_the_same_species_in_another_order_permute_the_head_rows(tmp_path):
    saved = _checkpoint(tmp_path / "m.safetensors")
    labels = LabelSet(("ccc", "aaa", "bbb"))
    model = _model(seed=2)
    report = init_weights(model, tmp_path / "m.safetensors", labels=labels)
    assert report.head == "partial: 3 of 3 species"
    assert torch.equal(model.classifier.weight.detach(), saved["classifier.weight"][[2, 0, 1]])
    assert torch.equal(model.classifier.bias.detach(), saved["classifier.bias"][[2, 0, 1]])


@pytest.mark.parametrize(("saved_as", "built_as"), [("test_sed", "test_cnn"), ("test_crnn", "test_sed"), ("test_cnn", "test_crnn")])
def test_another_architecture_is_refused_in_one_line(saved_as, built_as, tmp_path):
    path = tmp_path / "m.safetensors"
    _checkpoint(path, saved_as)
    model = _model(built_as, seed=2)
    before = _state(model)
    with pytest.raises(CheckpointError) as info:
        init_weights(model, path, labels=ABC)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert f"{saved_as[5:]}/{BACKBONE[saved_as]}" in message and f"{built_as[5:]}/{BACKBONE[built_as]}" in message
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing loaded


def test_other_feature_values_load_with_a_warning_and_keep_the_models_front_end(tmp_path):
    saved = _checkpoint(tmp_path / "m.safetensors", features=dataclasses.replace(SMALL, fmax=6000.0))
    model = _model(seed=2)
    fresh = _state(model)
    report = init_weights(model, tmp_path / "m.safetensors", labels=ABC)
    state = model.state_dict()
    assert not torch.equal(saved["frontend.logmel.mel_basis"], fresh["frontend.logmel.mel_basis"])
    assert torch.equal(state["frontend.logmel.mel_basis"], fresh["frontend.logmel.mel_basis"])  # this run's fmax
    assert all(torch.equal(state[k], saved[k]) for k in state if not k.startswith("frontend."))
    assert report.head == "loaded"
    assert len(report.warnings) == 1 and "fmax 6000.0 in the file, 8000.0 in the model" in report.warnings[0]
    assert {k for k, _ in report.skipped} == {k for k in state if k.startswith("frontend.")}
    assert report.line().endswith("4 skipped (4 front end: the model's features differ), head loaded; warning: " + report.warnings[0])


def test_other_model_settings_that_change_no_tensor_load_with_a_warning(tmp_path):
    saved = _checkpoint(tmp_path / "m.safetensors", pool="avgmax", drop_rate=0.3)
    model = _model(seed=2)
    report = init_weights(model, tmp_path / "m.safetensors", labels=ABC)
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    assert report.warnings == ("model settings differ (pool 'avgmax' in the file, 'avg' in the model); the model follows its own",)  # not drop_rate


@pytest.mark.parametrize(
    ("features", "named"),
    [
        (dataclasses.replace(SMALL, n_mels=48), "mel_basis is \\(48, 257\\) in the file, \\(32, 257\\) in the model; settings that differ: n_mels 48 in the file, 32"),
        (dataclasses.replace(SMALL, channels=("logmel", "logmel_delta")), "conv_stem.weight is \\(24, 2, 3, 3\\) in the file, \\(24, 1, 3, 3\\).*channels"),
        (dataclasses.replace(SMALL, sample_rate=24_000), "another sample rate .*sample_rate 24000 in the file, 32000 in the model"),
    ],
)
def test_features_that_change_tensors_or_the_sample_rate_are_refused(features, named, tmp_path):
    path = tmp_path / "m.safetensors"
    _checkpoint(path, features=features)
    model = _model(seed=2)
    before = _state(model)
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(path))}: .*{named}") as info:
        init_weights(model, path, labels=ABC)
    assert "\n" not in str(info.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_model_setting_that_changes_tensors_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    _checkpoint(path, "test_crnn", rnn_hidden=8)
    with pytest.raises(CheckpointError, match=r"does not fit the model: rnn\.weight_ih_l0 is \(24, 96\) in the file, \(48, 96\) in the model \(and \d+ more\); settings that differ: rnn_hidden 8 in the file, 16 in the model$"):
        init_weights(_model("test_crnn", seed=2), path, labels=ABC)


# ------------------------------------------------------------------------------------------------ backbone weights


@pytest.mark.parametrize("form", ["safetensors", "pth", "wrapped pth"])
def test_timm_weights_load_into_the_backbone_with_the_first_conv_adapted(form, tmp_path):
    from timm.models._manipulate import adapt_input_conv

    weights = _timm_weights("test_efficientnet")
    assert weights["conv_stem.weight"].shape[1] == 3 and "classifier.weight" in weights
    if form == "safetensors":
        path = tmp_path / "model.safetensors"
        save_file(weights, str(path))
    else:
        path = tmp_path / "pytorch_model.pth"
        torch.save(weights if form == "pth" else {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in weights.items()}}, path)
    model = _model(seed=2)
    fresh = _state(model)
    report = init_weights(model, path, labels=ABC)
    state = model.state_dict()
    conv = state["backbone.conv_stem.weight"]
    assert conv.shape == (weights["conv_stem.weight"].shape[0], 1, 3, 3)
    assert torch.equal(conv, adapt_input_conv(1, weights["conv_stem.weight"]))
    loaded = [k for k in weights if f"backbone.{k}" in state and k != "conv_stem.weight"]
    assert len(loaded) == len([k for k in state if k.startswith("backbone.")]) - 1  # every other backbone tensor
    for key in loaded:
        assert torch.equal(state[f"backbone.{key}"], weights[key]), key
    assert torch.equal(state["classifier.weight"], fresh["classifier.weight"])  # birdcall's head stays fresh
    assert not torch.equal(fresh["backbone.blocks.0.0.conv.weight"], weights["blocks.0.0.conv.weight"])
    assert report.source == "weights" and report.head == "reinitialised"
    assert report.loaded == len(loaded) + 1 and report.adapted == ("conv_stem.weight 3->1",)
    assert dict(report.skipped) == {"classifier.weight": "timm classifier", "classifier.bias": "timm classifier"}
    line = report.line()
    assert line == (
        f"init_from {path} (backbone weights): {report.loaded} tensors loaded, 2 skipped (2 timm classifier), "
        "adapted: conv_stem.weight 3->1, head reinitialised"
    )


def test_a_three_channel_model_takes_the_first_conv_as_it_is_and_two_channels_are_adapted(tmp_path):
    from timm.models._manipulate import adapt_input_conv

    weights = _timm_weights("test_resnet")
    path = tmp_path / "resnet.safetensors"
    save_file(weights, str(path))
    for channels in (("logmel", "logmel_delta", "logmel_delta2"), ("logmel", "freqpos")):
        model = _model("test_crnn", seed=2, features=dataclasses.replace(SMALL, channels=channels))
        report = init_weights(model, path, labels=ABC)
        got = model.backbone.state_dict()["conv1.0.weight"]
        assert got.shape[1] == len(channels)
        assert torch.equal(got, adapt_input_conv(len(channels), weights["conv1.0.weight"]))
        assert report.adapted == (() if len(channels) == 3 else ("conv1.0.weight 3->2",))
        assert dict(report.skipped) == {"fc.weight": "timm classifier", "fc.bias": "timm classifier"}


def test_tensors_of_another_shape_are_skipped_and_listed(tmp_path):
    weights = _timm_weights("test_efficientnet")
    weights["conv_head.weight"] = weights["conv_head.weight"][:-1].clone()  # one output channel short
    path = tmp_path / "model.safetensors"
    save_file(weights, str(path))
    model = _model(seed=2)
    fresh = _state(model)
    report = init_weights(model, path, labels=ABC)
    assert ("conv_head.weight", f"shape {tuple(weights['conv_head.weight'].shape)} in the file, {tuple(fresh['backbone.conv_head.weight'].shape)} in the model") in report.skipped
    assert torch.equal(model.state_dict()["backbone.conv_head.weight"], fresh["backbone.conv_head.weight"])
    assert torch.equal(model.state_dict()["backbone.bn2.weight"], weights["bn2.weight"])  # the rest loads
    assert report.loaded == len([k for k in fresh if k.startswith("backbone.")]) - 1


def _image_vit_weights(*, distilled=False, patch=16, seed=5):
    """State dict of an image ViT with ``test_vit``'s widths (32 wide, 2 blocks, 2 heads): 224 x 224 RGB, a class
    token (and a distillation token, DeiT-style), a 1000-class head, as a downloaded DeiT/ViT file holds."""
    import_timm()
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.vision_transformer import VisionTransformer

    cls = VisionTransformerDistilled if distilled else VisionTransformer
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = cls(img_size=224, patch_size=patch, embed_dim=32, depth=2, num_heads=2, num_classes=1000)
    return {k: v.contiguous() for k, v in net.state_dict().items()}


@pytest.mark.parametrize(("distilled", "patch"), [(False, 16), (True, 16), (False, 8)])
def test_image_vit_weights_start_an_audio_transformer_with_positions_resampled(distilled, patch, tmp_path):
    from timm.layers import resample_abs_pos_embed, resample_patch_embed
    from timm.models._manipulate import adapt_input_conv

    weights = _image_vit_weights(distilled=distilled, patch=patch)
    prefix = 2 if distilled else 1
    side = 224 // patch
    assert weights["pos_embed"].shape == (1, prefix + side * side, 32)
    path = tmp_path / "deit.safetensors"
    save_file(weights, str(path))
    model = _model("test_vit", seed=2)
    fresh = _state(model)
    grid = tuple(model.backbone.patch_embed.grid_size)
    assert grid == (2, 7)  # SMALL: 32 mels x 126 frames in 16 x 16 patches
    report = init_weights(model, path, labels=ABC)
    state = model.state_dict()

    want_pos = resample_abs_pos_embed(weights["pos_embed"][:, prefix:], new_size=list(grid), old_size=[side, side], num_prefix_tokens=0)
    assert torch.equal(state["backbone.pos_embed"], want_pos)
    assert not torch.equal(state["backbone.pos_embed"], fresh["backbone.pos_embed"])
    kernel = weights["patch_embed.proj.weight"]
    if patch != 16:
        kernel = resample_patch_embed(kernel, new_size=[16, 16])
    assert torch.equal(state["backbone.patch_embed.proj.weight"], adapt_input_conv(1, kernel))
    for key in ("blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.bias", "norm.weight", "patch_embed.proj.bias"):
        assert torch.equal(state[f"backbone.{key}"], weights[key]), key
    assert torch.equal(state["head.weight"] if "head.weight" in state else state["classifier.weight"],
                       fresh["head.weight"] if "head.weight" in fresh else fresh["classifier.weight"])  # birdcall's head stays fresh
    skipped = dict(report.skipped)
    assert skipped.pop("head.weight") == skipped.pop("head.bias") == "timm classifier"
    assert skipped.pop("cls_token") == "not in test_vit"
    if distilled:
        assert skipped.pop("dist_token") == "not in test_vit"
        assert skipped.pop("head_dist.weight") == skipped.pop("head_dist.bias") == "not in test_vit"
    assert skipped == {}
    dropped = f"{prefix} prefix token{'s' if prefix > 1 else ''} dropped"
    notes = [f"pos_embed {side}x{side}->2x7 ({dropped})"]
    if patch != 16:
        notes.append(f"patch_embed.proj.weight {patch}x{patch}->16x16")
    assert report.adapted == (*notes, "patch_embed.proj.weight 3->1")
    assert report.loaded == len([k for k in state if k.startswith("backbone.")])  # every backbone tensor
    assert f"adapted: {notes[0]}" in report.line()
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 32000))
    assert torch.isfinite(out["clipwise"] if isinstance(out, dict) else out).all()


def test_an_image_vit_of_another_width_is_refused(tmp_path):
    weights = _image_vit_weights()
    weights = {k: (v[..., :16].contiguous() if k == "pos_embed" else v) for k, v in weights.items()}  # positions 16 wide
    path = tmp_path / "deit.safetensors"
    save_file(weights, str(path))
    model = _model("test_vit", seed=2)
    fresh = _state(model)
    report = init_weights(model, path, labels=ABC)
    assert dict(report.skipped)["pos_embed"] == "shape (1, 197, 16) in the file, (1, 14, 32) in the model"
    assert torch.equal(model.state_dict()["backbone.pos_embed"], fresh["backbone.pos_embed"])
    assert not any(note.startswith("pos_embed") for note in report.adapted)


def test_weights_of_another_backbone_are_refused(tmp_path):
    path = tmp_path / "resnet.safetensors"
    save_file(_timm_weights("test_resnet"), str(path))  # test_cnn's backbone is test_efficientnet
    model = _model(seed=2)
    before = _state(model)
    with pytest.raises(CheckpointError, match=r"does not look like weights of test_efficientnet: matched \d+ of \d+ tensors") as info:
        init_weights(model, path, labels=ABC)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_fewer_than_half_of_the_backbone_is_refused_and_half_is_enough(tmp_path):
    weights = _timm_weights("test_efficientnet")
    target = [k for k in _model(seed=2).backbone.state_dict() if not k.endswith("num_batches_tracked")]
    half = (len(target) + 1) // 2
    for keep, ok in ((half - 1, False), (half, True)):
        path = tmp_path / f"part{keep}.safetensors"
        save_file({k: weights[k] for k in target[:keep]}, str(path))
        model = _model(seed=2)
        if ok:
            assert init_weights(model, path, labels=ABC).loaded == keep
        else:
            with pytest.raises(CheckpointError, match=f"matched {keep} of {len(target)} tensors"):
                init_weights(model, path, labels=ABC)


# ---------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("filename", ["garbage.safetensors", "garbage.pth", "garbage.bin", "empty.pt"])
def test_garbage_is_refused_in_one_line_naming_the_file(filename, tmp_path):
    path = tmp_path / filename
    path.write_bytes(b"" if filename.startswith("empty") else bytes(range(256)) * 8)
    with pytest.raises(CheckpointError) as info:
        init_weights(_model(seed=2), path, labels=ABC)
    message = str(info.value)
    assert message.startswith(f"{path}: not a ") and "\n" not in message


def test_a_pickled_module_is_not_unpickled(tmp_path):
    path = tmp_path / "whole_model.pth"
    torch.save(torch.nn.Linear(2, 2), path)  # a pickled object, not a state dict: weights_only refuses it
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(path))}: not a weights file: .*weights-only loader refused it"):
        init_weights(_model(seed=2), path, labels=ABC)


def test_a_file_without_tensors_is_refused(tmp_path):
    path = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "arch": "test_efficientnet"}, path)
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(path))}: holds no tensors$"):
        init_weights(_model(seed=2), path, labels=ABC)


def test_missing_file_and_directory_are_refused_naming_the_path(tmp_path):
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(tmp_path / 'nope.safetensors'))}: file not found$"):
        init_weights(_model(seed=2), tmp_path / "nope.safetensors", labels=ABC)
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(tmp_path))}: is a directory"):
        init_weights(_model(seed=2), tmp_path, labels=ABC)


@pytest.mark.parametrize("preset", ["birdnet_probe", "birdnet_mlp"])
def test_birdnet_models_are_refused(preset, tmp_path):
    model = create_model(preset, num_classes=2, features=FeatureConfig(sample_rate=8000, clip_duration=5.0, fmax=4000.0, n_fft=512, n_mels=32))
    with pytest.raises(ParameterError, match="^init_from is not supported for birdnet_probe"):
        init_weights(model, tmp_path / "m.safetensors", labels=LabelSet(("aaa", "bbb")))


def test_labels_must_match_the_models_outputs(tmp_path):
    _checkpoint(tmp_path / "m.safetensors")
    with pytest.raises(ParameterError, match="2 labels for a model with 3 outputs"):
        init_weights(_model(seed=2), tmp_path / "m.safetensors", labels=LabelSet(("aaa", "bbb")))
