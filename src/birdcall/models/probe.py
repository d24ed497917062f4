"""`BirdNetProbe`: a head (linear or one-hidden-layer MLP) on frozen BirdNET V2.4 features.

The ``birdnet_probe`` family (presets ``birdnet_probe`` and ``birdnet_mlp``). Like every birdcall model it takes
raw waveform windows, ``forward(waveform (B, N)) -> logits (B, C)``, so ``predict``, ``analyze``, ``evaluate`` and
ensembles use it unchanged. Inside, BirdNET (TFLite, run by LiteRT: not a torch module, and not part of the
weights file) turns each window into pooled sub-window features (:func:`birdcall.birdnet.window_features`, the
function that made the training features), which are standardised with the training set's mean and scale
(buffers saved with the head) and go through the head.

BirdNET comes from :func:`birdcall.birdnet.shared_model` at the first forward pass. Without the extra,
:func:`birdcall.models.load_model` stops such a file at once and a model built in code at its first window, both
with a one-line :class:`~birdcall.errors.MissingExtraError` naming ``make birdnet``. BirdNET V2.4 is licensed CC BY-NC-SA 4.0: such a model is for non-commercial use only.

With ``birdnet_zero_shot`` > 0 BirdNET's own classifier joins the output: BirdNET gives its 6522 class logits in
the same pass as the embeddings, so for the species it knows (``zero_shot_index``, set from the taxonomy's
scientific names at training) the output logit is ``(1 - a) * head + a * BirdNET`` (max over the sub-windows).
The head is trained alone on embeddings; BirdNET's classifier, trained on far more recordings than any user's
set, is what holds up on noisy continuous recordings (NIPS4B soundscape benchmark: ``benchmarks/RESULTS.md``).

Several probes scoring the same windows (the folds of a run, an ensemble) would each run BirdNET on them; the
features of the last batch are kept once per process (keyed by a digest of the windows and the feature
settings), so BirdNET runs once per batch whatever the ensemble size.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import torch
from torch import nn

from ..birdnet import BirdNetFeatureConfig, feature_dim, shared_model, window_features
from ..errors import ParameterError
from ..features import FeatureConfig
from .cnn import ModelConfig

__all__ = ["BIRDNET_BACKBONE", "BirdNetProbe", "birdnet_features"]

BIRDNET_BACKBONE = "birdnet_v2.4"
_EMBEDDING_DIM, _NUM_CLASSES = 1024, 6522  # BirdNET V2.4's embedding width and class count
_LAST: dict[str, object] = {}


def birdnet_features(windows: np.ndarray, *, sample_rate: int, config: BirdNetFeatureConfig, model=None) -> np.ndarray:
    """:func:`~birdcall.birdnet.window_features` on the shared BirdNET, memoised for the last batch seen."""
    model = model if model is not None else shared_model()
    x = np.ascontiguousarray(windows, dtype=np.float32)
    digest = hashlib.blake2b(x.tobytes(), digest_size=16)
    digest.update(repr((x.shape, sample_rate, config, id(model), getattr(model, "digest", None))).encode())
    key = digest.hexdigest()
    if _LAST.get("key") != key:
        _LAST.update(key=None, value=None)  # never keep a stale value if BirdNET fails
        _LAST.update(key=key, value=window_features(x, sample_rate=sample_rate, model=model, config=config))
    return _LAST["value"]  # type: ignore[return-value]


class BirdNetProbe(nn.Module):
    """``forward(waveform (B, N)) -> logits (B, num_classes)`` through frozen BirdNET features.

    Args:
        config: the architecture (``arch == "birdnet_probe"``, ``backbone == "birdnet_v2.4"``; ``hidden``,
            ``birdnet_step``, ``birdnet_pool``, ``birdnet_logits``, ``drop_rate``).
        features: the window the model scores (``sample_rate``, ``clip_duration``); its log-mel settings are
            unused (BirdNET has its own spectrogram).

    Raises:
        ParameterError: another backbone, or a window shorter than BirdNET's 3-s segment.
    """

    def __init__(self, config: ModelConfig, features: FeatureConfig):
        super().__init__()
        if config.backbone != BIRDNET_BACKBONE:
            raise ParameterError(f"ModelConfig.backbone of a birdnet_probe model must be {BIRDNET_BACKBONE!r}, got {config.backbone!r}")
        self.config = config
        self.feature_config = features
        self.birdnet_config = BirdNetFeatureConfig(
            window=features.clip_duration, segment=3.0, step=config.birdnet_step, pool=config.birdnet_pool, logits=config.birdnet_logits
        )
        self.num_inputs = feature_dim(self.birdnet_config, embedding_dim=_EMBEDDING_DIM, num_classes=_NUM_CLASSES)
        self.zero_shot = float(config.birdnet_zero_shot)
        self.num_scoring = feature_dim(self.scoring_config, embedding_dim=_EMBEDDING_DIM, num_classes=_NUM_CLASSES)
        if features.clip_samples in (self.num_inputs, self.num_scoring):  # forward tells waveforms from features by their width
            raise ParameterError(f"a {features.clip_samples}-sample window is as wide as the {self.num_inputs} features: change sample_rate")
        if self.zero_shot:  # BirdNET's class of each output species, -1 where it has none (set_zero_shot_index)
            self.register_buffer("zero_shot_index", torch.full((config.num_classes,), -1, dtype=torch.long))
        self.register_buffer("feature_mean", torch.zeros(self.num_inputs))
        self.register_buffer("feature_scale", torch.ones(self.num_inputs))
        self.drop = nn.Dropout(config.drop_rate)
        self.body, self.classifier = self._head(config)
        self.num_features = config.hidden or self.num_inputs
        # heads 2.. (config.heads > 1), averaged with the first in probability (see ModelConfig.heads)
        self.extra_heads = nn.ModuleList(nn.Sequential(*self._head(config)) for _ in range(config.heads - 1))
        if config.heads > 1:  # each extra head's own standardisation (only then: no zero-size tensors in the file)
            self.register_buffer("extra_mean", torch.zeros(config.heads - 1, self.num_inputs))
            self.register_buffer("extra_scale", torch.ones(config.heads - 1, self.num_inputs))

    @property
    def scoring_config(self) -> BirdNetFeatureConfig:
        """What BirdNET gives per window at inference and validation: the head's inputs, then (zero-shot) its
        class logits. A property: a subclass that sets its own ``birdnet_config`` (``birdnet_finetune``) scores with it."""
        return dataclasses.replace(self.birdnet_config, logits=True) if self.zero_shot else self.birdnet_config

    def _head(self, config: ModelConfig) -> tuple[nn.Module, nn.Linear]:
        if config.hidden:
            body: nn.Module = nn.Sequential(nn.Linear(self.num_inputs, config.hidden), nn.GELU(), nn.Dropout(config.drop_rate))
        else:
            body = nn.Identity()
        return body, nn.Linear(config.hidden or self.num_inputs, config.num_classes)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def set_standardization(self, features: np.ndarray, *, head: int | None = None) -> None:
        """Set the input standardisation from training features ``(n, num_inputs)``: mean, std (floored).
        ``head``: that head's (each head is standardised on the rows it trains on); None: every head."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.num_inputs or len(x) == 0:
            raise ParameterError(f"expected (n > 0, {self.num_inputs}) training features, got shape {x.shape}")
        std = x.std(axis=0)
        floor = max(float(np.median(std)) * 1e-3, 1e-6)  # constant inputs (dead units) are not blown up
        mean, scale = torch.from_numpy(x.mean(axis=0)).float(), torch.from_numpy(np.maximum(std, floor)).float()
        for h in range(1 + len(self.extra_heads)) if head is None else [head]:
            self._mean(h).copy_(mean)
            self._scale(h).copy_(scale)

    def _mean(self, head: int) -> torch.Tensor:
        return self.feature_mean if head == 0 else self.extra_mean[head - 1]

    def _scale(self, head: int) -> torch.Tensor:
        return self.feature_scale if head == 0 else self.extra_scale[head - 1]

    def set_prior(self, targets: np.ndarray, *, head: int | None = None) -> None:
        """Start the classifier's biases at the log-odds of each class's training frequency.

        With ~2 % positives per class, logits starting near 0 cost a linear head hundreds of Adam steps just to
        move the biases to about -4 (measured on NIPS4B: BCE still 0.55 after 420 steps at lr 1e-3); starting
        at the prior, training goes straight to the features (the "prior" initialisation of RetinaNet).
        ``head``: set that head only (each head from the rows it trains on); None: every head.
        """
        y = np.asarray(targets, dtype=np.float64)
        if y.ndim != 2 or y.shape[1] != self.num_classes or len(y) == 0:
            raise ParameterError(f"expected (n > 0, {self.num_classes}) training targets, got shape {y.shape}")
        rate = np.clip(y.mean(axis=0), 1e-4, 1 - 1e-4)
        prior = torch.from_numpy(np.log(rate / (1 - rate))).float()
        classifiers = [self.classifier, *(extra[-1] for extra in self.extra_heads)]
        with torch.no_grad():
            for classifier in classifiers if head is None else [classifiers[head]]:
                classifier.bias.copy_(prior)

    def set_zero_shot_index(self, index) -> None:
        """BirdNET's class index of each output species (``(num_classes,)``, -1: BirdNET does not know it), as
        :meth:`birdcall.birdnet.BirdNetModel.species_index` gives for the taxonomy's scientific names."""
        if not self.zero_shot:
            raise ParameterError("set_zero_shot_index: the model was built with birdnet_zero_shot 0")
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        if idx.shape != (self.num_classes,) or bool(((idx < -1) | (idx >= _NUM_CLASSES)).any()):
            raise ParameterError(f"zero-shot index: expected {self.num_classes} BirdNET class indices in [-1, {_NUM_CLASSES}), got shape {tuple(idx.shape)}")
        self.zero_shot_index.copy_(idx)

    def birdnet_features(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` waveform windows -> BirdNET's outputs ``(B, num_scoring)``: the head's raw inputs, then (with
        ``birdnet_zero_shot``) BirdNET's class logits (no gradient: BirdNET is frozen)."""
        expected = self.feature_config.clip_samples
        if waveform.ndim != 2 or waveform.shape[1] != expected:
            raise ParameterError(f"a birdnet_probe model takes (batch, {expected}) windows, got shape {tuple(waveform.shape)}")
        x = waveform.detach().float().cpu().numpy()
        out = birdnet_features(x, sample_rate=self.feature_config.sample_rate, config=self.scoring_config)
        if out.shape[1] != self.num_scoring:
            raise ParameterError(f"BirdNET gave {out.shape[1]} features per window, the model takes {self.num_scoring}")
        return torch.from_numpy(np.array(out, dtype=np.float32)).to(self.feature_mean.device)

    def split_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Waveform ``(B, N)``, BirdNET outputs ``(B, num_scoring)`` or the head's raw features ``(B, num_inputs)``
        (training) -> ``(raw features, BirdNET's class logits or None)``. The logits come with ``birdnet_zero_shot``
        only, and not from raw features: the head alone scores those."""
        if x.ndim != 2 or x.shape[1] not in (self.num_inputs, self.num_scoring):
            x = self.birdnet_features(x)
        if self.zero_shot and x.shape[1] == self.num_scoring:
            return x[:, : self.num_inputs], x[:, -_NUM_CLASSES:]
        return x, None

    def raw_features(self, x: torch.Tensor) -> torch.Tensor:
        """Waveform ``(B, N)`` -> raw BirdNET features; raw features ``(B, num_inputs)`` (training) pass through."""
        return self.split_inputs(x)[0]

    def blend_zero_shot(self, logits: torch.Tensor, birdnet_logits: torch.Tensor | None) -> torch.Tensor:
        """``(1 - a) * logits + a * BirdNET's logit`` for the species BirdNET knows; ``logits`` elsewhere."""
        if birdnet_logits is None:
            return logits
        index = self.zero_shot_index
        prior = birdnet_logits[:, index.clamp(min=0)].to(logits.dtype)
        return torch.where(index >= 0, (1 - self.zero_shot) * logits + self.zero_shot * prior, logits)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Waveform ``(B, N)`` or raw BirdNET features ``(B, num_inputs)`` -> the first head's standardised features."""
        return (self.raw_features(x) - self.feature_mean) / self.feature_scale

    def one_head(self, raw: torch.Tensor, head: int) -> torch.Tensor:
        """Raw features (or waveforms) -> logits ``(B, num_classes)`` of head ``head`` alone, on its own standardisation."""
        x = self.drop((self.raw_features(raw) - self._mean(head)) / self._scale(head))
        return self.classifier(self.body(x)) if head == 0 else self.extra_heads[head - 1](x)

    def head_logits(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw features (or waveforms) -> every head's logits ``(B, heads, num_classes)``."""
        raw = self.raw_features(raw)
        return torch.stack([self.one_head(raw, h) for h in range(1 + len(self.extra_heads))], dim=1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The first head on standardised features (``forward_features``): ``(B, num_features)`` (its hidden layer,
        or its inputs) with ``pre_logits``, else its logits."""
        x = self.body(self.drop(x))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveform windows ``(B, N)`` (or precomputed BirdNET outputs, as training and validation use) -> logits;
        with several heads, the logit of their mean probability; with ``birdnet_zero_shot``, blended with
        BirdNET's own (:meth:`blend_zero_shot`)."""
        raw, birdnet_logits = self.split_inputs(x)
        if not len(self.extra_heads):
            logits = self.forward_head(self.forward_features(raw))
        else:
            p = torch.sigmoid(self.head_logits(raw)).mean(dim=1).clamp(1e-7, 1 - 1e-7)
            logits = torch.log(p) - torch.log1p(-p)
        return self.blend_zero_shot(logits, birdnet_logits)
