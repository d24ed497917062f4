"""Backbones taking a ``(batch, in_chans, n_mels, n_frames)`` spectrogram, never downloading weights.

Two kinds: any timm CNN by name, and the audio transformers of :data:`VIT_BACKBONES` (a timm
``VisionTransformer`` on log-mel patches, :class:`AudioViT`). Both give a ``(batch, C, F', T')`` map from
``forward_features``, so every head family (clip, SED, CRNN) runs on either.
"""

from __future__ import annotations

from .._compat import import_timm
from ..errors import ParameterError

__all__ = ["VIT_BACKBONES", "create_backbone"]

# Audio transformer backbones: DeiT-tiny/small widths (timm's vit_tiny/small_patch16) and a tiny test variant.
VIT_BACKBONES = {
    "vit_tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3, "patch_size": 16},
    "vit_small": {"embed_dim": 384, "depth": 12, "num_heads": 6, "patch_size": 16},
    "test_vit": {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 16},
}


def create_backbone(
    name: str, *, in_chans: int, drop_rate: float = 0.0, drop_path_rate: float | None = None, input_size: tuple[int, int] | None = None
):
    """A backbone without classifier or pooling: ``forward_features`` gives ``(batch, C, H, W)``.

    ``pretrained`` is always False: this machine kind (and many deployments) cannot reach a model hub.

    Args:
        name: a timm model name, or a key of :data:`VIT_BACKBONES`.
        in_chans: feature channels.
        drop_rate: dropout inside the backbone.
        drop_path_rate: stochastic depth; None keeps timm's default (0 for the transformers).
        input_size: ``(n_mels, n_frames)`` of a training window; required by the transformers, whose positional
            embedding has one entry per patch of it; ignored by the CNNs.

    Raises:
        ParameterError: unknown backbone, or a transformer without ``input_size``.
    """
    if name in VIT_BACKBONES:
        if input_size is None:
            raise ParameterError(f"backbone {name!r} needs input_size=(n_mels, n_frames) for its positional embedding")
        return create_audio_vit(name, in_chans=in_chans, input_size=input_size, drop_rate=drop_rate, drop_path_rate=drop_path_rate)
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


def create_audio_vit(name: str, *, in_chans: int, input_size: tuple[int, int], drop_rate: float = 0.0, drop_path_rate: float | None = None):
    """The :class:`birdcall.models.vit.AudioViT` of ``VIT_BACKBONES[name]`` for ``(n_mels, n_frames)`` windows (random init)."""
    spec = dict(VIT_BACKBONES[name])
    patch = spec.pop("patch_size")
    n_mels, n_frames = (int(v) for v in input_size)
    if n_mels < patch or n_frames < patch:
        raise ParameterError(f"backbone {name!r}: input {n_mels}x{n_frames} (mels x frames) is smaller than one {patch}x{patch} patch")
    from .vit import AudioViT  # imports timm: only when a transformer is built

    return AudioViT(
        img_size=(n_mels, n_frames), patch_size=patch, in_chans=in_chans, num_classes=0, global_pool="avg", fc_norm=False, class_token=False,
        drop_rate=drop_rate, proj_drop_rate=drop_rate, drop_path_rate=drop_path_rate or 0.0, **spec,
    )  # fmt: skip
