import math

import pytest
import torch

from birdcall.errors import ParameterError
from birdcall.models import clip_logits, combine_clip_logits
from birdcall.models.heads import AttentionHead, smooth_time

LOG3, LOG9 = math.log(3.0), math.log(9.0)


def _hand_made():
    """B=1, T=3, C=2 frame logits and attention with round sigmoid values (see the expected values)."""
    framewise = torch.tensor([[[0.0, LOG9], [LOG3, 0.0], [-LOG3, 0.0]]], dtype=torch.float64)  # sigmoid: c0 .5 .75 .25, c1 .9 .5 .5
    attention = torch.tensor([[[0.5, 1 / 3], [0.25, 1 / 3], [0.25, 1 / 3]]], dtype=torch.float64)
    return framewise, attention


def test_clip_score_is_the_logit_of_075_attention_plus_025_max_by_hand():
    framewise, attention = _hand_made()
    # class 0: p_att = .5*.5 + .25*.75 + .25*.25 = .5, p_max = .75 -> p = .75*.5 + .25*.75 = .5625 = 9/16
    # class 1: p_att = (.9 + .5 + .5)/3 = 19/30, p_max = .9 -> p = .75*19/30 + .25*.9 = .7
    got = combine_clip_logits(framewise, attention.log(), (0.75, 0.25))
    assert got.dtype == torch.float64 and got.shape == (1, 2)
    torch.testing.assert_close(got, torch.tensor([[math.log(9 / 7), math.log(7 / 3)]], dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.sigmoid(got), torch.tensor([[0.5625, 0.7]], dtype=torch.float64), rtol=0, atol=1e-12)


def test_pure_attention_and_pure_max_weights():
    framewise, attention = _hand_made()
    att_only = combine_clip_logits(framewise, attention.log(), (1.0, 0.0))
    torch.testing.assert_close(torch.sigmoid(att_only), torch.tensor([[0.5, 19 / 30]], dtype=torch.float64), rtol=0, atol=1e-12)
    max_only = combine_clip_logits(framewise, attention.log(), (0.0, 1.0))
    torch.testing.assert_close(max_only, framewise.amax(dim=1), rtol=0, atol=1e-12)


def test_constant_frames_give_that_logit_whatever_the_attention_and_weights(torch_seed):
    framewise = torch.full((2, 7, 3), -2.5)
    log_attention = torch.log_softmax(torch.randn(2, 7, 3), dim=1)
    for weights in ((0.75, 0.25), (0.3, 0.7), (1.0, 0.0)):
        torch.testing.assert_close(combine_clip_logits(framewise, log_attention, weights), torch.full((2, 3), -2.5), rtol=0, atol=1e-5)


def test_extreme_logits_stay_finite_and_exact_with_useful_gradients():
    framewise = torch.tensor([[[60.0, -60.0], [50.0, -80.0]]], requires_grad=True)
    log_attention = torch.log(torch.tensor([[[0.5, 0.5], [0.5, 0.5]]]))
    got = combine_clip_logits(framewise, log_attention, (0.75, 0.25))
    # no clamping: 1 - p = .75*(.5 e^-60 + .5 e^-50) + .25 e^-60 (to first order), so logit = -log(1 - p)
    expected0 = -math.log(0.375 * math.exp(-60) + 0.375 * math.exp(-50) + 0.25 * math.exp(-60))
    expected1 = math.log(0.375 * math.exp(-60) + 0.375 * math.exp(-80) + 0.25 * math.exp(-60))
    torch.testing.assert_close(got, torch.tensor([[expected0, expected1]]), rtol=1e-5, atol=0)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(got, torch.tensor([[0.0, 1.0]]))
    loss.backward()
    assert torch.isfinite(framewise.grad).all() and (framewise.grad.abs() > 0).all()


def test_combine_rejects_bad_weights_and_shapes():
    framewise, attention = _hand_made()
    with pytest.raises(ParameterError, match="sum to 1"):
        combine_clip_logits(framewise, attention.log(), (0.5, 0.25))
    with pytest.raises(ParameterError, match="sum to 1"):
        combine_clip_logits(framewise, attention.log(), (1.5, -0.5))
    with pytest.raises(ParameterError, match=r"\(B, T, C\)"):
        combine_clip_logits(framewise[0], attention[0].log(), (0.75, 0.25))


def test_attention_head_weights_sum_to_one_over_time(torch_seed):
    head = AttentionHead(8, 3)
    framewise, log_attention = head(torch.randn(2, 5, 8))
    assert framewise.shape == log_attention.shape == (2, 5, 3) and head.num_classes == 3
    torch.testing.assert_close(log_attention.exp().sum(dim=1), torch.ones(2, 3))
    assert (log_attention.exp() > 0).all()


def test_smooth_time_is_max_plus_mean_over_three_frames():
    x = torch.tensor([[[1.0, 3.0, 2.0, 0.0]]])
    # max over [1,3], [1,3,2], [3,2,0], [2,0]; mean over the same windows (padding not counted)
    expected = torch.tensor([[[3 + 2.0, 3 + 2.0, 3 + 5 / 3, 2 + 1.0]]])
    torch.testing.assert_close(smooth_time(x, 3), expected)
    assert smooth_time(x, 1) is x


def test_clip_logits_of_any_output():
    logits = torch.zeros(2, 3)
    assert clip_logits(logits) is logits
    assert clip_logits({"clipwise": logits, "framewise": torch.zeros(2, 4, 3)}) is logits
    with pytest.raises(ParameterError, match="clipwise"):
        clip_logits({"framewise": logits})
    with pytest.raises(ParameterError, match="clipwise"):
        clip_logits([logits])
