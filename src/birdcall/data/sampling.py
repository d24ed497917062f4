"""Class-balanced sampling: draw clips of rare species more often than their share of the data set.

Species ``c`` with ``n_c`` clips gets the weight ``n_c ** -power``: ``power=0`` is uniform sampling, ``power=1``
full inverse frequency (each species drawn about equally often in single-label data), and the default
``power=0.5`` (inverse square root) sits between them, the usual choice against long-tailed bird data because
full inverse frequency repeats the few clips of the rarest species until the model memorises them.

A multi-label clip combines the weights of its species: ``reduce="rarest"`` takes the largest (the clip is
drawn as often as its rarest species asks for), ``reduce="mean"`` their mean (a rare species heard next to
common ones counts for less). Clips without any species (no-call clips) form one more class of their own.
Sample weights are scaled to mean 1.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import is_int, is_number
from ..errors import ParameterError

__all__ = ["balanced_sampler", "class_balanced_weights"]

_REDUCTIONS = ("rarest", "mean")


def class_balanced_weights(y: np.ndarray, *, power: float = 0.5, reduce: str = "rarest") -> np.ndarray:
    """Per-sample weights for :class:`torch.utils.data.WeightedRandomSampler` (see the module docstring).

    Args:
        y: ``(n_samples, n_classes)`` multi-hot labels (0/1 or bool; soft targets count as positive where > 0).
        power: exponent of the inverse class frequency, >= 0.
        reduce: how a clip's species weights combine: ``"rarest"`` (largest weight) or ``"mean"``.

    Returns:
        ``(n_samples,)`` float64 weights with mean 1.

    Raises:
        ParameterError: malformed ``y``, negative or non-finite ``power``, or unknown ``reduce``.

    Example:
        >>> y = np.array([[1, 0], [1, 0], [1, 0], [1, 0], [0, 1]])
        >>> class_balanced_weights(y, power=1.0).round(3).tolist()
        [0.625, 0.625, 0.625, 0.625, 2.5]
    """
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[0] == 0 or y.shape[1] == 0:
        raise ParameterError(f"expected a non-empty (n_samples, n_classes) label matrix, got shape {y.shape}")
    if y.dtype != bool and (y.dtype.kind not in "iuf" or not np.isfinite(y).all() or (y < 0).any()):
        raise ParameterError("label matrix must be boolean or hold finite values >= 0")
    if not is_number(power) or not math.isfinite(power) or power < 0:
        raise ParameterError(f"power must be a finite number >= 0, got {power!r}")
    if reduce not in _REDUCTIONS:
        raise ParameterError(f"reduce must be one of {_REDUCTIONS}, got {reduce!r}")
    positive = y > 0
    unlabeled = ~positive.any(axis=1)
    positive = np.concatenate([positive, unlabeled[:, None]], axis=1)  # no-call clips: one more class
    counts = positive.sum(axis=0).astype(np.float64)
    class_weight = np.zeros_like(counts)
    present = counts > 0
    class_weight[present] = counts[present] ** -float(power)
    per_class = np.where(positive, class_weight, np.nan)
    weights = np.nanmax(per_class, axis=1) if reduce == "rarest" else np.nanmean(per_class, axis=1)
    return weights / weights.mean()


def balanced_sampler(
    y: np.ndarray,
    *,
    generator,
    power: float = 0.5,
    reduce: str = "rarest",
    num_samples: int | None = None,
):
    """A :class:`torch.utils.data.WeightedRandomSampler` drawing with :func:`class_balanced_weights`.

    Draws with replacement from ``generator``, so a run seeded the same draws the same epochs whatever the
    global torch seed. Pass it as ``DataLoader(..., sampler=sampler)`` (without ``shuffle``).

    Args:
        y: ``(n_samples, n_classes)`` multi-hot labels of the training set, in dataset order.
        generator: a seeded :class:`torch.Generator`, e.g. ``torch.Generator().manual_seed(seed)``.
        power: as :func:`class_balanced_weights`.
        reduce: as :func:`class_balanced_weights`.
        num_samples: draws per epoch; None draws ``n_samples``.

    Raises:
        ParameterError: as :func:`class_balanced_weights`, ``num_samples`` < 1, or ``generator`` is not a
            :class:`torch.Generator`.
    """
    import torch
    from torch.utils.data import WeightedRandomSampler

    if not isinstance(generator, torch.Generator):
        raise ParameterError(f"generator must be a seeded torch.Generator, got {type(generator).__name__}")
    weights = class_balanced_weights(y, power=power, reduce=reduce)
    if num_samples is None:
        num_samples = len(weights)
    if not is_int(num_samples) or num_samples < 1:
        raise ParameterError(f"num_samples must be an integer >= 1, got {num_samples!r}")
    return WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double), int(num_samples), replacement=True, generator=generator
    )
