"""CutMix: paste a segment (waveforms) or a time-frequency box (spectrograms) of a partner example."""

from __future__ import annotations

import torch

from ..._validate import is_number
from ...errors import ParameterError
from ..base import BatchTransform, check_choice, draw_beta, draw_partners, register_transform
from .mixup import LABEL_MODES, mix_labels

__all__ = ["CutMix"]


def _span_mask(length: int, start: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """``(B, length)`` bool: True on ``[start, start + width)`` per example."""
    index = torch.arange(length)
    return (index >= start[:, None]) & (index < (start + width)[:, None])


@register_transform
class CutMix(BatchTransform):
    """With probability ``p`` per example, replace a region by the same region of a partner ``j != i``.

    The last axis is time. On ``(B, N)`` waveforms the region is a time segment of ``round((1 - lam) N)``
    samples; on ``(B, ..., F, T)`` spectrograms it is a box of ``round(sqrt(1 - lam) F)`` bins by
    ``round(sqrt(1 - lam) T)`` frames across all channels (``cut_frequency=True``), or a full-height time
    segment (``False``). ``lam ~ Beta(alpha, alpha)``; the position is uniform, with the region inside the input.

    Labels: ``weighted`` by the pasted fraction ``a`` of the area, ``(1 - a) y_i + a y_j``, or ``union``
    ``max(y_i, y_j)`` when anything was pasted.
    """

    requires_targets = True

    def __init__(self, alpha: float = 1.0, label_mode: str = "weighted", cut_frequency: bool = True, p: float = 0.5):
        super().__init__(p)
        if not is_number(alpha) or not alpha > 0:
            raise ParameterError(f"CutMix: alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.label_mode = check_choice("CutMix", "label_mode", label_mode, LABEL_MODES)
        self.cut_frequency = check_choice("CutMix", "cut_frequency", cut_frequency, (True, False))

    def randomize_parameters(self, inputs: torch.Tensor, *, applied: torch.Tensor, generator: torch.Generator) -> dict:
        batch, length = inputs.shape[0], inputs.shape[-1]
        height = inputs.shape[-2] if inputs.ndim >= 3 else 1
        partner = draw_partners(batch, generator)
        cut = 1.0 - draw_beta(self.alpha, batch, generator)  # area fraction to paste
        applied = applied & (batch >= 2)
        box = self.cut_frequency and inputs.ndim >= 3
        side = cut.sqrt() if box else cut
        time_width = torch.where(applied, (side * length).round().long(), 0)
        freq_width = torch.where(applied, (side * height).round().long(), 0) if box else torch.where(applied, height, 0)
        u = torch.rand(2, batch, generator=generator, device=generator.device).cpu().double()
        time_start = (u[0] * (length - time_width + 1)).floor().long().clamp(max=length - time_width)
        freq_start = (u[1] * (height - freq_width + 1)).floor().long().clamp(max=height - freq_width)
        return {
            "partner": partner,
            "time_start": time_start,
            "time_width": time_width,
            "freq_start": freq_start,
            "freq_width": freq_width,
        }

    def apply(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        *,
        partner: torch.Tensor,
        time_start: torch.Tensor,
        time_width: torch.Tensor,
        freq_start: torch.Tensor,
        freq_width: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length = inputs.shape[0], inputs.shape[-1]
        region = _span_mask(length, time_start, time_width)  # (B, T)
        height = 1
        if inputs.ndim >= 3:
            height = inputs.shape[-2]
            region = _span_mask(height, freq_start, freq_width)[:, :, None] & region[:, None, :]  # (B, F, T)
        region = region.reshape((batch,) + (1,) * (inputs.ndim - region.ndim) + region.shape[1:]).to(inputs.device)
        out = torch.where(region, inputs[partner.to(inputs.device)], inputs)
        area = (time_width * freq_width).double() / (length * height)
        y = mix_labels(targets, targets[partner.to(targets.device)], 1.0 - area, self.label_mode, area > 0)
        return out, y
