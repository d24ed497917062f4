"""`AudioViT`: a timm ``VisionTransformer`` on mel x time patches, the backbone of the ``vit_*`` presets.

Built by :func:`birdcall.models.backbones.create_backbone` (``VIT_BACKBONES``), which imports this module only
when a transformer is wanted: it imports timm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._compat import import_timm
from ..errors import ParameterError

import_timm()  # the torchvision workaround, before timm's submodules
from timm.models.vision_transformer import VisionTransformer

__all__ = ["AudioViT"]


class AudioViT(VisionTransformer):
    """timm ``VisionTransformer`` on a ``(B, in_chans, n_mels, n_frames)`` spectrogram, without class token.

    Construct it as ``VisionTransformer`` with ``img_size=(n_mels, n_frames)`` of a training window,
    ``class_token=False`` and ``global_pool="avg"``. Patches are non-overlapping ``patch x patch`` squares; a
    trailing part shorter than a patch is dropped (as the patch convolution does). The learned positional
    embedding has one entry per patch of ``grid_size = (n_mels // patch, n_frames // patch)``. A window of
    another length gets that embedding linearly resampled along time (the frequency grid must match), so shorter
    and longer windows run as they do through a CNN; at the training length it is used as is, and the exported
    graph has no resampling.

    ``forward_features`` returns the patch tokens after the final norm as a map ``(B, embed_dim, F', T')``
    (frequency, then time), like a CNN backbone's: the clip head averages all tokens, the SED head averages them
    over frequency into ``T'`` frames.
    """

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Spectrogram ``(B, in_chans, n_mels, n_frames)`` -> token map ``(B, embed_dim, F', T')``.

        Raises:
            ParameterError: the input has another number of frequency patches than the training window.
        """
        x = self.patch_embed.proj(x)  # (B, D, F', T')
        batch, dim, n_freq, n_time = x.shape
        x = self.patch_embed.norm(x.flatten(2).transpose(1, 2))
        x = self.pos_drop(x + self._audio_pos_embed(n_freq, n_time))
        x = self.norm(self.blocks(self.norm_pre(self.patch_drop(x))))
        return x.transpose(1, 2).reshape(batch, dim, n_freq, n_time)

    def _audio_pos_embed(self, n_freq: int, n_time: int) -> torch.Tensor:
        grid_freq, grid_time = self.patch_embed.grid_size
        if n_freq != grid_freq:
            raise ParameterError(f"AudioViT: input has {n_freq} frequency patches, the model was built for {grid_freq} (n_mels must match)")
        if n_time == grid_time:
            return self.pos_embed
        pos = self.pos_embed.reshape(1, grid_freq, grid_time, -1).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(grid_freq, n_time), mode="bilinear", align_corners=False)
        return pos.flatten(2).transpose(1, 2)
