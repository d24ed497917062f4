"""`AudioViT`: a timm ``VisionTransformer`` on mel x time patches, the backbone of the ``vit_*`` presets.

Built by :func:`birdcall.models.backbones.create_backbone` (``VIT_BACKBONES``), which imports this module only
when a transformer is wanted: it imports timm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from .._compat import import_timm
from ..errors import ParameterError

import_timm()  # the torchvision workaround, before timm's submodules
from timm.layers import resample_abs_pos_embed, resample_patch_embed
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

    ``adapt_pretrained`` fits an image ViT's weights (timm's DeiT/ViT files, e.g. ImageNet weights downloaded
    beforehand) to this shape for ``TrainConfig.init_from``, as AST does with DeiT.
    """

    # Tokens an image ViT's positional embedding may carry before the patches (DeiT: class, and distillation).
    PREFIX_TOKENS = ("cls_token", "dist_token", "reg_token")

    def adapt_pretrained(self, tensors: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
        """An image ViT's state dict with its positional embedding and patch kernel fitted to this model.

        - ``pos_embed`` of a square ``g x g`` patch grid (after its class/distillation tokens, which this model
          does not have and which are dropped) is resampled to this model's ``(F', T')`` grid with timm's
          ``resample_abs_pos_embed`` (bicubic), so a DeiT-tiny's 14 x 14 ImageNet grid becomes 8 x 19 mel x time.
        - a ``patch_embed.proj.weight`` of another patch size is resampled with timm's ``resample_patch_embed``
          (FlexiViT's pseudo-inverse); its input channels are left to the caller (``adapt_input_conv``).

        Every other tensor is returned as it is. Returns the tensors and one note per change, e.g.
        ``"pos_embed 14x14->8x19 (1 prefix token dropped)"``. A positional embedding that is not a square grid
        plus prefix tokens, or of another width, is returned unchanged (the caller skips it by shape).
        """
        out = dict(tensors)
        notes: list[str] = []
        grid = tuple(int(g) for g in self.patch_embed.grid_size)
        pos = tensors.get("pos_embed")
        if pos is not None and pos.ndim == 3 and pos.shape[-1] == self.pos_embed.shape[-1] and tuple(pos.shape) != tuple(self.pos_embed.shape):
            prefix = sum(tensors[name].shape[1] for name in self.PREFIX_TOKENS if name in tensors and tensors[name].ndim == 3)
            side = math.isqrt(max(pos.shape[1] - prefix, 0))
            if prefix < pos.shape[1] and side * side == pos.shape[1] - prefix:
                resampled = resample_abs_pos_embed(pos[:, prefix:].float(), new_size=list(grid), old_size=[side, side], num_prefix_tokens=0)
                out["pos_embed"] = resampled.to(pos.dtype).contiguous()
                dropped = f" ({prefix} prefix token{'s' if prefix != 1 else ''} dropped)" if prefix else ""
                notes.append(f"pos_embed {side}x{side}->{grid[0]}x{grid[1]}{dropped}")
        kernel = tensors.get("patch_embed.proj.weight")
        want = self.patch_embed.proj.weight.shape
        if kernel is not None and kernel.ndim == 4 and kernel.shape[0] == want[0] and tuple(kernel.shape[2:]) != tuple(want[2:]):
            out["patch_embed.proj.weight"] = resample_patch_embed(kernel.float(), new_size=list(want[2:])).to(kernel.dtype).contiguous()
            notes.append(f"patch_embed.proj.weight {kernel.shape[2]}x{kernel.shape[3]}->{want[2]}x{want[3]}")
        return out, tuple(notes)

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
