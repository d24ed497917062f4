"""Heads over frame sequences: attention pooling (SED and CRNN), the clip-logit combination, and
`clip_logits`, which gives the clip logits of any model's output.

The clip score of the SED/CRNN families is a *probability* mixture, as in the BirdCLEF 2021-2023 SED
solutions (PANNs' attention block): with frame logits ``z[t, c]`` and attention ``a[t, c]`` (softmax over
time, so ``sum_t a[t, c] = 1``)::

    p_att[c] = sum_t a[t, c] * sigmoid(z[t, c])        # attention-pooled frame probability
    p_max[c] = max_t sigmoid(z[t, c]) = sigmoid(max_t z[t, c])
    p[c]     = w_att * p_att[c] + w_max * p_max[c]      # ModelConfig.clip_score = (w_att, w_max)
    clipwise[c] = logit(p[c]) = log p[c] - log(1 - p[c])

Both ``log p`` and ``log(1 - p)`` are computed with ``logsumexp`` from ``logsigmoid`` terms (``1 - p`` is the same
mixture of ``sigmoid(-z)``, because the weights and the attention sum to 1), so there is no clamping and no
saturation: ``sigmoid(clipwise) == p`` and ``BCEWithLogits(clipwise, y)`` is exactly the binary cross-entropy
of ``p``, with finite gradients even when ``p`` is within 1e-30 of 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError

__all__ = ["AttentionHead", "clip_logits", "combine_clip_logits", "smooth_time"]


class AttentionHead(nn.Module):
    """Class-wise attention pooling head over time (PANNs ``AttBlock``).

    ``att`` and ``cla`` are the 1x1 convolutions over time of the BirdCLEF SED models, written as linear
    layers on time-major frames (the same operation): ``attention = softmax_t(tanh(att(x)))``,
    ``framewise = cla(x)`` (logits, no sigmoid).

    Args:
        in_features: width ``D`` of the frame features.
        num_classes: outputs ``C``.
    """

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.att = nn.Linear(in_features, num_classes)
        self.cla = nn.Linear(in_features, num_classes)
        for layer in (self.att, self.cla):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def num_classes(self) -> int:
        return self.cla.out_features

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame features ``(B, T, D)`` -> ``(framewise logits (B, T, C), log attention (B, T, C))``.

        ``log_attention.exp()`` sums to 1 over ``T`` for every example and class.
        """
        return self.cla(x), torch.log_softmax(torch.tanh(self.att(x)), dim=1)


def combine_clip_logits(framewise: torch.Tensor, log_attention: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """Clip logits of the mixture ``w_att * attention-pooled + w_max * max`` frame probability.

    Computed in float32 (or the inputs' wider dtype) whatever autocast does; see the module docstring.

    Args:
        framewise: frame logits ``(B, T, C)``.
        log_attention: log of attention weights ``(B, T, C)``; ``exp`` must sum to 1 over ``T``.
        weights: ``(w_att, w_max)``, non-negative, summing to 1.

    Returns:
        ``(B, C)`` clip logits ``logit(p)``.
    """
    if framewise.shape != log_attention.shape or framewise.ndim != 3:
        raise ParameterError(f"combine_clip_logits: expected two (B, T, C) tensors, got {tuple(framewise.shape)} and {tuple(log_attention.shape)}")
    w_att, w_max = (float(w) for w in weights)
    if min(w_att, w_max) < 0 or not math.isclose(w_att + w_max, 1.0, abs_tol=1e-6):
        raise ParameterError(f"combine_clip_logits: weights must be >= 0 and sum to 1, got {tuple(weights)}")
    dtype = torch.promote_types(framewise.dtype, torch.float32)
    z, log_a = framewise.to(dtype), log_attention.to(dtype)
    pos, neg = [], []  # log of each weighted term of p and of 1 - p
    if w_att > 0:
        pos.append(math.log(w_att) + torch.logsumexp(log_a + F.logsigmoid(z), dim=1))
        neg.append(math.log(w_att) + torch.logsumexp(log_a + F.logsigmoid(-z), dim=1))
    if w_max > 0:
        peak = z.amax(dim=1)
        pos.append(math.log(w_max) + F.logsigmoid(peak))
        neg.append(math.log(w_max) + F.logsigmoid(-peak))
    if len(pos) == 1:
        return pos[0] - neg[0]
    return torch.logsumexp(torch.stack(pos), dim=0) - torch.logsumexp(torch.stack(neg), dim=0)


def smooth_time(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """``max_pool + avg_pool`` over the last (time) axis, stride 1, same length; ``kernel_size=1`` is a no-op.

    The average ignores the padding (``count_include_pad=False``), so edge frames are not pulled to 0.
    """
    if kernel_size == 1:
        return x
    pad = kernel_size // 2
    return F.max_pool1d(x, kernel_size, stride=1, padding=pad) + F.avg_pool1d(x, kernel_size, stride=1, padding=pad, count_include_pad=False)


def clip_logits(output) -> torch.Tensor:
    """The ``(B, C)`` clip logits of any birdcall model's output.

    Args:
        output: a CNN's logits tensor, or a SED/CRNN ``{"clipwise": ..., "framewise": ...}`` dict.

    Returns:
        ``output`` itself for a tensor, ``output["clipwise"]`` for a dict.

    Example:
        >>> scores = torch.sigmoid(clip_logits(model(waveforms)))
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and "clipwise" in output:
        return output["clipwise"]
    raise ParameterError(f"clip_logits: expected a tensor or a dict with 'clipwise', got {type(output).__name__}")
