"""`AugmentConfig`: the augmentation recipe of a training run, and the builders of its three stages.

Stages, in the order a training step meets them:

1. :func:`build_waveform_augment`: per clip in the data set, numpy ``rng`` (time shift, pitch shift, background
   noise, pink noise, Gaussian noise at an SNR or an amplitude, gain; in that order).
2. :func:`build_batch_augment`: per batch of waveforms ``(B, N)``, torch ``generator`` (mixup and/or cutmix with
   ``*_domain="waveform"``).
3. :func:`build_spectrogram_augment`: per batch of features ``(B, C, F, T)``, torch ``generator`` (mixup and/or
   cutmix with ``*_domain="spectrogram"``, then frequency and time masks).

Everything is off by default (every ``*_p`` is 0) but background noise, which without ``background_noise_paths``
mixes in the data set's background/ clips (a training run's; :func:`build_waveform_augment` alone then adds
nothing), so an empty config changes nothing here; each stage is then an empty :class:`~birdcall.augment.Compose`,
which returns its input. Fields are primitives and tuples, so the config
round-trips through YAML with :mod:`birdcall.config`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..config import check_choice, check_fields, check_number
from ..errors import ParameterError
from .base import BaseTransform, check_range
from .base import check_choice as check_choice_arg
from .batch import CutMix, Mixup
from .compose import Compose
from .spectrogram import FrequencyMask, TimeMask
from .waveform import AddBackgroundNoise, AddGaussianNoise, AddGaussianSNR, AddPinkNoise, Gain, PitchShift, TimeShift
from .waveform.time_shift import SHIFT_UNITS

__all__ = ["AugmentConfig", "build_batch_augment", "build_spectrogram_augment", "build_waveform_augment"]

DOMAINS = ("waveform", "spectrogram")


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation recipe; ranges are ``(min, max)`` tuples, ``*_p`` the probability per clip / per example."""

    # stage 1: waveform, per clip
    time_shift_p: float = 0.0
    time_shift: tuple[float, float] = (-0.5, 0.5)  # in time_shift_unit
    time_shift_unit: str = "fraction"  # "fraction" of the clip or "seconds"
    time_shift_rollover: bool = True  # False fills with zeros
    pitch_shift_p: float = 0.0
    pitch_shift_semitones: tuple[float, float] = (-2.0, 2.0)
    background_noise_p: float = 0.5
    # files or folders of no-call recordings; empty: the data set's background/ clips (training mixes them in
    # before the other waveform stages; without a data set, no background noise)
    background_noise_paths: tuple[str, ...] = ()
    background_noise_snr_db: tuple[float, float] = (3.0, 30.0)
    background_noise_cache: bool = False  # keep decoded noise files in memory
    pink_noise_p: float = 0.0
    pink_noise_snr_db: tuple[float, float] = (10.0, 40.0)
    gaussian_snr_p: float = 0.0
    gaussian_snr_db: tuple[float, float] = (10.0, 40.0)
    gaussian_noise_p: float = 0.0
    gaussian_noise_amplitude: tuple[float, float] = (0.001, 0.015)
    gain_p: float = 0.0
    gain_db: tuple[float, float] = (-6.0, 6.0)
    # stages 2-3: batches (mixup/cutmix on waveforms or spectrograms, masks on spectrograms)
    mixup_p: float = 0.0
    mixup_alpha: float = 0.4
    mixup_labels: str = "union"  # "union" (max) or "weighted"
    mixup_domain: str = "waveform"
    cutmix_p: float = 0.0
    cutmix_alpha: float = 1.0
    cutmix_labels: str = "weighted"  # "weighted" (by pasted area) or "union"
    cutmix_domain: str = "spectrogram"
    cutmix_frequency: bool = True  # spectrograms: a time x frequency box; False: full-height time segment
    freq_mask_p: float = 0.0
    freq_mask_num_masks: int = 2
    freq_mask_max_width: int = 8  # bins
    time_mask_p: float = 0.0
    time_mask_num_masks: int = 2
    time_mask_max_width: int = 20  # frames
    mask_fill: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.background_noise_paths, str):
            object.__setattr__(self, "background_noise_paths", (self.background_noise_paths,))
        check_fields(self)  # types, (min, max) pairs, finite numbers
        for field in fields(self):
            if field.name.endswith("_p"):
                check_number(self, field.name, ge=0, le=1)
        for name in ("mixup_domain", "cutmix_domain"):
            check_choice(self, name, DOMAINS)
        # Build every enabled stage that does not touch the file system, and check the arguments of the
        # disabled ones, so that a bad value fails now, naming its field, not when the stage is switched on.
        _waveform_transforms(self, with_files=False)
        _check_disabled_waveform_args(self)
        _mixers(self, "waveform", force=True)
        _masks(self, every=True)


@contextlib.contextmanager
def _naming(*keys: str):
    """Re-raise a transform's argument error as one naming the config keys it came from."""
    try:
        yield
    except (ParameterError, TypeError, ValueError) as err:
        raise ParameterError(f"AugmentConfig.{'/'.join(keys)}: {err}") from None


def _pair(config: AugmentConfig, name: str) -> tuple[Any, Any]:
    value = getattr(config, name)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ParameterError(f"AugmentConfig.{name} must be a (min, max) pair, got {value!r}")
    return value[0], value[1]


def _check_disabled_waveform_args(c: AugmentConfig) -> None:
    """The argument checks of the waveform transforms whose ``p`` is 0, without building them (three of them
    wrap audiomentations, whose import is slow, and background noise would read the file system)."""
    if c.time_shift_p == 0:
        with _naming("time_shift", "time_shift_unit"):
            unit = check_choice_arg("TimeShift", "shift_unit", c.time_shift_unit, SHIFT_UNITS)
            limit = 1.0 if unit == "fraction" else math.inf
            check_range("TimeShift", "shift", *_pair(c, "time_shift"), lowest=-limit, highest=limit)
    if c.pitch_shift_p == 0:
        with _naming("pitch_shift_semitones"):
            check_range("PitchShift", "semitones", *_pair(c, "pitch_shift_semitones"), lowest=-24.0, highest=24.0)
    with _naming("background_noise_snr_db"):
        check_range("AddBackgroundNoise", "snr_db", *_pair(c, "background_noise_snr_db"))
    if c.gain_p == 0:
        with _naming("gain_db"):
            check_range("Gain", "gain_db", *_pair(c, "gain_db"))
    for p_key, key, transform in (
        ("pink_noise_p", "pink_noise_snr_db", AddPinkNoise),
        ("gaussian_snr_p", "gaussian_snr_db", AddGaussianSNR),
        ("gaussian_noise_p", "gaussian_noise_amplitude", AddGaussianNoise),
    ):
        if getattr(c, p_key) == 0:
            with _naming(key):
                transform(*_pair(c, key), p=0.0)  # plain numpy transforms: cheap to build


def _waveform_transforms(config: AugmentConfig, *, with_files: bool = True) -> list[BaseTransform]:
    """The enabled waveform transforms, in stage order."""
    c = config
    out: list[BaseTransform] = []
    if c.time_shift_p > 0:
        low, high = _pair(c, "time_shift")
        with _naming("time_shift", "time_shift_unit"):
            out.append(TimeShift(min_shift=low, max_shift=high, shift_unit=c.time_shift_unit, rollover=c.time_shift_rollover, p=c.time_shift_p))
    if c.pitch_shift_p > 0:
        low, high = _pair(c, "pitch_shift_semitones")
        with _naming("pitch_shift_semitones"):
            out.append(PitchShift(min_semitones=low, max_semitones=high, p=c.pitch_shift_p))
    if c.background_noise_p > 0 and with_files and c.background_noise_paths:  # no paths: the trainer adds the data set's
        low, high = _pair(c, "background_noise_snr_db")
        noise = AddBackgroundNoise(
            c.background_noise_paths,
            min_snr_db=low,
            max_snr_db=high,
            cache=c.background_noise_cache,
            p=c.background_noise_p,
        )
        out.append(noise)
    if c.pink_noise_p > 0:
        low, high = _pair(c, "pink_noise_snr_db")
        with _naming("pink_noise_snr_db"):
            out.append(AddPinkNoise(min_snr_db=low, max_snr_db=high, p=c.pink_noise_p))
    if c.gaussian_snr_p > 0:
        low, high = _pair(c, "gaussian_snr_db")
        with _naming("gaussian_snr_db"):
            out.append(AddGaussianSNR(min_snr_db=low, max_snr_db=high, p=c.gaussian_snr_p))
    if c.gaussian_noise_p > 0:
        low, high = _pair(c, "gaussian_noise_amplitude")
        with _naming("gaussian_noise_amplitude"):
            out.append(AddGaussianNoise(min_amplitude=low, max_amplitude=high, p=c.gaussian_noise_p))
    if c.gain_p > 0:
        low, high = _pair(c, "gain_db")
        with _naming("gain_db"):
            out.append(Gain(min_gain_db=low, max_gain_db=high, p=c.gain_p))
    return out


def _mixers(config: AugmentConfig, domain: str, *, force: bool = False) -> list[BaseTransform]:
    c = config
    out: list[BaseTransform] = []
    if (c.mixup_p > 0 and c.mixup_domain == domain) or force:
        with _naming("mixup_alpha", "mixup_labels"):
            out.append(Mixup(alpha=c.mixup_alpha, label_mode=c.mixup_labels, p=c.mixup_p))
    if (c.cutmix_p > 0 and c.cutmix_domain == domain) or force:
        with _naming("cutmix_alpha", "cutmix_labels"):
            out.append(CutMix(alpha=c.cutmix_alpha, label_mode=c.cutmix_labels, cut_frequency=c.cutmix_frequency, p=c.cutmix_p))
    return out


def _masks(config: AugmentConfig, *, every: bool = False) -> list[BaseTransform]:
    c = config
    out: list[BaseTransform] = []
    if c.freq_mask_p > 0 or every:
        with _naming("freq_mask_max_width", "freq_mask_num_masks", "mask_fill"):
            out.append(FrequencyMask(max_width=c.freq_mask_max_width, num_masks=c.freq_mask_num_masks, fill=c.mask_fill, p=c.freq_mask_p))
    if c.time_mask_p > 0 or every:
        with _naming("time_mask_max_width", "time_mask_num_masks", "mask_fill"):
            out.append(TimeMask(max_width=c.time_mask_max_width, num_masks=c.time_mask_num_masks, fill=c.mask_fill, p=c.time_mask_p))
    return out


def _as_config(config: AugmentConfig | Mapping[str, Any]) -> AugmentConfig:
    if isinstance(config, AugmentConfig):
        return config
    if isinstance(config, Mapping):
        from ..config import from_dict

        return from_dict(AugmentConfig, dict(config))
    raise ParameterError(f"expected an AugmentConfig or a mapping, got {type(config).__name__}")


def build_waveform_augment(config: AugmentConfig | Mapping[str, Any]) -> Compose:
    """Per-clip pipeline: call as ``augment(samples, sample_rate=..., rng=np.random.Generator)``.

    Raises:
        ParameterError: an invalid config, or background noise paths with no audio.
    """
    return Compose(_waveform_transforms(_as_config(config)))


def build_batch_augment(config: AugmentConfig | Mapping[str, Any]) -> Compose:
    """Waveform-batch stage: call as ``waveforms, targets = augment(waveforms, targets, generator=torch.Generator)``.

    Mixup then cutmix when both are enabled for waveforms, each with its own ``p`` per example.
    """
    return Compose(_mixers(_as_config(config), "waveform"))


def build_spectrogram_augment(config: AugmentConfig | Mapping[str, Any]) -> Compose:
    """Spectrogram-batch stage on ``(B, C, F, T)``: mixers for the spectrogram domain, then frequency and time masks.

    Call as ``features, targets = augment(features, targets, generator=torch.Generator)``.
    """
    config = _as_config(config)
    return Compose(_mixers(config, "spectrogram") + _masks(config))
