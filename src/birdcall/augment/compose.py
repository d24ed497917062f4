"""Composition: all transforms in order (:class:`Compose`), one of them (:class:`OneOf`), some (:class:`SomeOf`).

The same classes compose waveform transforms (called as ``t(samples, sample_rate=..., rng=...)``, numpy
generator) and batch transforms (called as ``t(inputs, targets, generator=...)``, torch generator): the
keyword arguments are passed on to every child, and the composition draws its own choices from whichever
generator it was given. Children are chained: a waveform child returns the new samples, a batch child
returns ``(inputs, targets)``, and the composition returns the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validate import is_int
from ..errors import ParameterError
from .base import BaseTransform, register_transform

__all__ = ["Compose", "OneOf", "SomeOf"]


class _Choices:
    """Uniform draws from either a numpy ``rng`` or a torch ``generator`` (whichever the call received)."""

    def __init__(self, owner: str, kwargs: dict[str, Any]):
        self.rng = kwargs.get("rng")
        self.generator = kwargs.get("generator")
        if isinstance(self.rng, np.random.Generator):
            self.generator = None
            return
        import torch

        if not isinstance(self.generator, torch.Generator):
            raise ParameterError(
                f"{owner}: call with rng=numpy.random.Generator (waveforms) or generator=torch.Generator (batches)"
            )

    def random(self) -> float:
        if self.generator is None:
            return float(self.rng.random())
        import torch

        return float(torch.rand(1, generator=self.generator, device=self.generator.device))

    def integer(self, low: int, high: int) -> int:
        """Uniform in ``[low, high]``."""
        if self.generator is None:
            return int(self.rng.integers(low, high + 1))
        import torch

        return int(torch.randint(low, high + 1, (1,), generator=self.generator, device=self.generator.device))

    def subset(self, n: int, k: int) -> list[int]:
        """``k`` distinct indices of ``range(n)``, sorted."""
        if self.generator is None:
            return sorted(int(i) for i in self.rng.permutation(n)[:k])
        import torch

        return sorted(int(i) for i in torch.randperm(n, generator=self.generator, device=self.generator.device)[:k])


def _check_transforms(owner: str, transforms: Sequence[BaseTransform]) -> tuple[BaseTransform, ...]:
    if isinstance(transforms, BaseTransform) or not isinstance(transforms, Sequence):
        raise ParameterError(f"{owner}: transforms must be a list of transforms, got {type(transforms).__name__}")
    for t in transforms:
        if not isinstance(t, BaseTransform):
            raise ParameterError(f"{owner}: every item must be a birdcall transform, got {type(t).__name__}")
    return tuple(transforms)


def _run(chosen: Sequence[BaseTransform], data: tuple, kwargs: dict[str, Any]):
    for t in chosen:
        out = t(*data, **kwargs)
        data = out if isinstance(out, tuple) else (out,)
    return data if len(data) > 1 else data[0]


class _Composition(BaseTransform):
    def __init__(self, transforms: Sequence[BaseTransform], p: float = 1.0):
        super().__init__(p)
        self.transforms = _check_transforms(type(self).__name__, transforms)

    def __len__(self) -> int:
        return len(self.transforms)

    def __call__(self, *data, **kwargs):
        choices = _Choices(type(self).__name__, kwargs)
        if not data:
            raise ParameterError(f"{type(self).__name__}: nothing to transform")
        if not choices.random() < self.p:
            return data if len(data) > 1 else data[0]
        return _run(self.choose(choices), data, kwargs)

    def choose(self, choices: _Choices) -> list[BaseTransform]:
        raise NotImplementedError


@register_transform
class Compose(_Composition):
    """With probability ``p``, apply every transform in order (each with its own ``p``).

    Example:
        >>> from birdcall.augment import Compose, Gain, AddGaussianSNR
        >>> augment = Compose([Gain(min_gain_db=-6, max_gain_db=6, p=0.5), AddGaussianSNR(p=0.3)])
        >>> y = augment(np.zeros(100, np.float32), sample_rate=32000, rng=np.random.default_rng(0))
    """

    def __init__(self, transforms: Sequence[BaseTransform], p: float = 1.0):
        super().__init__(transforms, p)

    def choose(self, choices: _Choices) -> list[BaseTransform]:
        return list(self.transforms)


@register_transform
class OneOf(_Composition):
    """With probability ``p``, apply one transform, chosen at random (by ``weights``, default uniform)."""

    def __init__(self, transforms: Sequence[BaseTransform], weights: Sequence[float] | None = None, p: float = 1.0):
        super().__init__(transforms, p)
        if weights is not None:
            weights = tuple(float(w) for w in weights)
            if len(weights) != len(self.transforms) or any(not w >= 0 for w in weights) or not sum(weights) > 0:
                raise ParameterError(
                    f"OneOf: weights must be {len(self.transforms)} numbers >= 0 with a positive sum, got {weights}"
                )
        self.weights = weights
        if not self.transforms:
            raise ParameterError("OneOf: needs at least one transform")

    def choose(self, choices: _Choices) -> list[BaseTransform]:
        n = len(self.transforms)
        weights = np.ones(n) if self.weights is None else np.asarray(self.weights)
        cdf = np.cumsum(weights) / weights.sum()
        index = int(min(np.searchsorted(cdf, choices.random(), side="right"), n - 1))
        return [self.transforms[index]]


@register_transform
class SomeOf(_Composition):
    """With probability ``p``, apply ``k`` distinct transforms in list order, ``k`` uniform in ``num_transforms``.

    Args:
        num_transforms: ``k``, or ``(min_k, max_k)``; ``max_k`` None means all of them.
        transforms: the candidates.
        p: probability of applying any.
    """

    def __init__(
        self, num_transforms: int | tuple[int, int | None], transforms: Sequence[BaseTransform], p: float = 1.0
    ):
        super().__init__(transforms, p)
        n = len(self.transforms)
        if is_int(num_transforms):
            low = high = int(num_transforms)
            self.num_transforms = low
        elif isinstance(num_transforms, (tuple, list)) and len(num_transforms) == 2:
            low, high = num_transforms
            high = n if high is None else high
            self.num_transforms = (num_transforms[0], num_transforms[1])
        else:
            raise ParameterError(f"SomeOf: num_transforms must be an int or (min, max), got {num_transforms!r}")
        if (
            not all(is_int(v) for v in (low, high))
            or not 0 <= low <= high <= n
        ):
            raise ParameterError(f"SomeOf: need 0 <= min ({low}) <= max ({high}) <= number of transforms ({n})")
        self._low, self._high = int(low), int(high)

    def choose(self, choices: _Choices) -> list[BaseTransform]:
        k = choices.integer(self._low, self._high)
        return [self.transforms[i] for i in choices.subset(len(self.transforms), k)]
