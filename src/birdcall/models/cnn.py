"""`BirdCNN`: waveform -> feature front end -> timm backbone -> pooled linear head (clip-level logits).

The front end lives inside the model, so a checkpoint or an exported graph takes raw waveform windows and
can never be fed features computed differently from training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ParameterError
from ..features import FeatureConfig, FeatureExtractor
from .backbones import create_backbone

__all__ = ["ModelConfig", "BirdCNN"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture description saved in every checkpoint; ``create_model(config.arch, ...)`` rebuilds it."""

    arch: str = "cnn"
    backbone: str = "efficientnet_b0"
    num_classes: int = 0
    drop_rate: float = 0.2
    drop_path_rate: float | None = None
    pool: str = "avg"  # "avg" or "avgmax" (mean over frequency, then mean+max over time)

    def __post_init__(self) -> None:
        if self.num_classes <= 0:
            raise ParameterError(f"ModelConfig: num_classes must be > 0, got {self.num_classes}")
        if self.pool not in ("avg", "avgmax"):
            raise ParameterError(f"ModelConfig: pool must be 'avg' or 'avgmax', got {self.pool!r}")
        if not 0.0 <= self.drop_rate < 1.0:
            raise ParameterError(f"ModelConfig: drop_rate must be in [0, 1), got {self.drop_rate}")


class BirdCNN(nn.Module):
    """Clip classifier. ``forward(waveform (B, N)) -> logits (B, num_classes)``."""

    def __init__(self, config: ModelConfig, features: FeatureConfig):
        super().__init__()
        self.config = config
        self.feature_config = features
        self.frontend = FeatureExtractor(features)
        self.backbone = create_backbone(
            config.backbone, in_chans=features.num_channels, drop_rate=config.drop_rate, drop_path_rate=config.drop_path_rate
        )
        self.num_features = self.backbone.num_features
        self.drop = nn.Dropout(config.drop_rate)
        self.classifier = nn.Linear(self.num_features, config.num_classes)

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features

    def forward_features(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` waveform -> backbone feature map ``(B, C, H, W)``."""
        return self.backbone.forward_features(self.frontend(waveform))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map -> ``(B, num_features)`` embedding (``pre_logits``) or ``(B, num_classes)`` logits."""
        if self.config.pool == "avgmax":
            x = x.mean(dim=2)  # over frequency -> (B, C, T)
            x = x.mean(dim=2) + x.amax(dim=2)
        else:
            x = x.mean(dim=(2, 3))
        if pre_logits:
            return x
        return self.classifier(self.drop(x))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(waveform))

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Linear(self.num_features, num_classes)
        self.config = ModelConfig(**{**self.config.__dict__, "num_classes": num_classes})
