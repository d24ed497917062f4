"""timm backbones taking a ``(batch, in_chans, n_mels, n_frames)`` spectrogram, never downloading weights."""

from __future__ import annotations

from .._compat import import_timm
from ..errors import ParameterError

__all__ = ["create_backbone"]


def create_backbone(name: str, *, in_chans: int, drop_rate: float = 0.0, drop_path_rate: float | None = None):
    """A timm model without classifier or pooling: ``forward_features`` gives ``(batch, C, H, W)``.

    ``pretrained`` is always False: this machine kind (and many deployments) cannot reach a model hub.
    """
    timm = import_timm()
    kwargs = {"pretrained": False, "in_chans": in_chans, "num_classes": 0, "drop_rate": drop_rate}
    if drop_path_rate is not None:
        kwargs["drop_path_rate"] = drop_path_rate
    try:
        return timm.create_model(name, **kwargs)
    except RuntimeError as err:
        if "Unknown model" in str(err):
            raise ParameterError(f"unknown timm backbone {name!r}") from None
        raise
