"""Optimiser and learning-rate schedule factories.

:func:`build_optimizer` makes AdamW, Adam or SGD, by default without weight decay on biases and
normalisation parameters (timm's ``param_groups_weight_decay`` rule). :func:`build_scheduler` makes a linear
warm-up followed by a cosine decay, as a ``torch.optim.lr_scheduler.LambdaLR`` stepped once per optimiser
step. Its multiplier is a :class:`WarmupCosine` object rather than a closure, so ``scheduler.state_dict()``
carries the schedule itself and a resumed run continues exactly (and loads with ``weights_only=True``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ..config import check_fields
from ..errors import ParameterError

__all__ = [
    "OPTIMIZERS",
    "OptimConfig",
    "WarmupCosine",
    "build_optimizer",
    "build_scheduler",
    "model_param_groups",
    "optimizer_from_config",
    "param_groups_weight_decay",
    "scheduler_from_config",
]

OPTIMIZERS = ("adamw", "adam", "sgd")

# Parameters of these modules are never decayed (their weights are also 1-D, which the ndim rule catches,
# but a custom norm may hold a 2-D parameter).
_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule: ``TrainConfig.optim`` (``optim.lr=...`` on the command line).

    Attributes:
        optimizer: ``"adamw"``, ``"adam"`` or ``"sgd"``.
        lr: Peak learning rate, ``> 0``.
        weight_decay: ``>= 0``; decoupled for AdamW, L2 added to the gradient for Adam and SGD.
        momentum: SGD momentum in ``[0, 1)``; unused by Adam(W).
        no_decay_bias_norm: No weight decay on biases, normalisation and other 1-D parameters.
        warmup_epochs: Linear warm-up length in epochs (fractions allowed), ``>= 0``.
        min_lr_ratio: The cosine ends at ``lr * min_lr_ratio``, in ``[0, 1]``.
    """

    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-2
    momentum: float = 0.9
    no_decay_bias_norm: bool = True
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self)  # types and finite numbers
        _check_optimizer(self.optimizer, self.lr, self.weight_decay, self.momentum)
        if not self.warmup_epochs >= 0:
            raise ParameterError(f"OptimConfig: warmup_epochs must be >= 0, got {self.warmup_epochs}")
        _check_min_lr_ratio(self.min_lr_ratio)


def param_groups_weight_decay(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into a decayed group and a ``weight_decay=0`` group.

    A parameter is not decayed when it is 1-D or a scalar (biases, norm scales and shifts, learnable
    front-end constants), its name ends in ``bias``, it belongs to a normalisation layer, or a submodule
    lists it in ``no_weight_decay()`` (the timm convention, e.g. ViT ``pos_embed``). Frozen parameters
    (``requires_grad=False``) are left out.

    Args:
        model: The model.
        weight_decay: Decay of the first group.

    Returns:
        Up to two param groups, ``[{"params": decay, "weight_decay": weight_decay}, {"params": no_decay,
        "weight_decay": 0.0}]``; an empty group is dropped.
    """
    skip: set[str] = set()
    for prefix, module in model.named_modules():
        if isinstance(module, _NORM_TYPES):
            skip.update(f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters(recurse=False))
        listed = getattr(module, "no_weight_decay", None)
        if callable(listed):
            skip.update(f"{prefix}.{n}" if prefix else n for n in listed())
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith("bias") or name in skip:
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def model_param_groups(model: nn.Module, weight_decay: float, *, no_decay_bias_norm: bool = True) -> list[dict]:
    """The param groups :func:`build_optimizer` makes for a model: :func:`param_groups_weight_decay` with
    ``no_decay_bias_norm`` and a positive ``weight_decay``, else one group of every trainable parameter."""
    if no_decay_bias_norm and weight_decay > 0:
        return param_groups_weight_decay(model, weight_decay)
    return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]


def build_optimizer(
    params_or_model: nn.Module | Iterable[torch.Tensor] | Iterable[dict],
    *,
    name: str = "adamw",
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    no_decay_bias_norm: bool = True,
) -> torch.optim.Optimizer:
    """Build an optimiser by name.

    Args:
        params_or_model: A model, an iterable of parameters, or ready-made param groups (dicts, passed
            through as given). With a model and ``no_decay_bias_norm``, the groups of
            :func:`param_groups_weight_decay`; with bare parameters the rule can only use ``ndim <= 1``.
        name: ``"adamw"``, ``"adam"`` or ``"sgd"``.
        lr: Learning rate, ``> 0``.
        weight_decay: ``>= 0``; decoupled for AdamW, L2 added to the gradient for Adam and SGD.
        momentum: SGD momentum in ``[0, 1)``; unused by Adam(W).
        no_decay_bias_norm: Exclude biases and normalisation parameters from weight decay.

    Returns:
        The optimiser. Every param group has an explicit ``weight_decay``.

    Raises:
        ParameterError: Unknown name, a value out of range, or no trainable parameters.
    """
    _check_optimizer(name, lr, weight_decay, momentum)
    if isinstance(params_or_model, nn.Module):
        groups = model_param_groups(params_or_model, weight_decay, no_decay_bias_norm=no_decay_bias_norm)
    else:
        items = list(params_or_model)
        if items and all(isinstance(g, dict) for g in items):
            groups = items
        elif no_decay_bias_norm and weight_decay > 0:
            decay = [p for p in items if p.requires_grad and p.ndim > 1]
            no_decay = [p for p in items if p.requires_grad and p.ndim <= 1]
            groups = [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
        else:
            groups = [{"params": [p for p in items if p.requires_grad], "weight_decay": weight_decay}]
    if not any(len(g["params"]) for g in groups):
        raise ParameterError("build_optimizer: no trainable parameters")
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


class WarmupCosine:
    """Learning-rate multiplier: linear warm-up from 0, then cosine from 1 down to ``min_lr_ratio``.

    With ``W = warmup_steps`` and ``T = total_steps``, the multiplier at step ``s`` is
    ``s / W`` for ``s < W`` (so step 0 has lr 0, as in ``transformers.get_cosine_schedule_with_warmup``), then
    ``r + (1 - r) * (1 + cos(pi * (s - W) / (T - W))) / 2`` for ``W <= s <= T`` (1 at ``s = W``, ``r`` at
    ``s = T``), and ``r`` after ``T``. A plain object (not a closure) so ``LambdaLR.state_dict`` saves its
    attributes.

    Args:
        warmup_steps: ``W >= 0``.
        total_steps: ``T >= max(W, 1)``.
        min_lr_ratio: ``r`` in ``[0, 1]``.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0):
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr_ratio = float(min_lr_ratio)

    def __call__(self, step: int) -> float:
        warmup, total, floor = self.warmup_steps, self.total_steps, self.min_lr_ratio
        if step < warmup:
            return step / warmup
        if step >= total:
            return floor
        progress = (step - warmup) / (total - warmup)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def __repr__(self) -> str:
        return f"WarmupCosine(warmup_steps={self.warmup_steps}, total_steps={self.total_steps}, min_lr_ratio={self.min_lr_ratio})"


def build_scheduler(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine decay (:class:`WarmupCosine`), stepped once per optimiser step.

    Creating it sets every group's lr to the step-0 value (0 when ``warmup_steps > 0``); call
    ``scheduler.step()`` after each ``optimizer.step()``. ``load_state_dict`` restores the step count and the
    schedule's own ``warmup_steps``/``total_steps``/``min_lr_ratio``, so a resumed run follows the saved
    schedule exactly.

    Args:
        optimizer: The optimiser; each group's ``lr`` at creation is its peak.
        warmup_steps: Linear warm-up steps, ``0 <= warmup_steps <= total_steps``.
        total_steps: Steps until the lr reaches ``lr * min_lr_ratio``, ``>= 1``.
        min_lr_ratio: Final lr as a fraction of the peak, in ``[0, 1]``.

    Returns:
        A ``LambdaLR``.

    Raises:
        ParameterError: Non-integer steps, ``warmup_steps > total_steps``, or ``min_lr_ratio`` out of range.
    """
    for key, value in (("warmup_steps", warmup_steps), ("total_steps", total_steps)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise ParameterError(f"build_scheduler: {key} must be an int, got {value!r}")
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ParameterError(f"build_scheduler: need 0 <= warmup_steps <= total_steps and total_steps >= 1, got {warmup_steps}, {total_steps}")
    _check_min_lr_ratio(min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(int(warmup_steps), int(total_steps), min_lr_ratio))


def optimizer_from_config(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """:func:`build_optimizer` with the values of ``config``."""
    return build_optimizer(
        model,
        name=config.optimizer,
        lr=config.lr,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        no_decay_bias_norm=config.no_decay_bias_norm,
    )


def scheduler_from_config(
    optimizer: torch.optim.Optimizer, config: OptimConfig, *, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`build_scheduler` over ``epochs * steps_per_epoch`` steps.

    The warm-up is ``round(warmup_epochs * steps_per_epoch)`` steps, capped at the total.

    Args:
        optimizer: The optimiser.
        config: The optimiser config (``warmup_epochs``, ``min_lr_ratio``).
        steps_per_epoch: Optimiser steps per epoch (``len(train_loader)``), ``>= 1``.
        epochs: Number of epochs, ``>= 1``.

    Returns:
        A ``LambdaLR``.

    Raises:
        ParameterError: ``steps_per_epoch`` or ``epochs`` below 1.
    """
    if steps_per_epoch < 1 or epochs < 1:
        raise ParameterError(f"scheduler_from_config: steps_per_epoch and epochs must be >= 1, got {steps_per_epoch}, {epochs}")
    total = int(epochs) * int(steps_per_epoch)
    warmup = min(round(config.warmup_epochs * steps_per_epoch), total)
    return build_scheduler(optimizer, warmup_steps=warmup, total_steps=total, min_lr_ratio=config.min_lr_ratio)


def _check_optimizer(name: str, lr: float, weight_decay: float, momentum: float) -> None:
    if name not in OPTIMIZERS:
        raise ParameterError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    if not lr > 0 or not math.isfinite(lr):
        raise ParameterError(f"lr must be > 0, got {lr}")
    if not weight_decay >= 0:
        raise ParameterError(f"weight_decay must be >= 0, got {weight_decay}")
    if not 0.0 <= momentum < 1.0:
        raise ParameterError(f"momentum must be in [0, 1), got {momentum}")


def _check_min_lr_ratio(min_lr_ratio: float) -> None:
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ParameterError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
