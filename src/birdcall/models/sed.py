"""`BirdSED`: sound event detection model of the BirdCLEF 2021-2023 winning solutions (PANNs-style).

waveform ``(B, N)`` -> front end -> timm backbone map ``(B, C, F', T')`` -> mean over frequency ``(B, C, T')``
-> max + avg pooling over time (``smooth_kernel``) -> dropout -> dense layer + ReLU on each frame ->
dropout -> attention head: frame logits ``(B, T', num_classes)`` and attention over time, pooled into clip
logits as ``ModelConfig.clip_score`` says (:func:`birdcall.models.heads.combine_clip_logits`).

``T'`` is the backbone's time downsampling of the ``features.num_frames(N)`` spectrogram frames (32 for most
timm CNNs; ``ceil`` or ``floor`` depending on the stem), so frame ``t`` covers about
``[t, t + 1) * N / sample_rate / T'`` seconds of the window.

`FrameModel` is the base shared with :class:`birdcall.models.crnn.BirdCRNN`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..features import FeatureConfig
from .cnn import ModelConfig, WaveformModel
from .heads import AttentionHead, combine_clip_logits, smooth_time

__all__ = ["BirdSED", "FrameModel"]


class FrameModel(WaveformModel):
    """A model with frame-wise outputs: ``forward(waveform) -> {"clipwise": (B, C), "framewise": (B, T', C)}``.

    Both outputs are logits. Subclasses set ``num_features`` and define ``frame_features``.
    """

    def __init__(self, config: ModelConfig, features: FeatureConfig):
        super().__init__(config, features)
        self.drop = nn.Dropout(config.drop_rate)

    def _build_head(self) -> None:
        self.head = AttentionHead(self.num_features, self.config.num_classes)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone map ``(B, C, F', T')`` -> frame features ``(B, T', num_features)``."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False):
        """Backbone map -> frame features ``(B, T', num_features)`` (``pre_logits``, the attention head's input
        in eval mode) or ``{"clipwise": (B, C) logits, "framewise": (B, T', C) logits}``."""
        x = self.frame_features(x)
        if pre_logits:
            return x
        framewise, log_attention = self.head(self.drop(x))
        return {"clipwise": combine_clip_logits(framewise, log_attention, self.config.clip_score), "framewise": framewise}

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the attention head (attention and frame classifier) by a fresh one with ``num_classes``."""
        config = self._with_num_classes(num_classes)
        old = self.head.cla.weight
        self.head = AttentionHead(self.num_features, num_classes).to(device=old.device, dtype=old.dtype)
        self.config = config


class BirdSED(FrameModel):
    """SED model (see the module docstring). The dense layer keeps the backbone width, as in the originals.

    Args:
        config: the architecture (``arch == "sed"``; uses ``clip_score``, ``smooth_kernel``, ``drop_rate``).
        features: the front end; ``features.num_channels`` is the backbone's ``in_chans``.
    """

    def __init__(self, config: ModelConfig, features: FeatureConfig):
        super().__init__(config, features)
        self.num_features = self.backbone.num_features
        self.fc = nn.Linear(self.num_features, self.num_features)
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        self._build_head()

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        x = smooth_time(x.mean(dim=2), self.config.smooth_kernel)  # (B, C, T')
        x = self.drop(x).transpose(1, 2)
        return F.relu(self.fc(x))
