"""`TrainConfig`: everything that defines a training run, saved as ``config.yaml`` in the run folder.

Each component reads its own nested config (``net``, ``features``, ``optim``, ``loss``, ``data``, ``augment``,
``mix``, ``probe``, ``pseudo``, ``distill``); run-level keys stay at the top. Recipes are YAML files of this config
(shipped ones: ``birdcall/recipes/*.yaml``, :mod:`birdcall.train.recipes`); ``birdcall config write-default train``
writes the defaults, and ``key=value`` overrides (dotted for nested: ``optim.lr=1e-3``) apply on top. The flat
layout of older versions (``lr: 1e-3``) still loads: :func:`migrate_flat`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..augment import AugmentConfig
from ..augment.config import with_dataset_noise
from ..config import check_choice, check_fields, check_number
from ..data.soundscape import WindowMixConfig
from ..errors import ParameterError
from ..features import FeatureConfig
from .losses import LossConfig
from .optim import OptimConfig

__all__ = [
    "DISTILL_LOSSES",
    "LEGACY_KEYS",
    "DataConfig",
    "DistillConfig",
    "NetConfig",
    "ProbeConfig",
    "PseudoLabelConfig",
    "TrainConfig",
    "migrate_flat",
]  # fmt: skip

DISTILL_LOSSES = ("bce", "kl")
_DEVICE = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")


@dataclass(frozen=True)
class ProbeConfig:
    """How a head on frozen BirdNET features (``model: birdnet_probe`` or ``birdnet_mlp``) is trained.

    BirdNET runs once per training window and its features are cached (:mod:`birdcall.train.probe`); the head
    then trains for ``TrainConfig.epochs`` on the cached features (``optim``, ``batch_size``, ``loss`` and
    ``net.drop_rate`` apply as for any model). Ignored by the other families.

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
        zero_shot: weight of BirdNET's own classifier in the model's output (``ModelConfig.birdnet_zero_shot``):
            for each species BirdNET knows by the taxonomy's ``scientific_name``, the output logit is
            ``(1 - zero_shot) * head + zero_shot * BirdNET``; the head itself trains alone (with ``logits`` true
            as well its inputs already carry BirdNET's logits, and a one-head model trains inside the blend). 0: off.
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
    zero_shot: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self)
        check_number(self, "tail_epochs", ge=0)
        check_number(self, "zero_shot", ge=0, le=1)
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
        augment: augment the pseudo-labelled windows as labelled items are (background noise, the waveform
            stage, in-batch sum-mixing, the batch and spectrogram stages). False gives the student each window as the
            teacher scored it, so its target stays the teacher's verdict on what the student hears (consistent
            teaching); augmented views then come from labelling augmented copies of the recordings.
        balance: class-balanced drawing of the pseudo-labelled windows: the power of the inverse frequency of
            the species the teacher hears in a window (transformed target >= 0.5), as ``data.balanced_sampling``
            weighs labelled clips (0.5: inverse square root; a window takes its rarest species' weight; windows
            with none form one class). 0 (default): every window once per cycle, in shuffled order.
    """

    labels: str | None = None
    audio: str | None = None
    weight: float = 1.0
    power: float = 1.0
    threshold: float = 0.0
    min_confidence: float = 0.0
    ratio: float = 0.5
    min_seconds: float = 1.0
    augment: bool = True
    balance: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self)
        check_number(self, "min_seconds", ge=0)
        check_number(self, "balance", ge=0)
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
        embedding_weight: weight of an *embedding* distillation term on the pseudo-labelled windows (0: off). The
            student's pooled features, through a linear map trained with it (a training aid, not part of the model
            file), regress BirdNET V2.4's embeddings of each window: mean and max of the 1024-d embeddings of its
            3-s sub-windows (the features ``birdnet_probe`` models classify), standardised per dimension over the
            windows. They are computed once when training starts (needs ``make birdnet``). The term is the mean
            squared error over the pseudo-labelled rows, weighted by their share of the batch as
            ``pseudo.weight`` is. Needs ``pseudo.labels`` with ``pseudo.augment: false`` (the target describes
            the window as it is) and a ``cnn``-family student. A student taught this way learns from BirdNET
            (CC BY-NC-SA 4.0: non-commercial), and its metadata says so.
    """

    teacher: str | None = None
    weight: float = 0.5
    loss: str = "bce"
    temperature: float = 1.0
    embedding_weight: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self)
        check_number(self, "weight", ge=0, le=1)
        check_number(self, "temperature", gt=0)
        check_number(self, "embedding_weight", ge=0)
        check_choice(self, "loss", DISTILL_LOSSES)
        if self.teacher is not None and not self.teacher.strip():
            raise ParameterError("DistillConfig.teacher must be a model path or null, got ''")


@dataclass(frozen=True)
class NetConfig:
    """Network settings a training run gives the model preset (``TrainConfig.model``) on top of its own.

    Attributes:
        drop_rate: dropout before the classifier, in [0, 1).
        pool: CNN pooling, ``"avg"`` or ``"avgmax"`` (mean + max over time); None keeps the preset's.
        drop_path_rate: stochastic depth of the backbone, in [0, 1); None keeps timm's default.
    """

    drop_rate: float = 0.2
    pool: str | None = None
    drop_path_rate: float | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        check_number(self, "drop_rate", ge=0, lt=1)
        check_number(self, "drop_path_rate", ge=0, lt=1, none_ok=True)
        check_choice(self, "pool", (None, "avg", "avgmax"))


@dataclass(frozen=True)
class DataConfig:
    """Which clips a run trains on and how they are read, cropped and mixed.

    Attributes:
        val_fraction: hold-out split when ``TrainConfig.folds`` < 2.
        secondary_weight: target value for secondary labels, in (0, 1].
        balanced_sampling: sample clips with class-balanced weights instead of uniformly.
        cache_dir: decoded-audio cache (memory-mapped); None keeps decoded clips in RAM.
        background_negatives: add the data set's background/ clips as all-negative training clips.
        crop: training crop, ``"random"`` or ``"energy"``.
        mix_p: probability of sum-mixing two training items of a batch (labels: their union).
        mix_min_gain_db: lowest gain of the mixed-in item.
        mix_max_gain_db: highest gain of the mixed-in item.
    """

    val_fraction: float = 0.2
    secondary_weight: float = 1.0
    balanced_sampling: bool = False
    cache_dir: str | None = None
    background_negatives: bool = True
    crop: str = "random"
    mix_p: float = 0.5
    mix_min_gain_db: float = -6.0
    mix_max_gain_db: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self)
        check_number(self, "val_fraction", ge=0, lt=1)
        check_number(self, "mix_p", ge=0, le=1)
        check_number(self, "secondary_weight", gt=0, le=1)
        check_choice(self, "crop", ("random", "energy"))
        if self.cache_dir is not None and not self.cache_dir.strip():
            raise ParameterError("DataConfig.cache_dir must be a folder or null, got ''")
        if self.mix_min_gain_db > self.mix_max_gain_db:
            raise ParameterError(f"DataConfig.mix_min_gain_db must be <= mix_max_gain_db, got {self.mix_min_gain_db} > {self.mix_max_gain_db}")


DATA_KEYS = ("val_fraction", "secondary_weight", "balanced_sampling", "cache_dir", "background_negatives", "crop", "mix_p", "mix_min_gain_db", "mix_max_gain_db")

# Where each key of the flat TrainConfig (birdcall before issue 18; the config.yaml of older runs) lives now.
# A value is a dotted path, or (path, index) for one end of a (min, max) pair.
LEGACY_KEYS: dict[str, str | tuple[str, int]] = {
    **{key: f"net.{key}" for key in ("drop_rate", "pool", "drop_path_rate")},
    **{key: f"optim.{key}" for key in ("optimizer", "lr", "weight_decay", "momentum", "warmup_epochs", "min_lr_ratio", "no_decay_bias_norm")},
    **{key: f"loss.{key}" for key in ("loss", "label_smoothing", "focal_gamma", "focal_alpha", "bce_weight", "focal_weight", "class_weight_power")},
    **{key: f"data.{key}" for key in DATA_KEYS},
    "noise_p": "augment.background_noise_p",
    "noise_min_snr_db": ("augment.background_noise_snr_db", 0),
    "noise_max_snr_db": ("augment.background_noise_snr_db", 1),
}
_NOISE_DEFAULTS = {"noise_p": 0.5, "noise_min_snr_db": 3.0, "noise_max_snr_db": 30.0}  # the flat TrainConfig's


def _is_legacy(data: Mapping, key: str) -> bool:
    """``key`` of ``data`` is a flat key: a key the nested form lacks, or ``loss`` given as a name."""
    return key in LEGACY_KEYS and not isinstance(data[key], Mapping)


def migrate_flat(data: Mapping[str, Any]) -> dict[str, Any]:
    """A TrainConfig mapping in the nested form; a flat one (older runs' ``config.yaml``) is moved key by key.

    Every flat key goes to its nested place (:data:`LEGACY_KEYS`). The data set's background noise
    (``noise_p``, ``noise_min_snr_db``, ``noise_max_snr_db``; their old defaults when absent) becomes the first
    ``augment.waveform`` entry, ``background_noise`` without paths (that is: the data set's background/ clips),
    unless the old ``augment.background_noise_p`` was on, which mixed files of its own: then ``noise_p`` must have
    been 0 (both at once cannot be expressed any more). The flat augment block of that version is migrated too
    (:meth:`AugmentConfig.migrate_dict`). A mapping in the nested form is returned as it is.

    Raises:
        ParameterError: a flat key also given in the nested form, or both kinds of background noise on.
    """
    data = dict(data)
    flat = [key for key in data if _is_legacy(data, key)]
    if not flat:
        return data
    old_layout = bool(set(flat) - {"loss"})  # only ``loss: bce`` may be a slip in a nested file: its noise stays as given
    noise = {key: data.pop(key, default) for key, default in _NOISE_DEFAULTS.items()} if old_layout else {}
    for key in [k for k in flat if k not in _NOISE_DEFAULTS]:
        group, name = str(LEGACY_KEYS[key]).split(".")
        node = data.get(group)
        node = dict(node) if isinstance(node, Mapping) else {}
        if name in node:
            raise ParameterError(f"TrainConfig: {key} is given twice, flat and as {group}.{name}")
        node[name] = data.pop(key)
        data[group] = node
    if not old_layout:
        return data
    snr_db = [noise["noise_min_snr_db"], noise["noise_max_snr_db"]]
    data["augment"] = with_dataset_noise(data.get("augment") or {}, p=noise["noise_p"], snr_db=snr_db)
    return data


def _default_augment() -> AugmentConfig:
    return AugmentConfig()


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; each component reads its own part.

    Older runs' flat ``config.yaml`` files still load: :func:`migrate_flat` moves their keys (and ``key=value``
    overrides with the old flat names still work, :func:`birdcall.config.apply_overrides`).
    """

    LEGACY_KEYS: ClassVar[dict] = LEGACY_KEYS

    model: str = "cnn_efficientnet_b0"  # a preset of birdcall.models.list_models()
    net: NetConfig = field(default_factory=NetConfig)  # dropout, pooling, stochastic depth on top of the preset
    features: FeatureConfig = field(default_factory=FeatureConfig)
    # schedule
    epochs: int = 10
    batch_size: int = 32
    optim: OptimConfig = field(default_factory=OptimConfig)  # optimiser, learning rate and its warm-up + cosine schedule
    grad_clip: float = 5.0  # max global grad norm, >= 0; 0 disables
    ema_decay: float = 0.0  # EMA of weights for evaluation and the saved model; 0 disables
    ema_warmup: bool = True  # decay ramps up as min(ema_decay, (1 + k) / (10 + k)) over the first updates
    amp: bool = False  # mixed precision: float16 + grad scaling on CUDA, bfloat16 autocast on CPU
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1"...
    loss: LossConfig = field(default_factory=LossConfig)  # "bce", "focal" or "bce+focal", smoothing, class weights
    # data
    folds: int = 0  # K-fold CV when >= 2 (iterative multi-label stratification); else one hold-out split
    seeds: int = 1  # K-fold only: models per fold, seeds seed + 1000 j (a seed ensemble; see birdcall.train.cv)
    data: DataConfig = field(default_factory=DataConfig)  # split, secondary labels, sampling, cache, crops, batch sum-mix
    # waveform, batch and spectrogram stages; background noise without paths mixes in the data set's background/ clips
    augment: AugmentConfig = field(default_factory=_default_augment)
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

    @classmethod
    def migrate_dict(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """Hook of :func:`birdcall.config.from_dict`: :func:`migrate_flat`."""
        return migrate_flat(data)

    def __post_init__(self) -> None:
        check_fields(self)  # types: nested configs, scalars, finite numbers
        for key in ("epochs", "batch_size"):
            check_number(self, key, ge=1)
        for key in ("seed", "num_workers"):
            check_number(self, key, ge=0)
        check_number(self, "grad_clip", ge=0, note=" (0 disables clipping)")
        check_number(self, "threads", ge=1, none_ok=True)
        check_number(self, "ema_decay", ge=0, lt=1)
        check_choice(self, "select", ("best", "last"))
        if not self.model:
            raise ParameterError("TrainConfig.model must name a model preset (see `birdcall models`), got ''")
        if not _DEVICE.fullmatch(self.device):
            raise ParameterError(f"TrainConfig.device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {self.device!r}")
        if self.init_from is not None and not self.init_from.strip():
            raise ParameterError("TrainConfig.init_from must be a weights file or null, got ''")
        for key, value in (("pseudo.labels", self.pseudo.labels), ("distill.teacher", self.distill.teacher), ("init_from", self.init_from)):
            if value is not None and "{fold}" in value and self.folds < 2:
                raise ParameterError(f"TrainConfig.{key} has '{{fold}}' but folds={self.folds}: only K-fold runs have a fold number")
        if self.distill.embedding_weight > 0 and (self.pseudo.labels is None or self.pseudo.augment):
            raise ParameterError("TrainConfig.distill.embedding_weight > 0 needs pseudo.labels with pseudo.augment: false (its targets describe the windows as they are)")
        if self.loss.loss == "bce+focal" and self.loss.bce_weight == 0 and self.loss.focal_weight == 0:
            raise ParameterError("TrainConfig.loss.bce_weight and focal_weight are both 0: the loss would be 0")
        if self.folds < 0 or self.folds == 1:
            raise ParameterError(f"TrainConfig.folds must be 0 (hold-out) or >= 2, got {self.folds}")
        if self.seeds < 1 or (self.seeds > 1 and self.folds < 2):
            raise ParameterError(f"TrainConfig.seeds must be >= 1, and 1 without folds (K-fold only), got seeds={self.seeds}, folds={self.folds}")
