"""Exponential moving average (EMA) of a model's weights, for evaluation and the saved model.

After each optimiser step, ``ema.update(model)`` sets every floating-point parameter
``e <- d * e + (1 - d) * p``. **Buffers are copied, not averaged**: BatchNorm running statistics are
already running averages, and averaging them again would mix statistics of weights the EMA does not hold;
copying is what timm's ``ModelEmaV3`` does by default. Integer parameters are copied too.

With ``warmup=True`` the decay of update ``k`` (0-based, counted over the EMA's life and restored on
resume) is ``min(decay, (1 + k) / (10 + k))`` (the ``num_updates`` rule of TensorFlow's
``ExponentialMovingAverage``), so early updates follow the model closely and the random initial weights
are forgotten quickly; this matters for short runs, where ``1 / (1 - decay)`` may exceed the step count.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import check_fields
from ..errors import ParameterError

__all__ = ["EmaConfig", "ModelEma", "ema_from_config"]


@dataclass(frozen=True)
class EmaConfig:
    """EMA of weights. Field names are those of ``TrainConfig``'s ``ema_decay`` and ``ema_warmup``.

    Attributes:
        ema_decay: Decay in ``[0, 1)``; 0 disables the EMA (:func:`ema_from_config` returns None).
        ema_warmup: Use ``min(decay, (1 + k) / (10 + k))`` at update ``k``.
    """

    ema_decay: float = 0.0
    ema_warmup: bool = True

    def __post_init__(self) -> None:
        check_fields(self)  # types and finite numbers
        _check_decay(self.ema_decay, allow_zero=True)


class ModelEma:
    """EMA copy of a model's weights.

    ``module`` is a deep copy of the model in eval mode with ``requires_grad=False`` everywhere: use it
    for validation and saving; a backward pass through the training model never reaches it, and it is
    not part of any optimiser. Keep it in eval mode (dropout off, BatchNorm using the copied running stats).

    Args:
        model: The model to track; its current weights initialise the average.
        decay: Decay ``d`` in ``(0, 1)``.
        warmup: Use ``min(decay, (1 + k) / (10 + k))`` at update ``k``.
        device: Keep the average on this device (e.g. ``"cpu"`` to save accelerator memory); None keeps the
            model's device.

    Example:
        >>> ema = ModelEma(model, decay=0.999)
        >>> for batch in loader:
        ...     train_step(model, batch)
        ...     ema.update(model)
        >>> metrics = evaluate(ema.module, val_loader)
    """

    config_type = EmaConfig

    def __init__(self, model: nn.Module, *, decay: float, warmup: bool = True, device: torch.device | str | None = None):
        _check_decay(decay, allow_zero=False)
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.device = torch.device(device) if device is not None else None
        self.num_updates = 0
        self.module = copy.deepcopy(model)
        self.module.eval()
        self.module.requires_grad_(False)
        if self.device is not None:
            self.module.to(self.device)

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        if self.warmup:
            return min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s weights and copy its buffers; call after ``optimizer.step()``.

        Args:
            model: The trained model, with the same parameter and buffer names as the tracked one.

        Raises:
            ParameterError: ``model`` has different parameter or buffer names.
        """
        decay = self.current_decay()
        ema_params, params = dict(self.module.named_parameters()), dict(model.named_parameters())
        ema_buffers, buffers = dict(self.module.named_buffers()), dict(model.named_buffers())
        if ema_params.keys() != params.keys() or ema_buffers.keys() != buffers.keys():
            raise ParameterError("ModelEma.update: the model's parameters or buffers differ from the tracked model's")
        for name, ema_p in ema_params.items():
            p = params[name].detach().to(ema_p.device)
            if ema_p.is_floating_point():
                ema_p.lerp_(p.to(ema_p.dtype), 1.0 - decay)
            else:
                ema_p.copy_(p)
        for name, ema_b in ema_buffers.items():
            ema_b.copy_(buffers[name].detach().to(ema_b.device))
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        """``{"module": <EMA module state_dict>, "num_updates": int}``: tensors and an int, so it saves
        with ``torch.save`` and loads with ``weights_only=True``."""
        return {"module": self.module.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the average and the update count saved by :meth:`state_dict` (decay and warm-up come
        from the constructor).

        Raises:
            ParameterError: ``state`` lacks ``module`` or ``num_updates``.
        """
        if not isinstance(state, dict) or "module" not in state or "num_updates" not in state:
            raise ParameterError("ModelEma.load_state_dict: expected a dict with 'module' and 'num_updates'")
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])

    def __repr__(self) -> str:
        return f"ModelEma(decay={self.decay}, warmup={self.warmup}, num_updates={self.num_updates})"


def ema_from_config(model: nn.Module, config: EmaConfig, *, device: torch.device | str | None = None) -> ModelEma | None:
    """A :class:`ModelEma` of ``model``, or None when ``config.ema_decay`` is 0.

    Args:
        model: The model to track.
        config: The EMA config.
        device: Device of the average; None keeps the model's.

    Returns:
        The EMA, or None.
    """
    if config.ema_decay == 0:
        return None
    return ModelEma(model, decay=config.ema_decay, warmup=config.ema_warmup, device=device)


def _check_decay(decay: float, *, allow_zero: bool) -> None:
    low_ok = decay >= 0 if allow_zero else decay > 0
    if not (low_ok and decay < 1):
        raise ParameterError(f"ema decay must be in {'[0' if allow_zero else '(0'}, 1), got {decay}")
