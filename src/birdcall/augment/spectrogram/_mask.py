"""SpecAugment masks along one axis, shared by :class:`TimeMask` (last) and :class:`FrequencyMask` (second last)."""

from __future__ import annotations

import torch

from ..._validate import is_number
from ...errors import ParameterError
from ..base import BatchTransform, check_count

__all__ = ["AxisMask"]


class AxisMask(BatchTransform):
    axis: int = -1
    unit: str = "frames"

    def __init__(
        self, min_width: int = 0, max_width: int = 10, num_masks: int = 1, fill: float | str = 0.0, p: float = 1.0
    ):
        super().__init__(p)
        name = type(self).__name__
        self.min_width = check_count(name, "min_width", min_width)
        self.max_width = check_count(name, "max_width", max_width)
        if self.min_width > self.max_width:
            raise ParameterError(f"{name}: min_width ({min_width}) > max_width ({max_width})")
        self.num_masks = check_count(name, "num_masks", num_masks)
        if fill != "mean" and not is_number(fill):
            raise ParameterError(f"{name}: fill must be a number or 'mean', got {fill!r}")
        self.fill = fill if fill == "mean" else float(fill)

    def randomize_parameters(self, inputs: torch.Tensor, *, applied: torch.Tensor, generator: torch.Generator) -> dict:
        if inputs.ndim < -self.axis + 1:
            raise ParameterError(
                f"{type(self).__name__}: inputs need at least {-self.axis + 1} dims, got {tuple(inputs.shape)}"
            )
        batch, length = inputs.shape[0], inputs.shape[self.axis]
        u = torch.rand(2, batch, self.num_masks, generator=generator, device=generator.device).cpu().double()
        widths = (
            (self.min_width + u[0] * (self.max_width - self.min_width + 1))
            .floor()
            .long()
            .clamp(max=min(self.max_width, length))
        )
        widths = torch.where(applied[:, None], widths, 0)
        starts = (u[1] * (length - widths + 1)).floor().long().clamp(max=length - widths)
        return {"starts": starts, "widths": widths}

    def mask(self, inputs: torch.Tensor, starts: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        """Bool mask broadcastable to ``inputs``: True on the masked positions of the axis."""
        length = inputs.shape[self.axis]
        index = torch.arange(length)
        hit = ((index >= starts[..., None]) & (index < (starts + widths)[..., None])).any(dim=1)  # (B, L)
        shape = [inputs.shape[0]] + [1] * (inputs.ndim - 1)
        shape[self.axis] = length
        return hit.reshape(shape).to(inputs.device)

    def apply(self, inputs: torch.Tensor, targets, *, starts: torch.Tensor, widths: torch.Tensor):
        mask = self.mask(inputs, starts, widths)
        if self.fill == "mean":
            fill = inputs.mean(dim=tuple(range(1, inputs.ndim)), keepdim=True)
        else:
            fill = torch.tensor(self.fill, dtype=inputs.dtype, device=inputs.device)
        return torch.where(mask, fill, inputs), targets
