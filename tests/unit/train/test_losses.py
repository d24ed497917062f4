from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from birdcall.config import from_yaml, to_yaml
from birdcall.errors import ParameterError
from birdcall.train.losses import (
    BCEFocalLoss,
    BinaryCrossEntropyLoss,
    LossConfig,
    SigmoidFocalLoss,
    build_loss,
    class_weights,
    loss_from_config,
    sigmoid_focal_loss,
    smooth_targets,
)

LOGITS = torch.tensor([[2.0, -1.0, 0.0], [-3.0, 0.5, 1.5]], dtype=torch.float64)
TARGETS = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.8, 0.0]], dtype=torch.float64)


def _by_hand_focal(x: torch.Tensor, t: torch.Tensor, gamma: float, alpha: float | None) -> torch.Tensor:
    """torchvision.ops.sigmoid_focal_loss, written out naively (fine for moderate logits)."""
    p = 1.0 / (1.0 + torch.exp(-x))
    ce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p))
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = loss * (alpha * t + (1 - alpha) * (1 - t))
    return loss


@pytest.mark.parametrize(("gamma", "alpha"), [(2.0, None), (2.0, 0.25), (0.5, 0.75), (1.0, None)])
def test_focal_equals_by_hand_formula(gamma, alpha):
    expected = _by_hand_focal(LOGITS, TARGETS, gamma, alpha)
    got = sigmoid_focal_loss(LOGITS, TARGETS, gamma=gamma, alpha=alpha, reduction="none")
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sigmoid_focal_loss(LOGITS, TARGETS, gamma=gamma, alpha=alpha), expected.mean(), rtol=1e-12, atol=0)
    module = SigmoidFocalLoss(gamma=gamma, alpha=alpha)
    torch.testing.assert_close(module(LOGITS, TARGETS), expected.mean(), rtol=1e-12, atol=0)


def test_focal_golden_value_float32():
    # x = 0, t = 1: BCE = log 2, 1 - p_t = 1/2, so gamma = 2 gives log(2) / 4; alpha = 0.25 scales by 1/4.
    got = sigmoid_focal_loss(torch.zeros(1, 1), torch.ones(1, 1), gamma=2.0, alpha=0.25)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(math.log(2) / 16, rel=1e-6)


def test_focal_with_gamma_zero_is_bce_times_alpha_t():
    bce = F.binary_cross_entropy_with_logits(LOGITS, TARGETS, reduction="none")
    torch.testing.assert_close(sigmoid_focal_loss(LOGITS, TARGETS, gamma=0.0, reduction="none"), bce, rtol=1e-12, atol=0)
    alpha_t = 0.25 * TARGETS + 0.75 * (1 - TARGETS)
    got = sigmoid_focal_loss(LOGITS, TARGETS, gamma=0.0, alpha=0.25, reduction="none")
    torch.testing.assert_close(got, bce * alpha_t, rtol=1e-12, atol=0)


def test_bce_matches_torch_default():
    torch.testing.assert_close(BinaryCrossEntropyLoss()(LOGITS, TARGETS), F.binary_cross_entropy_with_logits(LOGITS, TARGETS), rtol=1e-12, atol=0)


def test_label_smoothing_math():
    t = torch.tensor([0.0, 1.0, 0.5])
    torch.testing.assert_close(smooth_targets(t, 0.1), torch.tensor([0.05, 0.95, 0.5]))
    assert smooth_targets(t, 0.0) is t
    loss = build_loss("bce", label_smoothing=0.2)(LOGITS, TARGETS)
    expected = F.binary_cross_entropy_with_logits(LOGITS, TARGETS * 0.8 + 0.1)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)
    # the smoothed optimum is sigmoid(x) = 1 - eps/2: a positive at that logit has zero gradient
    x = torch.full((1, 1), math.log(0.95 / 0.05), requires_grad=True)
    build_loss("bce", label_smoothing=0.1)(x, torch.ones(1, 1)).backward()
    assert abs(x.grad.item()) < 1e-6


def test_class_weights_inverse_sqrt_frequency_mean_one():
    y = np.zeros((16, 3), np.float32)
    y[:16, 0] = 1  # 16 positives
    y[:4, 1] = 1  # 4
    # class 2 never occurs: counted as min_count = 1
    w = class_weights(y, power=0.5)
    assert w.dtype == torch.float32 and w.shape == (3,)
    raw = np.array([1 / 4, 1 / 2, 1.0])
    torch.testing.assert_close(w, torch.tensor(raw / raw.mean(), dtype=torch.float32))
    assert w.mean().item() == pytest.approx(1.0)
    torch.testing.assert_close(class_weights(torch.from_numpy(y), power=0.0), torch.ones(3))
    torch.testing.assert_close(class_weights(y, power=1.0), torch.tensor([1 / 16, 1 / 4, 1.0]) / torch.tensor([1 / 16, 1 / 4, 1.0]).mean())


def test_class_weights_scale_each_column():
    w = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    elementwise = F.binary_cross_entropy_with_logits(LOGITS, TARGETS, reduction="none")
    got = build_loss("bce", class_weights=w)(LOGITS, TARGETS)
    torch.testing.assert_close(got, (elementwise * w).mean(), rtol=1e-6, atol=0)
    with pytest.raises(ParameterError, match="class weights"):
        build_loss("bce", class_weights=torch.ones(4))(LOGITS, TARGETS)


def test_combination_weights():
    bce = F.binary_cross_entropy_with_logits(LOGITS, TARGETS, reduction="none")
    focal = _by_hand_focal(LOGITS, TARGETS, 2.0, 0.25)
    loss = build_loss("bce+focal", gamma=2.0, alpha=0.25, bce_weight=0.3, focal_weight=2.0)
    assert isinstance(loss, BCEFocalLoss)
    torch.testing.assert_close(loss(LOGITS, TARGETS), (0.3 * bce + 2.0 * focal).mean(), rtol=1e-12, atol=0)
    only_focal = build_loss("bce+focal", gamma=2.0, bce_weight=0.0, focal_weight=1.0)
    torch.testing.assert_close(only_focal(LOGITS, TARGETS), build_loss("focal", gamma=2.0)(LOGITS, TARGETS), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["bce", "focal", "bce+focal"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_stable_at_large_logits(name, gamma):
    x = torch.tensor([[100.0, -100.0, 100.0, -100.0, 1000.0]], requires_grad=True)
    t = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0]])
    loss_fn = build_loss(name, gamma=gamma, label_smoothing=0.0)
    loss = loss_fn(x, t)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    per = loss_fn.elementwise(x.detach(), t)
    # confident and right -> 0; confident and wrong -> |x| (BCE) and the focal factor is 1
    assert per[0, [0, 1, 4]].abs().max().item() < 1e-30
    expected_wrong = {"bce": 100.0, "focal": 100.0, "bce+focal": 200.0}[name]
    torch.testing.assert_close(per[0, [2, 3]], torch.full((2,), expected_wrong))
    # gradient of a wrong prediction is sigmoid(x) - t = ±1 per unit weight, divided by the 5 elements of the mean
    weight = {"bce": 1.0, "focal": 1.0, "bce+focal": 2.0}[name]
    if gamma == 0.0 or name == "bce":
        torch.testing.assert_close(x.grad[0, [2, 3]], torch.tensor([weight, -weight]) / 5)


def test_smoothed_targets_at_large_logits_are_finite():
    x = torch.tensor([[100.0, -100.0]], requires_grad=True)
    loss = build_loss("bce+focal", gamma=0.5, label_smoothing=0.1)(x, torch.tensor([[1.0, 0.0]]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    # each element: BCE = eps/2 * |x| = 5, and 1 - p_t = eps/2, so focal = 5 * 0.05**0.5
    assert loss.item() == pytest.approx(5.0 * (1 + 0.05**0.5), rel=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "mse"},
        {"name": "bce", "label_smoothing": 1.0},
        {"name": "bce", "label_smoothing": -0.1},
        {"name": "focal", "gamma": -1.0},
        {"name": "focal", "alpha": 1.5},
        {"name": "bce+focal", "bce_weight": 0.0, "focal_weight": 0.0},
        {"name": "bce+focal", "bce_weight": -1.0},
        {"name": "bce", "class_weights": torch.ones(2, 2)},
    ],
)
def test_bad_loss_arguments_raise(kwargs):
    with pytest.raises(ParameterError):
        build_loss(**kwargs)
    with pytest.raises(ParameterError):
        BinaryCrossEntropyLoss(label_smoothing=1.0)


def test_half_precision_logits_give_a_float32_loss():
    x = LOGITS.to(torch.bfloat16)
    loss = build_loss("bce+focal")(x, TARGETS.float())
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, build_loss("bce+focal")(x.float(), TARGETS.float()))


def test_shape_mismatch_raises():
    with pytest.raises(ParameterError, match="same shape"):
        build_loss("bce")(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ParameterError, match="reduction"):
        sigmoid_focal_loss(LOGITS, TARGETS, reduction="max")


def test_class_weights_bad_input_raises():
    with pytest.raises(ParameterError):
        class_weights(np.ones(3))
    with pytest.raises(ParameterError):
        class_weights(np.ones((2, 3)), power=-1.0)


def test_loss_config_builds_and_round_trips_through_yaml(tmp_path):
    config = LossConfig(loss="bce+focal", label_smoothing=0.05, focal_gamma=1.5, focal_alpha=0.25, bce_weight=0.5, class_weight_power=0.5)

    @dataclass(frozen=True)
    class Outer:  # how TrainConfig would nest it
        loss: LossConfig = field(default_factory=LossConfig)

    to_yaml(Outer(loss=config), tmp_path / "c.yaml")
    assert from_yaml(Outer, tmp_path / "c.yaml").loss == config
    to_yaml(config, tmp_path / "l.yaml")
    assert from_yaml(LossConfig, tmp_path / "l.yaml") == config

    y = np.eye(3, dtype=np.float32)[[0, 0, 0, 0, 1, 2]]
    loss = loss_from_config(config, targets=y)
    assert isinstance(loss, BCEFocalLoss) and loss.gamma == 1.5 and loss.alpha == 0.25 and loss.bce_weight == 0.5
    torch.testing.assert_close(loss.class_weights, class_weights(y, power=0.5))
    assert loss.state_dict() == {}  # class weights come from the data, not from checkpoints
    assert loss_from_config(LossConfig()).class_weights is None
    with pytest.raises(ParameterError, match="targets"):
        loss_from_config(config)


@pytest.mark.parametrize("kwargs", [{"loss": "l2"}, {"focal_alpha": 2.0}, {"class_weight_power": -0.5}, {"label_smoothing": 1.0}])
def test_loss_config_validates(kwargs):
    with pytest.raises(ParameterError):
        LossConfig(**kwargs)
