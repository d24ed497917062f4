"""`ModelConfig` (the architecture description of every model family), the shared `WaveformModel` base and
`BirdCNN`: waveform -> feature front end -> timm backbone -> pooled linear head (clip-level logits).

The front end lives inside the model, so a checkpoint or an exported graph takes raw waveform windows and
can never be fed features computed differently from training.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import torch
from torch import nn

from ..config import check_fields, check_number
from ..errors import ParameterError
from ..features import FeatureConfig, FeatureExtractor
from .backbones import create_backbone

__all__ = ["BirdCNN", "ModelConfig", "WaveformModel"]

RNN_TYPES = ("gru", "lstm")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture description saved in every checkpoint; ``create_model(config)`` rebuilds the model.

    Fields after ``pool`` were added with the SED and CRNN families; their defaults keep older model files
    loadable. Fields of another family are ignored (a ``"cnn"`` model ignores ``clip_score``).

    Attributes:
        arch: model family, a key of ``birdcall.models.zoo.model_registry``: ``"cnn"``, ``"sed"`` or ``"crnn"``.
        backbone: timm model name (built with ``pretrained=False``, ``in_chans = features.num_channels``).
        num_classes: number of species (outputs).
        drop_rate: dropout of the head (CNN: before the classifier; SED: before and after the dense layer;
            CRNN: before and after the RNN).
        drop_path_rate: timm stochastic depth of the backbone; None keeps timm's default.
        pool: CNN only. ``"avg"``: mean over frequency and time; ``"avgmax"``: mean over frequency, then
            mean + max over time.
        clip_score: SED and CRNN: weights ``(w_att, w_max)`` of the clip probability
            ``w_att * attention-pooled frame probability + w_max * max frame probability``; non-negative,
            summing to 1. The clip *logit* is the exact logit of that probability (see
            :func:`birdcall.models.heads.combine_clip_logits`).
        smooth_kernel: SED only: width of the max + average pooling over time (stride 1) that smooths the
            frame features before the dense layer, as in the BirdCLEF SED models; odd, 1 disables it.
        rnn_type: CRNN only: ``"gru"`` or ``"lstm"`` (always bidirectional).
        rnn_hidden: CRNN only: hidden size per direction; the frame features have ``2 * rnn_hidden`` channels.
        rnn_layers: CRNN only: stacked RNN layers.
        hidden: ``birdnet_probe`` only: width of the hidden layer of the head (0: a linear head, the probe; > 0:
            a one-hidden-layer MLP, ``birdnet_mlp``).
        birdnet_step: ``birdnet_probe`` only: seconds between the 3-s sub-windows BirdNET sees in a window.
        birdnet_pool: ``birdnet_probe`` only: pooling of the sub-windows' embeddings, ``"meanmax"``, ``"mean"``
            or ``"max"`` (:class:`birdcall.birdnet.BirdNetFeatureConfig`).
        birdnet_logits: ``birdnet_probe`` only: also feed BirdNET's own class logits (max-pooled) to the head.
        birdnet_tail: ``birdnet_finetune`` only: the BirdNET block where the trained tail starts (``"BLOCK_4-3"``:
            the last two blocks, the post-convolution and the pooling; everything before it stays frozen).
        heads: ``birdnet_probe`` only: heads averaged in probability. With 2, the first is trained on whole clips
            (and background negatives) only and the second on every training window (soundscape-style views
            too): two views of the data whose average beats either on continuous recordings.
        birdnet_zero_shot: ``birdnet_probe`` only: weight ``a`` of BirdNET's own classifier in the output. For a
            species BirdNET knows (by scientific name, ``zero_shot_index`` buffer) the logit is
            ``(1 - a) * head + a * BirdNET``; 0 leaves the head alone.
    """

    arch: str = "cnn"
    backbone: str = "efficientnet_b0"
    num_classes: int = 0
    drop_rate: float = 0.2
    drop_path_rate: float | None = None
    pool: str = "avg"
    clip_score: tuple[float, float] = (0.75, 0.25)
    smooth_kernel: int = 3
    rnn_type: str = "gru"
    rnn_hidden: int = 256
    rnn_layers: int = 1
    hidden: int = 0
    birdnet_step: float = 1.0
    birdnet_pool: str = "meanmax"
    birdnet_logits: bool = False
    birdnet_tail: str = "BLOCK_4-3"
    heads: int = 1
    birdnet_zero_shot: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self)  # types and finite numbers
        if not self.arch or not self.backbone:
            raise ParameterError(f"ModelConfig.arch and backbone must be names, got {self.arch!r}, {self.backbone!r}")
        check_number(self, "drop_path_rate", ge=0, lt=1, none_ok=True)
        if self.num_classes <= 0:
            raise ParameterError(f"ModelConfig: num_classes must be > 0, got {self.num_classes}")
        if self.pool not in ("avg", "avgmax"):
            raise ParameterError(f"ModelConfig: pool must be 'avg' or 'avgmax', got {self.pool!r}")
        if not 0.0 <= self.drop_rate < 1.0:
            raise ParameterError(f"ModelConfig: drop_rate must be in [0, 1), got {self.drop_rate}")
        try:
            weights = tuple(float(w) for w in self.clip_score)
        except (TypeError, ValueError):
            weights = ()
        if len(weights) != 2 or min(weights) < 0 or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
            raise ParameterError(f"ModelConfig: clip_score must be two weights (attention, max) >= 0 summing to 1, got {self.clip_score!r}")
        object.__setattr__(self, "clip_score", weights)
        if self.smooth_kernel < 1 or self.smooth_kernel % 2 == 0:
            raise ParameterError(f"ModelConfig: smooth_kernel must be odd and >= 1, got {self.smooth_kernel}")
        if self.rnn_type not in RNN_TYPES:
            raise ParameterError(f"ModelConfig: rnn_type must be one of {RNN_TYPES}, got {self.rnn_type!r}")
        if self.rnn_hidden <= 0 or self.rnn_layers <= 0:
            raise ParameterError(f"ModelConfig: rnn_hidden and rnn_layers must be > 0, got {self.rnn_hidden}, {self.rnn_layers}")
        check_number(self, "hidden", ge=0)
        check_number(self, "heads", ge=1, le=8)
        check_number(self, "birdnet_step", gt=0)
        check_number(self, "birdnet_zero_shot", ge=0, le=1)
        if self.birdnet_pool not in ("meanmax", "mean", "max"):
            raise ParameterError(f"ModelConfig: birdnet_pool must be 'meanmax', 'mean' or 'max', got {self.birdnet_pool!r}")
        if not re.fullmatch(r"BLOCK_\d+-\d+", self.birdnet_tail):
            raise ParameterError(f"ModelConfig: birdnet_tail must name a BirdNET block like 'BLOCK_4-3', got {self.birdnet_tail!r}")


class WaveformModel(nn.Module):
    """Base of every family: ``frontend`` (waveform -> features) and a timm ``backbone`` (features -> map).

    Subclasses build their head, define ``forward_head`` and ``reset_classifier``, and set ``num_features``
    (the width of what ``forward_head(x, pre_logits=True)`` returns).
    """

    def __init__(self, config: ModelConfig, features: FeatureConfig):
        super().__init__()
        self.config = config
        self.feature_config = features
        self.frontend = FeatureExtractor(features)
        self.backbone = create_backbone(
            config.backbone,
            in_chans=features.num_channels,
            drop_rate=config.drop_rate,
            drop_path_rate=config.drop_path_rate,
            input_size=(features.n_mels, features.num_frames(features.clip_samples)),  # the transformers' patch grid
        )

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def forward_features(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` waveform -> backbone feature map ``(B, C, F', T')`` (frequency, then time).

        A 4-d input ``(B, channels, n_mels, n_frames)`` is taken as front-end output already computed (training
        applies spectrogram augmentations between the front end and the backbone this way).

        Raises:
            ParameterError: the backbone does not give a 4-d map (a transformer's token sequence).
        """
        x = self.backbone.forward_features(self.frontend(waveform) if waveform.ndim == 2 else waveform)
        if x.ndim != 4:
            raise ParameterError(
                f"backbone {self.config.backbone!r} gives features of shape {tuple(x.shape)}, not a (B, C, F, T) map; use a convolutional backbone"
            )
        return x

    def forward(self, waveform: torch.Tensor):
        return self.forward_head(self.forward_features(waveform))

    def _with_num_classes(self, num_classes: int) -> ModelConfig:
        """The config with ``num_classes`` replaced (validated before any module is swapped)."""
        return dataclasses.replace(self.config, num_classes=num_classes)


class BirdCNN(WaveformModel):
    """Clip classifier. ``forward(waveform (B, N)) -> logits (B, num_classes)``.

    Args:
        config: the architecture (``arch == "cnn"``).
        features: the front end; ``features.num_channels`` is the backbone's ``in_chans``.
    """

    def __init__(self, config: ModelConfig, features: FeatureConfig):
        super().__init__(config, features)
        self.num_features = self.backbone.num_features
        self.drop = nn.Dropout(config.drop_rate)
        self.classifier = nn.Linear(self.num_features, config.num_classes)

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

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a freshly initialised one with ``num_classes`` outputs."""
        config = self._with_num_classes(num_classes)
        old = self.classifier.weight
        self.classifier = nn.Linear(self.num_features, num_classes).to(device=old.device, dtype=old.dtype)
        self.config = config
