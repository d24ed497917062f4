"""Augmentations of the training recipe.

* waveform transforms (one clip, numpy, ``t(samples, *, sample_rate, rng)``): :class:`Gain`,
  :class:`AddGaussianNoise`, :class:`AddGaussianSNR`, :class:`AddColorNoise`, :class:`AddPinkNoise`,
  :class:`AddBackgroundNoise`, :class:`PitchShift`, :class:`TimeShift`, :class:`RandomCrop`;
* batch transforms (torch, ``t(inputs, targets, *, generator) -> (inputs, targets)``): :class:`Mixup`,
  :class:`CutMix`, :class:`TimeMask`, :class:`FrequencyMask`, and the functional :func:`sum_mix`;
* composition for both kinds: :class:`Compose`, :class:`OneOf`, :class:`SomeOf`;
* :class:`AugmentConfig` (lists of :class:`TransformSpec`, registered names with their parameters) and
  ``build_*_augment`` to make the three stages of a training step; :func:`register_augmentation` adds a
  transform recipes can name (:data:`AUGMENTATIONS`; birdcall's own: :mod:`birdcall.augment.builtins`).

Randomness only ever comes from the ``rng``/``generator`` argument (see :mod:`birdcall.augment.base`).
"""

from .base import TRANSFORMS as TRANSFORMS
from .base import BaseTransform as BaseTransform
from .base import BatchTransform as BatchTransform
from .base import WaveformTransform as WaveformTransform
from .base import mix_at_snr as mix_at_snr
from .base import transform_from_dict as transform_from_dict
from .batch import CutMix as CutMix
from .batch import Mixup as Mixup
from .compose import Compose as Compose
from .compose import OneOf as OneOf
from .compose import SomeOf as SomeOf
from .config import AugmentConfig as AugmentConfig
from .config import build_batch_augment as build_batch_augment
from .config import build_spectrogram_augment as build_spectrogram_augment
from .config import build_waveform_augment as build_waveform_augment
from .mix import sum_mix as sum_mix
from .spec import AUGMENTATIONS as AUGMENTATIONS
from .spec import TransformSpec as TransformSpec
from .spec import create_augmentation as create_augmentation
from .spec import register_augmentation as register_augmentation
from .spectrogram import FrequencyMask as FrequencyMask
from .spectrogram import TimeMask as TimeMask
from .waveform import AddBackgroundNoise as AddBackgroundNoise
from .waveform import AddColorNoise as AddColorNoise
from .waveform import AddGaussianNoise as AddGaussianNoise
from .waveform import AddGaussianSNR as AddGaussianSNR
from .waveform import AddPinkNoise as AddPinkNoise
from .waveform import Gain as Gain
from .waveform import PitchShift as PitchShift
from .waveform import RandomCrop as RandomCrop
from .waveform import TimeShift as TimeShift
