"""Mixup: convex combination of each example with a partner from the batch, weights from Beta(alpha, alpha)."""

from __future__ import annotations

import torch

from ..._validate import is_number
from ...errors import ParameterError
from ..base import BatchTransform, check_choice, draw_beta, draw_partners, register_transform

__all__ = ["LABEL_MODES", "Mixup"]

LABEL_MODES = ("weighted", "union")


def mix_labels(
    targets: torch.Tensor, partner_targets: torch.Tensor, own_weight: torch.Tensor, mode: str, mixed: torch.Tensor
) -> torch.Tensor:
    """``weighted``: ``w * own + (1 - w) * partner``; ``union``: ``max(own, partner)`` where ``mixed``, else own."""
    if mode == "weighted":
        w = own_weight.to(targets.device, targets.dtype)[:, None]
        return w * targets + (1.0 - w) * partner_targets
    return torch.where(mixed.to(targets.device)[:, None], torch.maximum(targets, partner_targets), targets)


@register_transform
class Mixup(BatchTransform):
    """With probability ``p`` per example: ``x_i <- lam_i x_i + (1 - lam_i) x_j`` for a partner ``j != i`` of the
    batch, ``lam_i ~ Beta(alpha, alpha)``.

    Works on any ``(B, ...)`` inputs (waveforms or spectrograms). Labels are mixed as the same weighted
    average (``label_mode="weighted"``, the original mixup) or as the union ``max(y_i, y_j)``
    (``"union"``, the BirdCLEF choice: both birds are audible, so both are present).
    """

    requires_targets = True

    def __init__(self, alpha: float = 0.4, label_mode: str = "weighted", p: float = 0.5):
        super().__init__(p)
        if not is_number(alpha) or not alpha > 0:
            raise ParameterError(f"Mixup: alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.label_mode = check_choice("Mixup", "label_mode", label_mode, LABEL_MODES)

    def randomize_parameters(self, inputs: torch.Tensor, *, applied: torch.Tensor, generator: torch.Generator) -> dict:
        batch = inputs.shape[0]
        partner = draw_partners(batch, generator)
        lam = draw_beta(self.alpha, batch, generator)
        applied = applied & (batch >= 2)
        return {"partner": partner, "lam": torch.where(applied, lam, torch.ones_like(lam)), "applied": applied}

    def apply(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        *,
        partner: torch.Tensor,
        lam: torch.Tensor,
        applied: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        partner = partner.to(inputs.device)
        w = lam.to(inputs.device, inputs.dtype).reshape((-1,) + (1,) * (inputs.ndim - 1))
        mixed = w * inputs + (1.0 - w) * inputs[partner]
        return mixed, mix_labels(targets, targets[partner.to(targets.device)], lam, self.label_mode, applied)
