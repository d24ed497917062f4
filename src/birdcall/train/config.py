"""`TrainConfig`: everything that defines a training run, saved as ``config.yaml`` in the run folder."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ParameterError
from ..features import FeatureConfig

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    model: str = "cnn_efficientnet_b0"  # a preset of birdcall.models.list_models()
    drop_rate: float = 0.2
    features: FeatureConfig = field(default_factory=FeatureConfig)
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0
    grad_clip: float = 5.0
    val_fraction: float = 0.2
    secondary_weight: float = 1.0  # target value for secondary labels
    mix_p: float = 0.5  # sum-mix probability (union labels)
    mix_min_gain_db: float = -6.0
    mix_max_gain_db: float = 0.0
    background_negatives: bool = True  # add the data set's background/ clips as all-negative training clips
    noise_p: float = 0.5  # mix a background/ clip into a training clip with this probability
    noise_min_snr_db: float = 3.0
    noise_max_snr_db: float = 30.0
    crop: str = "random"  # training crop: "random" or "energy"
    seed: int = 0
    num_workers: int = 0
    threads: int | None = None  # torch intra-op threads; None keeps torch's default

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ParameterError(f"TrainConfig: epochs and batch_size must be >= 1 (got {self.epochs}, {self.batch_size})")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ParameterError(f"TrainConfig: val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.lr <= 0:
            raise ParameterError(f"TrainConfig: lr must be > 0, got {self.lr}")
        if self.crop not in ("random", "energy"):
            raise ParameterError(f"TrainConfig: crop must be 'random' or 'energy', got {self.crop!r}")
        if not 0.0 < self.secondary_weight <= 1.0:
            raise ParameterError(f"TrainConfig: secondary_weight must be in (0, 1], got {self.secondary_weight}")
