"""Batch-level mixing of clips: the BirdCLEF "mixup with union labels".

Soundscape windows hold several species at once while training clips mostly hold one; adding another clip
of the batch to a clip, and taking the union of their labels, teaches the model to report every species
present. (Weighted mixup, cutmix and SpecAugment come with the full recipe.)
"""

from __future__ import annotations

import torch

from ..errors import ParameterError

__all__ = ["sum_mix"]


def sum_mix(
    waveforms: torch.Tensor,
    targets: torch.Tensor,
    *,
    generator: torch.Generator,
    min_gain_db: float = -6.0,
    max_gain_db: float = 0.0,
    p: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """With probability ``p`` per clip, add a random other clip of the batch at a random gain; union labels.

    Args:
        waveforms: ``(batch, num_samples)``.
        targets: ``(batch, num_classes)`` in [0, 1].
        generator: the only source of randomness.

    Returns:
        New ``(waveforms, targets)`` of the same shapes (inputs are not modified).
    """
    if min_gain_db > max_gain_db:
        raise ParameterError(f"sum_mix: min_gain_db ({min_gain_db}) > max_gain_db ({max_gain_db})")
    if not 0.0 <= p <= 1.0:
        raise ParameterError(f"sum_mix: p must be in [0, 1], got {p}")
    batch = waveforms.shape[0]
    if batch < 2 or p == 0.0:
        return waveforms, targets
    device = waveforms.device
    # partner: a cyclic shift by 1..batch-1 so no clip is mixed with itself
    shift = int(torch.randint(1, batch, (1,), generator=generator))
    partner = (torch.arange(batch) + shift) % batch
    apply = torch.rand(batch, generator=generator) < p
    gain_db = min_gain_db + (max_gain_db - min_gain_db) * torch.rand(batch, generator=generator)
    gain = torch.where(apply, 10.0 ** (gain_db / 20.0), torch.zeros(batch)).to(device, waveforms.dtype)
    mixed = waveforms + gain[:, None] * waveforms[partner.to(device)]
    mixed_targets = torch.where(apply.to(device)[:, None], torch.maximum(targets, targets[partner.to(device)]), targets)
    return mixed, mixed_targets
