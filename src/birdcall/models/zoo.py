"""Model entry points and ``create_model``. Each architecture family registers here, with a tiny ``test_``
variant for fast tests (as timm registers ``test_efficientnet``).

Presets are named ``<family>_<backbone>``: every family (``cnn``, ``sed``, ``crnn``) on every backbone of
``BACKBONES``, so ``sed_eca_nfnet_l0`` is the BirdCLEF 2022-2023 SED recipe and ``cnn_efficientnet_b0`` the
seed recipe's classifier.

The audio transformers (``backbones.VIT_BACKBONES``) give the same ``(B, C, F', T')`` map as a CNN, so they run
in the same families: ``vit_tiny`` is the clip family (``cnn``: mean of the patch tokens -> linear) on the
``vit_tiny`` backbone and ``sed_vit_tiny`` the SED family on it.
"""

from __future__ import annotations

import dataclasses
import fnmatch

from ..birdnet.model import BIRDNET_FAMILIES
from ..errors import ParameterError
from ..features import FeatureConfig
from ..registry import Registry
from .cnn import BirdCNN, ModelConfig
from .crnn import BirdCRNN
from .finetune import BirdNetFinetune
from .probe import BIRDNET_BACKBONE, BirdNetProbe
from .sed import BirdSED

__all__ = ["BACKBONES", "BIRDNET_FAMILIES", "create_model", "list_models", "model_config", "model_registry"]

model_registry: Registry = Registry("model architecture")

# Preset suffix -> timm backbone.
BACKBONES = {
    "efficientnet_b0": "efficientnet_b0",
    "mobilenetv3_large": "mobilenetv3_large_100",
    "mobilenetv3_small": "mobilenetv3_small_100",
    "resnet34": "resnet34",
    "resnext50": "resnext50_32x4d",
    "regnety_008": "regnety_008",
    "eca_nfnet_l0": "eca_nfnet_l0",
    "convnext_tiny": "convnext_tiny",
    "convnext_nano": "convnext_nano",
}

# Named presets: name -> ModelConfig fields (num_classes comes from the data).
_PRESETS = {f"{arch}_{short}": {"arch": arch, "backbone": timm_name} for arch in ("cnn", "sed", "crnn") for short, timm_name in BACKBONES.items()}
_PRESETS.update(
    {
        "test_cnn": {"arch": "cnn", "backbone": "test_efficientnet", "drop_rate": 0.0},
        "test_sed": {"arch": "sed", "backbone": "test_efficientnet", "drop_rate": 0.0},
        "test_crnn": {"arch": "crnn", "backbone": "test_resnet", "drop_rate": 0.0, "rnn_hidden": 16},
        # audio transformers on 16x16 log-mel patches (backbones.VIT_BACKBONES): clip head on the mean token, or SED
        "vit_tiny": {"arch": "cnn", "backbone": "vit_tiny"},
        "vit_small": {"arch": "cnn", "backbone": "vit_small"},
        "sed_vit_tiny": {"arch": "sed", "backbone": "vit_tiny"},
        "sed_vit_small": {"arch": "sed", "backbone": "vit_small"},
        "test_vit": {"arch": "cnn", "backbone": "test_vit", "drop_rate": 0.0},
        "test_sed_vit": {"arch": "sed", "backbone": "test_vit", "drop_rate": 0.0},
        # heads on frozen BirdNET V2.4 features (the optional extra; CC BY-NC-SA 4.0: non-commercial use only)
        "birdnet_probe": {"arch": "birdnet_probe", "backbone": BIRDNET_BACKBONE, "drop_rate": 0.0, "hidden": 0},
        "birdnet_mlp": {"arch": "birdnet_probe", "backbone": BIRDNET_BACKBONE, "drop_rate": 0.2, "hidden": 512},
        # BirdNET V2.4 (torch port) with its last blocks trained and a new head (same extra and licence)
        "birdnet_finetune": {"arch": "birdnet_finetune", "backbone": BIRDNET_BACKBONE, "drop_rate": 0.2, "hidden": 0},
    }
)


@model_registry.register(name="cnn")
def _cnn(config: ModelConfig, features: FeatureConfig) -> BirdCNN:
    return BirdCNN(config, features)


@model_registry.register(name="sed")
def _sed(config: ModelConfig, features: FeatureConfig) -> BirdSED:
    return BirdSED(config, features)


@model_registry.register(name="crnn")
def _crnn(config: ModelConfig, features: FeatureConfig) -> BirdCRNN:
    return BirdCRNN(config, features)


@model_registry.register(name="birdnet_probe")
def _birdnet_probe(config: ModelConfig, features: FeatureConfig) -> BirdNetProbe:
    return BirdNetProbe(config, features)


@model_registry.register(name="birdnet_finetune")
def _birdnet_finetune(config: ModelConfig, features: FeatureConfig) -> BirdNetFinetune:
    return BirdNetFinetune(config, features)


def list_models(pattern: str = "*") -> list[str]:
    """Preset names matching the shell-style ``pattern`` (``"sed_*"``), sorted."""
    return sorted(name for name in _PRESETS if fnmatch.fnmatchcase(name, pattern))


def model_config(name_or_config: str | ModelConfig, *, num_classes: int | None = None, **overrides) -> ModelConfig:
    """The :class:`ModelConfig` that ``create_model`` would build, without building it (same arguments)."""
    if isinstance(name_or_config, ModelConfig):
        fields = dataclasses.asdict(name_or_config)
    else:
        if name_or_config not in _PRESETS:
            raise ParameterError(f"unknown model {name_or_config!r}; available: {', '.join(list_models())}")
        fields = dict(_PRESETS[name_or_config])
    if num_classes is not None:
        fields["num_classes"] = num_classes
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ParameterError(f"unknown ModelConfig field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    config = ModelConfig(**{**fields, **overrides})
    model_registry.get(config.arch)  # raises ParameterError for an unknown family
    return config


def create_model(name_or_config: str | ModelConfig, *, num_classes: int | None = None, features: FeatureConfig | None = None, **overrides):
    """Build a model from a preset name (``list_models()``) or a :class:`ModelConfig`.

    Args:
        name_or_config: preset name such as ``"cnn_efficientnet_b0"`` or ``"sed_eca_nfnet_l0"``, or a full
            ``ModelConfig``.
        num_classes: number of species (required with a preset name).
        features: the front end; defaults to the seed recipe ``FeatureConfig()``.
        **overrides: ModelConfig fields (``drop_rate=0.3``, ``backbone="resnet34"``, ``clip_score=(0.5, 0.5)``...).

    Returns:
        A :class:`BirdCNN` (``forward -> (B, C)`` logits), :class:`BirdSED` or :class:`BirdCRNN`
        (``forward -> {"clipwise": (B, C), "framewise": (B, T', C)}`` logits); ``clip_logits(output)`` gives
        the clip logits of any of them.

    Raises:
        ParameterError: unknown preset, family, backbone or field, or an invalid field value.
    """
    config = model_config(name_or_config, num_classes=num_classes, **overrides)
    return model_registry.get(config.arch)(config, features or FeatureConfig())
