"""`TrainConfig`: everything that defines a training run, saved as ``config.yaml`` in the run folder.

Recipes are YAML files of this config (shipped ones: ``birdcall/recipes/*.yaml``, :mod:`birdcall.train.recipes`); ``birdcall config write-default train`` writes
the defaults, and ``key=value`` overrides (dotted for nested: ``features.n_mels=64``) apply on top.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..augment import AugmentConfig
from ..config import check_choice, check_fields, check_number
from ..errors import ParameterError
from ..data.soundscape import WindowMixConfig
from ..features import FeatureConfig

__all__ = ["DISTILL_LOSSES", "DistillConfig", "ProbeConfig", "PseudoLabelConfig", "TrainConfig"]

LOSSES = ("bce", "focal", "bce+focal")
DISTILL_LOSSES = ("bce", "kl")
OPTIMIZERS = ("adamw", "adam", "sgd")
_DEVICE = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")


@dataclass(frozen=True)
class ProbeConfig:
    """How a head on frozen BirdNET features (``model: birdnet_probe`` or ``birdnet_mlp``) is trained.

    BirdNET runs once per training window and its features are cached (:mod:`birdcall.train.probe`); the head
    then trains for ``TrainConfig.epochs`` on the cached features (``lr``, ``weight_decay``, ``batch_size``,
    ``loss``, ``class_weight_power``, ``drop_rate`` apply as for any model). Ignored by the other families.

    Attributes:
        clips: train on each clip's own features (the whole clip, as ``birdcall embed`` sees it).
        views: soundscape-style windows per training clip (``TrainConfig.mix`` settings, always mixed: the clip
            at a random offset, other clips, background beds, labels from call times), each a fixed draw.
        step: seconds between BirdNET's 3-s sub-windows inside a window (pooled).
        pool: ``"meanmax"``, ``"mean"`` or ``"max"`` pooling of the sub-windows' embeddings.
        logits: also give BirdNET's own class logits (max-pooled) to the head.
        hidden: hidden width of the head; None keeps the preset's (``birdnet_probe``: 0, linear;
            ``birdnet_mlp``: 512).
        heads: heads averaged in probability (``ModelConfig.heads``); None keeps the preset's (1). With 2, one
            head learns from the clips only and one from every window, views included.
        tail: ``birdnet_finetune`` only: the BirdNET block where the trained tail starts (``ModelConfig.birdnet_tail``).
        tail_epochs: ``birdnet_finetune`` only: the last ``tail_epochs`` of ``epochs`` also train the tail; the
            epochs before train the head alone on the frozen network (linear probing, then fine-tuning:
            Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features").
        tail_lr: ``birdnet_finetune`` only: the tail's learning rate as a fraction of ``lr``.
    """

    clips: bool = True
    views: int = 3
    step: float = 1.0
    pool: str = "meanmax"
    logits: bool = False
    hidden: int | None = None
    heads: int | None = None
    tail: str = "BLOCK_4-3"
    tail_epochs: int = 5
    tail_lr: float = 0.1

    def __post_init__(self) -> None:
        check_fields(self)
        check_number(self, "tail_epochs", ge=0)
        check_number(self, "tail_lr", gt=0, le=10)
        if not re.fullmatch(r"BLOCK_\d+-\d+", self.tail):
            raise ParameterError(f"ProbeConfig: tail must name a BirdNET block like 'BLOCK_4-3', got {self.tail!r}")
        check_number(self, "heads", ge=1, le=8, none_ok=True)
        check_number(self, "views", ge=0)
        check_number(self, "step", gt=0)
        check_number(self, "hidden", ge=0, none_ok=True)
        check_choice(self, "pool", ("meanmax", "mean", "max"))
        if not self.clips and not self.views:
            raise ParameterError("ProbeConfig: clips is false and views is 0: the head would have nothing to train on")


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Windows of unlabelled recordings with a teacher's soft labels (``birdcall pseudo-label``) added to training.

    Each training batch holds ``round(ratio * batch_size)`` pseudo-labelled windows and labelled items for the
    rest; an epoch is one pass over the labelled items (the pseudo-labelled windows are drawn without
    replacement, cycling, so every one is seen before any repeats). A pseudo-labelled window's target is the
    teacher's probability ``p`` transformed: ``p ** power`` (BirdCLEF 2025's power transform; ``power > 1``
    damps the teacher's low, noisy probabilities), then values below ``threshold`` set to 0. Its loss is the
    run's ``loss`` on that soft target, weighted ``weight`` relative to a labelled item.

    Attributes:
        labels: the Parquet file of ``birdcall pseudo-label``; ``{fold}`` in it is replaced by the fold number
            in K-fold runs (each fold's teacher must not have seen that fold's validation clips). None: off.
        audio: the folder the file names in ``labels`` are relative to (``pseudo-label`` writes them relative
            to its input folder). Names that are absolute or lead out of it are refused.
        weight: loss weight of a pseudo-labelled window relative to a labelled one.
        power: the power transform ``p ** power`` of the teacher's probabilities.
        threshold: transformed probabilities below it become 0.
        min_confidence: windows whose highest teacher probability is below it are left out (0 keeps all, so the
            teacher's "nothing here" windows teach negatives too).
        ratio: fraction of each batch that is pseudo-labelled windows, in [0, 1).
        min_seconds: windows holding less audio than this are left out: the tail of a recording a little longer
            than a whole number of windows (NIPS4B's 5.004-s files give a 4-ms second window, padded) teaches
            nothing but padding.
    """

    labels: str | None = None
    audio: str | None = None
    weight: float = 1.0
    power: float = 1.0
    threshold: float = 0.0
    min_confidence: float = 0.0
    ratio: float = 0.5
    min_seconds: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self)
        check_number(self, "min_seconds", ge=0)
        check_number(self, "weight", gt=0)
        check_number(self, "power", gt=0)
        check_number(self, "threshold", ge=0, lt=1)
        check_number(self, "min_confidence", ge=0, lt=1)
        check_number(self, "ratio", ge=0, lt=1)
        for key in ("labels", "audio"):
            value = getattr(self, key)
            if value is not None and not value.strip():
                raise ParameterError(f"PseudoLabelConfig.{key} must be a path or null, got ''")
        if self.labels is not None and self.audio is None:
            raise ParameterError("PseudoLabelConfig.audio is required with pseudo.labels: the folder its file names are relative to")
        if self.labels is not None and self.ratio == 0:
            raise ParameterError("PseudoLabelConfig.ratio is 0 with pseudo.labels set: no batch would hold a pseudo-labelled window")


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation from a teacher kept in memory (online): it scores every training batch *after*
    augmentation (mixing, shifts, noise), so its targets match what the student sees.

    Labelled items: ``loss = (1 - weight) * hard + weight * distill``; pseudo-labelled windows (``pseudo``) keep
    their precomputed soft labels. The distillation term compares temperature-scaled sigmoid outputs,
    ``q = sigmoid(z / T)`` of teacher and student logits, per species as a binary distribution, times ``T**2``
    (Hinton et al. 2015, so gradients keep their scale as ``T`` changes): ``"bce"`` is the cross-entropy
    ``-(q_t log q_s + (1 - q_t) log(1 - q_s))``, ``"kl"`` the same minus the teacher's entropy (same gradients,
    0 when the student matches the teacher). A teacher that gives probabilities has logits ``log(p / (1 - p))``.

    Attributes:
        teacher: a model file or training run folder (the mean of its folds), any format ``birdcall predict``
            opens; ``{fold}`` is replaced by the fold number in K-fold runs. None: off. A teacher with another
            sample rate gets the batch resampled (soxr); its clip duration must be the student's.
        weight: share of the distillation term in the loss of labelled items, in [0, 1].
        loss: ``"bce"`` or ``"kl"``.
        temperature: ``T`` > 0.
    """

    teacher: str | None = None
    weight: float = 0.5
    loss: str = "bce"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self)
        check_number(self, "weight", ge=0, le=1)
        check_number(self, "temperature", gt=0)
        check_choice(self, "loss", DISTILL_LOSSES)
        if self.teacher is not None and not self.teacher.strip():
            raise ParameterError("DistillConfig.teacher must be a model path or null, got ''")


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
    grad_clip: float = 5.0  # max global grad norm, >= 0; 0 disables
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
    # soundscape-style training windows (data.mixed_windows): with probability mix.p an item is its clip at a random
    # offset (cut at the window edges) plus up to mix.extra_clips others over background recordings, labelled from
    # events.csv call times; mix.p = 0 trains on plain crops
    mix: WindowMixConfig = field(default_factory=WindowMixConfig)
    # heads on frozen BirdNET features (model birdnet_probe / birdnet_mlp): training windows and feature settings
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    # soft labels: pseudo-labelled windows of unlabelled recordings (precomputed) and an online teacher
    pseudo: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    # start from weights: a birdcall checkpoint (.safetensors with config and labels; the head is re-initialised
    # when its species differ) or a timm/safetensors weights file of the backbone (e.g. ImageNet weights
    # downloaded beforehand); "{fold}" is replaced by the fold number in K-fold runs; None: random initialisation
    init_from: str | None = None
    # run
    select: str = "best"  # kept model and oof.csv: "best" validation padded cmAP, or "last" epoch (unbiased CV estimate)
    seed: int = 0
    num_workers: int = 0
    threads: int | None = None  # torch intra-op threads; None keeps torch's default

    def __post_init__(self) -> None:
        check_fields(self)  # types: nested configs, scalars, finite numbers
        for key in ("epochs", "batch_size"):
            check_number(self, key, ge=1)
        for key in ("weight_decay", "warmup_epochs", "focal_gamma", "bce_weight", "focal_weight", "class_weight_power", "seed", "num_workers"):
            check_number(self, key, ge=0)
        check_number(self, "lr", gt=0)
        check_number(self, "grad_clip", ge=0, note=" (0 disables clipping)")
        check_number(self, "threads", ge=1, none_ok=True)
        for key in ("drop_rate", "momentum", "val_fraction", "ema_decay", "label_smoothing"):
            check_number(self, key, ge=0, lt=1)
        check_number(self, "drop_path_rate", ge=0, lt=1, none_ok=True)
        for key in ("min_lr_ratio", "noise_p", "mix_p"):
            check_number(self, key, ge=0, le=1)
        check_number(self, "focal_alpha", ge=0, le=1, none_ok=True)
        check_number(self, "secondary_weight", gt=0, le=1)
        check_choice(self, "pool", (None, "avg", "avgmax"))
        check_choice(self, "select", ("best", "last"))
        check_choice(self, "crop", ("random", "energy"))
        check_choice(self, "loss", LOSSES)
        check_choice(self, "optimizer", OPTIMIZERS)
        if not self.model:
            raise ParameterError("TrainConfig.model must name a model preset (see `birdcall models`), got ''")
        if not _DEVICE.fullmatch(self.device):
            raise ParameterError(f"TrainConfig.device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {self.device!r}")
        if self.init_from is not None and not self.init_from.strip():
            raise ParameterError("TrainConfig.init_from must be a weights file or null, got ''")
        for key, value in (("pseudo.labels", self.pseudo.labels), ("distill.teacher", self.distill.teacher), ("init_from", self.init_from)):
            if value is not None and "{fold}" in value and self.folds < 2:
                raise ParameterError(f"TrainConfig.{key} has '{{fold}}' but folds={self.folds}: only K-fold runs have a fold number")
        if self.cache_dir is not None and not self.cache_dir.strip():
            raise ParameterError("TrainConfig.cache_dir must be a folder or null, got ''")
        if self.loss == "bce+focal" and self.bce_weight == 0 and self.focal_weight == 0:
            raise ParameterError("TrainConfig.bce_weight and focal_weight are both 0: the loss would be 0")
        if self.folds < 0 or self.folds == 1:
            raise ParameterError(f"TrainConfig.folds must be 0 (hold-out) or >= 2, got {self.folds}")
        if self.seeds < 1 or (self.seeds > 1 and self.folds < 2):
            raise ParameterError(f"TrainConfig.seeds must be >= 1, and 1 without folds (K-fold only), got seeds={self.seeds}, folds={self.folds}")
        if self.noise_min_snr_db > self.noise_max_snr_db:
            raise ParameterError(f"TrainConfig.noise_min_snr_db must be <= noise_max_snr_db, got {self.noise_min_snr_db} > {self.noise_max_snr_db}")
        if self.mix_min_gain_db > self.mix_max_gain_db:
            raise ParameterError(f"TrainConfig.mix_min_gain_db must be <= mix_max_gain_db, got {self.mix_min_gain_db} > {self.mix_max_gain_db}")
