"""`TrainConfig`: everything that defines a training run, saved as ``config.yaml`` in the run folder.

Recipes are YAML files of this config (``configs/*.yaml``); ``birdcall config write-default train`` writes
the defaults, and ``key=value`` overrides (dotted for nested: ``features.n_mels=64``) apply on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..augment import AugmentConfig
from ..errors import ParameterError
from ..features import FeatureConfig

__all__ = ["TrainConfig"]

LOSSES = ("bce", "focal", "bce+focal")
OPTIMIZERS = ("adamw", "adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    # model
    model: str = "cnn_efficientnet_b0"  # a preset of birdcall.models.list_models()
    drop_rate: float = 0.2
    pool: str | None = None  # CNN pooling, "avg" or "avgmax" (mean + max over time); None keeps the preset's
    drop_path_rate: float | None = None  # stochastic depth of the backbone; None keeps timm's default
    features: FeatureConfig = field(default_factory=FeatureConfig)
    # schedule
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-2
    momentum: float = 0.9  # SGD only
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 5.0  # max global grad norm; 0 disables
    ema_decay: float = 0.0  # EMA of weights for evaluation and the saved model; 0 disables
    ema_warmup: bool = True  # decay ramps up as min(ema_decay, (1 + k) / (10 + k)) over the first updates
    no_decay_bias_norm: bool = True  # no weight decay on biases and normalisation parameters
    amp: bool = False  # mixed precision: float16 + grad scaling on CUDA, bfloat16 autocast on CPU
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1"...
    # loss
    loss: str = "bce"  # "bce", "focal" or "bce+focal"
    label_smoothing: float = 0.0
    focal_gamma: float = 2.0
    focal_alpha: float | None = None
    bce_weight: float = 1.0
    focal_weight: float = 1.0
    class_weight_power: float = 0.0  # per-class loss weights ~ 1/frequency**power (0.5: inverse sqrt); 0 disables
    # data
    folds: int = 0  # K-fold CV when >= 2 (iterative multi-label stratification); else one hold-out split
    seeds: int = 1  # K-fold only: models per fold, seeds seed + 1000 j (a seed ensemble; see birdcall.train.cv)
    val_fraction: float = 0.2  # hold-out split when folds < 2
    secondary_weight: float = 1.0  # target value for secondary labels
    balanced_sampling: bool = False  # sample clips with class-balanced weights instead of uniformly
    cache_dir: str | None = None  # decoded-audio cache (memory-mapped); None keeps decoded clips in RAM
    background_negatives: bool = True  # add the data set's background/ clips as all-negative training clips
    noise_p: float = 0.5  # mix a background/ clip into a training clip with this probability
    noise_min_snr_db: float = 3.0
    noise_max_snr_db: float = 30.0
    crop: str = "random"  # training crop: "random" or "energy"
    mix_p: float = 0.5  # sum-mix probability (union labels)
    mix_min_gain_db: float = -6.0
    mix_max_gain_db: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # waveform, batch and spectrogram stages
    # run
    select: str = "best"  # kept model and oof.csv: "best" validation padded cmAP, or "last" epoch (unbiased CV estimate)
    seed: int = 0
    num_workers: int = 0
    threads: int | None = None  # torch intra-op threads; None keeps torch's default

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ParameterError(f"TrainConfig: epochs and batch_size must be >= 1 (got {self.epochs}, {self.batch_size})")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ParameterError(f"TrainConfig: val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ParameterError(f"TrainConfig: lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if self.select not in ("best", "last"):
            raise ParameterError(f"TrainConfig: select must be 'best' or 'last', got {self.select!r}")
        if self.crop not in ("random", "energy"):
            raise ParameterError(f"TrainConfig: crop must be 'random' or 'energy', got {self.crop!r}")
        if not 0.0 < self.secondary_weight <= 1.0:
            raise ParameterError(f"TrainConfig: secondary_weight must be in (0, 1], got {self.secondary_weight}")
        if self.loss not in LOSSES:
            raise ParameterError(f"TrainConfig: loss must be one of {LOSSES}, got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ParameterError(f"TrainConfig: optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ParameterError(f"TrainConfig: ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ParameterError(f"TrainConfig: label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.folds < 0 or self.folds == 1:
            raise ParameterError(f"TrainConfig: folds must be 0 (hold-out) or >= 2, got {self.folds}")
        if self.seeds < 1 or (self.seeds > 1 and self.folds < 2):
            raise ParameterError(f"TrainConfig: seeds must be >= 1, and 1 without folds (K-fold only), got seeds={self.seeds}, folds={self.folds}")
        if self.noise_min_snr_db > self.noise_max_snr_db or self.mix_min_gain_db > self.mix_max_gain_db:
            raise ParameterError("TrainConfig: noise_min_snr_db <= noise_max_snr_db and mix_min_gain_db <= mix_max_gain_db")
