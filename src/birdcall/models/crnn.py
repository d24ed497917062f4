"""`BirdCRNN`: CNN backbone + bidirectional RNN over time, with frame-wise and clip-wise logits.

waveform ``(B, N)`` -> front end -> timm backbone map ``(B, C, F', T')`` -> mean over frequency -> dropout ->
bidirectional GRU or LSTM over the ``T'`` frames ``(B, T', 2 * rnn_hidden)`` -> dropout -> the same attention
head and clip-score combination as :class:`birdcall.models.sed.BirdSED`. Output:
``{"clipwise": (B, C) logits, "framewise": (B, T', C) logits}``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..features import FeatureConfig
from .cnn import ModelConfig
from .sed import FrameModel

__all__ = ["BirdCRNN"]


class BirdCRNN(FrameModel):
    """CRNN (see the module docstring); ``num_features == 2 * config.rnn_hidden``.

    Args:
        config: the architecture (``arch == "crnn"``; uses ``rnn_type``, ``rnn_hidden``, ``rnn_layers``,
            ``clip_score``, ``drop_rate``, which also applies between stacked RNN layers).
        features: the front end; ``features.num_channels`` is the backbone's ``in_chans``.
    """

    def __init__(self, config: ModelConfig, features: FeatureConfig):
        super().__init__(config, features)
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[config.rnn_type]
        self.rnn = rnn(
            self.backbone.num_features,
            config.rnn_hidden,
            num_layers=config.rnn_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.drop_rate if config.rnn_layers > 1 else 0.0,
        )
        self.num_features = 2 * config.rnn_hidden
        self._build_head()

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(x.mean(dim=2).transpose(1, 2))  # (B, T', C)
        return self.rnn(x)[0]
