"""Base classes of every augmentation: argument checks, ``repr``/``to_dict`` from the init args, explicit randomness.

Two kinds of transform share :class:`BaseTransform`:

* :class:`WaveformTransform`: one clip, numpy. ``t(samples, *, sample_rate, rng)`` with ``samples``
  ``(num_samples,)`` float32 and ``rng`` a :class:`numpy.random.Generator`; returns ``(num_samples,)`` float32.
  ``p`` is the probability that the transform applies to the clip.
* :class:`BatchTransform`: a batch, torch. ``t(inputs, targets, *, generator)`` with ``inputs``
  ``(B, N)`` waveforms or ``(B, C, F, T)`` spectrograms, ``targets`` ``(B, K)`` (or None for transforms that
  leave labels alone) and ``generator`` a :class:`torch.Generator`; returns new ``(inputs, targets)``.
  ``p`` is the probability per example.

Every call draws its parameters first (``randomize_parameters``, from the given generator only) and then
applies them (``apply``, deterministic given the parameters), so the same generator state always gives the
same output, whatever the global ``random``/``np.random``/``torch`` state and whichever worker runs it.
Transforms keep no per-call state, so one instance can be shared between threads.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

from .._validate import check_choice as _check_choice
from .._validate import check_int, is_int, is_number
from ..errors import ParameterError
from ..registry import Registry

__all__ = [
    "TRANSFORMS",
    "BaseTransform",
    "BatchTransform",
    "WaveformTransform",
    "mix_at_snr",
    "register_transform",
    "transform_from_dict",
]

TRANSFORMS: Registry[type] = Registry("transform")


def register_transform(cls: type) -> type:
    """Class decorator: make ``cls`` known to :func:`transform_from_dict` under its class name."""
    TRANSFORMS.register(cls, name=cls.__name__)
    return cls


def transform_from_dict(data: Mapping[str, Any]) -> BaseTransform:
    """Rebuild a transform (or a whole :class:`~birdcall.augment.Compose`) from :meth:`BaseTransform.to_dict`.

    Raises:
        ParameterError: no ``name`` key, an unknown name, or arguments the class does not take.
    """
    if not isinstance(data, Mapping) or "name" not in data:
        raise ParameterError(f"transform_from_dict: expected a mapping with a 'name' key, got {data!r}")
    cls = TRANSFORMS.get(data["name"])
    kwargs = {key: _from_plain(value) for key, value in data.items() if key != "name"}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ParameterError(f"transform_from_dict: {data['name']}: {err}") from None


def _from_plain(value: Any) -> Any:
    if isinstance(value, Mapping) and "name" in value:
        return transform_from_dict(value)
    if isinstance(value, list):
        return tuple(_from_plain(v) for v in value)
    return value


def _to_plain(value: Any) -> Any:
    """JSON/YAML-friendly form of an init arg: tuples become lists, paths strings, transforms dicts."""
    if isinstance(value, BaseTransform):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_probability(owner: str, p: float, name: str = "p") -> float:
    if not is_number(p) or not 0.0 <= p <= 1.0:
        raise ParameterError(f"{owner}: {name} must be a number in [0, 1], got {p!r}")
    return float(p)


def check_range(
    owner: str, name: str, low: float, high: float, *, lowest: float = -math.inf, highest: float = math.inf
) -> tuple[float, float]:
    """Check ``lowest <= min_<name> <= max_<name> <= highest`` (finite numbers); return them as floats."""
    for which, value in (("min", low), ("max", high)):
        if not is_number(value) or not math.isfinite(value):
            raise ParameterError(f"{owner}: {which}_{name} must be a finite number, got {value!r}")
    if low > high:
        raise ParameterError(f"{owner}: min_{name} ({low}) > max_{name} ({high})")
    if low < lowest or high > highest:
        raise ParameterError(f"{owner}: {name} range [{low}, {high}] must lie within [{lowest}, {highest}]")
    return float(low), float(high)


def check_choice(owner: str, name: str, value: Any, choices: tuple) -> Any:
    return _check_choice(name, value, choices, owner=owner)


def check_count(owner: str, name: str, value: Any, *, minimum: int = 0) -> int:
    if not is_int(value) or value < minimum:
        raise ParameterError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def mix_at_snr(samples: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``samples + g * noise`` with ``g`` such that ``rms(samples) / rms(g * noise)`` is ``snr_db`` in dB.

    A silent signal or silent noise leaves ``samples`` unchanged (the ratio is undefined).

    Returns:
        ``(num_samples,)`` float32.
    """
    signal_rms, noise_rms = rms(samples), rms(noise)
    if signal_rms == 0.0 or noise_rms == 0.0:
        return samples
    gain = signal_rms / noise_rms / 10.0 ** (snr_db / 20.0)
    return (samples + gain * noise.astype(np.float64)).astype(np.float32)


def call_audiomentations(transform: Any, samples: np.ndarray, sample_rate: int, **parameters: Any) -> np.ndarray:
    """Run an audiomentations transform's ``apply`` with parameters *we* drew.

    audiomentations draws its parameters from the global ``random`` module in ``randomize_parameters``;
    skipping that method and setting ``parameters`` ourselves leaves only its DSP, which is deterministic
    for the transforms we wrap (Gain, PitchShift, Shift). A shallow copy keeps the shared instance free of
    per-call state.
    """
    clone = copy.copy(transform)
    clone.parameters = {"should_apply": True, **parameters}
    return clone.apply(samples, sample_rate)


class BaseTransform:
    """Probability ``p``, ``repr``, ``to_dict`` and equality, all derived from the ``__init__`` arguments.

    Subclasses store every ``__init__`` argument under an attribute of the same name.
    """

    def __init__(self, p: float = 0.5):
        self.p = check_probability(type(self).__name__, p)

    def init_args(self) -> dict[str, Any]:
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return {name: getattr(self, name) for name in names}

    def to_dict(self) -> dict[str, Any]:
        """``{"name": class name, **init args}`` in plain (YAML/JSON) types; see :func:`transform_from_dict`."""
        return {"name": type(self).__name__, **{k: _to_plain(v) for k, v in self.init_args().items()}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.init_args().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


class WaveformTransform(BaseTransform):
    """A transform of one mono clip, randomised by a :class:`numpy.random.Generator`."""

    def __call__(self, samples: np.ndarray, *, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """Apply with probability ``p``.

        Args:
            samples: ``(num_samples,)``; converted to float32.
            sample_rate: Hz.
            rng: the only source of randomness.

        Returns:
            ``(num_samples,)`` float32: a new array when applied, else ``samples`` itself (as float32).

        Raises:
            ParameterError: not a 1-D waveform, bad ``sample_rate`` or ``rng``.
        """
        name = type(self).__name__
        samples = np.asarray(samples)
        if samples.ndim != 1 or not (
            np.issubdtype(samples.dtype, np.floating) or np.issubdtype(samples.dtype, np.integer)
        ):
            raise ParameterError(
                f"{name}: expected a (num_samples,) float waveform, got shape {samples.shape} {samples.dtype}"
            )
        samples = samples.astype(np.float32, copy=False)
        check_int("sample_rate", sample_rate, min=1, owner=name)
        if not isinstance(rng, np.random.Generator):
            raise ParameterError(f"{name}: rng must be a numpy.random.Generator, got {type(rng).__name__}")
        # always draw the gate, so that changing p does not shift the stream of the transforms that follow
        if not rng.random() < self.p:
            return samples
        params = self.randomize_parameters(samples, sample_rate=int(sample_rate), rng=rng)
        out = self.apply(samples, sample_rate=int(sample_rate), **params)
        return np.asarray(out, dtype=np.float32)

    def randomize_parameters(
        self, samples: np.ndarray, *, sample_rate: int, rng: np.random.Generator
    ) -> dict[str, Any]:
        """Draw this call's parameters (keyword arguments of :meth:`apply`) from ``rng``."""
        return {}

    def apply(self, samples: np.ndarray, *, sample_rate: int, **params: Any) -> np.ndarray:
        """Apply with explicit parameters: deterministic, no randomness of its own."""
        raise NotImplementedError


class BatchTransform(BaseTransform):
    """A transform of a batch of examples, randomised by a :class:`torch.Generator`; ``p`` is per example."""

    requires_targets = False

    def __call__(self, inputs, targets=None, *, generator):
        """Apply to each example with probability ``p``.

        Args:
            inputs: ``(B, N)`` waveforms or ``(B, C, F, T)`` spectrograms (any ``(B, ..., T)`` tensor).
            targets: ``(B, K)`` or None (only for transforms that do not mix labels).
            generator: the only source of randomness (a CPU generator works for tensors on any device).

        Returns:
            ``(inputs, targets)``: new tensors, or the inputs themselves when ``p`` is 0.

        Raises:
            ParameterError: bad shapes or generator, or missing targets for a mixing transform.
        """
        import torch

        name = type(self).__name__
        if not isinstance(inputs, torch.Tensor) or inputs.ndim < 2:
            raise ParameterError(
                f"{name}: inputs must be a (batch, ...) tensor, got {getattr(inputs, 'shape', type(inputs).__name__)}"
            )
        if targets is None:
            if self.requires_targets:
                raise ParameterError(f"{name}: needs targets (batch, num_classes)")
        elif not isinstance(targets, torch.Tensor) or targets.ndim != 2 or targets.shape[0] != inputs.shape[0]:
            raise ParameterError(
                f"{name}: targets must be (batch={inputs.shape[0]}, num_classes), got {getattr(targets, 'shape', None)}"
            )
        if not isinstance(generator, torch.Generator):
            raise ParameterError(f"{name}: generator must be a torch.Generator, got {type(generator).__name__}")
        if self.p == 0.0:
            return inputs, targets
        applied = torch.rand(inputs.shape[0], generator=generator, device=generator.device) < self.p
        params = self.randomize_parameters(inputs, applied=applied.cpu(), generator=generator)
        return self.apply(inputs, targets, **params)

    def randomize_parameters(self, inputs, *, applied, generator) -> dict[str, Any]:
        """Draw this call's parameters (CPU tensors, the keyword arguments of :meth:`apply`); ``applied``: ``(B,)``."""
        return {"applied": applied}

    def apply(self, inputs, targets, **params):
        raise NotImplementedError


def draw_partners(batch: int, generator) -> Any:
    """``(B,)`` partner indices: a cyclic shift by 1..B-1, so no example is paired with itself (B >= 2)."""
    import torch

    if batch < 2:
        return torch.zeros(batch, dtype=torch.long)
    shift = int(torch.randint(1, batch, (1,), generator=generator, device=generator.device))
    return (torch.arange(batch) + shift) % batch


def draw_beta(alpha: float, size: int, generator) -> Any:
    """``(size,)`` float64 CPU tensor of Beta(alpha, alpha) draws determined by ``generator``.

    torch's Beta/Gamma samplers take no generator, so a numpy generator is seeded from ``generator`` instead.
    """
    import torch

    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, size=size))


def seed_from(rng: np.random.Generator) -> int:
    """A seed for a child generator, drawn from ``rng`` (for parameters that are whole random signals)."""
    return int(rng.integers(0, 2**63 - 1))
