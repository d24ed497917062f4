"""Model entry points and ``create_model``. Each architecture family registers here, with a tiny ``test_``
variant for fast tests (as timm registers ``test_efficientnet``)."""

from __future__ import annotations

import dataclasses

from ..errors import ParameterError
from ..features import FeatureConfig
from ..registry import Registry
from .cnn import BirdCNN, ModelConfig

__all__ = ["create_model", "list_models", "model_registry"]

model_registry: Registry = Registry("model")

# Named presets: name -> ModelConfig fields (num_classes comes from the data).
_PRESETS = {
    "cnn_efficientnet_b0": {"arch": "cnn", "backbone": "efficientnet_b0"},
    "cnn_mobilenetv3_large": {"arch": "cnn", "backbone": "mobilenetv3_large_100"},
    "cnn_mobilenetv3_small": {"arch": "cnn", "backbone": "mobilenetv3_small_100"},
    "cnn_resnet34": {"arch": "cnn", "backbone": "resnet34"},
    "test_cnn": {"arch": "cnn", "backbone": "test_efficientnet", "drop_rate": 0.0},
}


@model_registry.register(name="cnn")
def _cnn(config: ModelConfig, features: FeatureConfig) -> BirdCNN:
    return BirdCNN(config, features)


def list_models() -> list[str]:
    return sorted(_PRESETS)


def create_model(name_or_config: str | ModelConfig, *, num_classes: int | None = None, features: FeatureConfig | None = None, **overrides):
    """Build a model from a preset name (``list_models()``) or a :class:`ModelConfig`.

    Args:
        name_or_config: preset name such as ``"cnn_efficientnet_b0"``, or a full ``ModelConfig``.
        num_classes: number of species (required with a preset name).
        features: the front end; defaults to the seed recipe ``FeatureConfig()``.
        **overrides: ModelConfig fields (``drop_rate=0.3``, ``backbone="resnet34"``...).
    """
    if isinstance(name_or_config, ModelConfig):
        fields = dataclasses.asdict(name_or_config)
    else:
        if name_or_config not in _PRESETS:
            raise ParameterError(f"unknown model {name_or_config!r}; available: {', '.join(list_models())}")
        fields = dict(_PRESETS[name_or_config])
    if num_classes is not None:
        fields["num_classes"] = num_classes
    fields.update(overrides)
    config = ModelConfig(**fields)
    return model_registry.get(config.arch)(config, features or FeatureConfig())
