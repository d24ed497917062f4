"""The augmentations birdcall registers for recipes: entry points from recipe parameters to transforms.

Each function is the recipe face of one transform class: ranges are ``(min, max)`` pairs named once (``snr_db``,
not ``min_snr_db``/``max_snr_db``), and the defaults are the recipe's (those of the flat ``AugmentConfig`` they
replace), which may differ from the class's. ``p`` is the probability per clip (waveform) or per example (batch).

===================  ==========================  ====================================================================
name                 stages                      parameters
===================  ==========================  ====================================================================
``time_shift``       waveform                    ``shift``, ``unit`` (fraction/seconds), ``rollover``, ``fade_duration``
``pitch_shift``      waveform                    ``semitones``, ``method``
``background_noise`` waveform                    ``snr_db``, ``paths`` (none: the data set's background/ clips), ``cache``
``pink_noise``       waveform                    ``snr_db``
``color_noise``      waveform                    ``snr_db``, ``f_decay`` (dB per octave)
``gaussian_snr``     waveform                    ``snr_db``
``gaussian_noise``   waveform                    ``amplitude``
``gain``             waveform                    ``gain_db``
``mixup``            batch, spectrogram          ``alpha``, ``labels`` (union/weighted)
``cutmix``           batch, spectrogram          ``alpha``, ``labels``, ``cut_frequency``
``freq_mask``        spectrogram                 ``num_masks``, ``max_width``, ``min_width`` (bins), ``fill``
``time_mask``        spectrogram                 ``num_masks``, ``max_width``, ``min_width`` (frames), ``fill``
===================  ==========================  ====================================================================
"""

from __future__ import annotations

from .base import check_range
from .batch import CutMix, Mixup
from .spec import naming, register_augmentation
from .spectrogram import FrequencyMask, TimeMask
from .waveform import AddBackgroundNoise, AddColorNoise, AddGaussianNoise, AddGaussianSNR, AddPinkNoise, Gain, PitchShift, TimeShift
from .waveform.add_color_noise import PINK_F_DECAY

__all__: list[str] = []  # registration only: recipes name these, code calls the transform classes

WAVEFORM = ("waveform",)
MIXING = ("batch", "spectrogram")


@register_augmentation(stages=WAVEFORM)
def time_shift(*, shift: tuple[float, float] = (-0.5, 0.5), unit: str = "fraction", rollover: bool = True,
               fade_duration: float = 0.005, p: float = 0.5) -> TimeShift:  # fmt: skip
    """:class:`~birdcall.augment.TimeShift` by ``shift`` in ``unit`` (``fraction`` of the clip, or ``seconds``)."""
    with naming("shift", "unit", "fade_duration", unit="shift_unit"):
        return TimeShift(min_shift=shift[0], max_shift=shift[1], shift_unit=unit, rollover=rollover, fade_duration=fade_duration, p=p)


@register_augmentation(stages=WAVEFORM)
def pitch_shift(*, semitones: tuple[float, float] = (-2.0, 2.0), method: str = "signalsmith_stretch", p: float = 0.5) -> PitchShift:
    """:class:`~birdcall.augment.PitchShift` by ``semitones`` (within +-24)."""
    with naming("semitones", "method"):
        return PitchShift(min_semitones=semitones[0], max_semitones=semitones[1], method=method, p=p)


def _check_background_noise(*, snr_db: tuple[float, float], paths: tuple[str, ...], cache: bool, p: float) -> None:
    """Checks of :func:`background_noise` that read no files (a config is checked where its paths may not exist)."""
    with naming("snr_db"):
        check_range("AddBackgroundNoise", "snr_db", *snr_db)


@register_augmentation(stages=WAVEFORM, check=_check_background_noise)
def background_noise(*, snr_db: tuple[float, float] = (3.0, 30.0), paths: tuple[str, ...] = (), cache: bool = False,
                     p: float = 0.5) -> AddBackgroundNoise:  # fmt: skip
    """:class:`~birdcall.augment.AddBackgroundNoise` from ``paths`` (files or folders of no-call recordings).

    Without ``paths``, training mixes in its data set's background/ clips (always cached); the pipeline built
    without a data set leaves it out.
    """
    with naming("snr_db", "paths", paths="noise_paths"):
        return AddBackgroundNoise(paths, min_snr_db=snr_db[0], max_snr_db=snr_db[1], cache=cache, p=p)


@register_augmentation(stages=WAVEFORM)
def pink_noise(*, snr_db: tuple[float, float] = (10.0, 40.0), p: float = 0.5) -> AddPinkNoise:
    """:class:`~birdcall.augment.AddPinkNoise` at ``snr_db``."""
    with naming("snr_db"):
        return AddPinkNoise(min_snr_db=snr_db[0], max_snr_db=snr_db[1], p=p)


@register_augmentation(stages=WAVEFORM)
def color_noise(*, snr_db: tuple[float, float] = (10.0, 40.0), f_decay: tuple[float, float] = (PINK_F_DECAY, PINK_F_DECAY),
                p: float = 0.5) -> AddColorNoise:  # fmt: skip
    """:class:`~birdcall.augment.AddColorNoise` at ``snr_db``, sloping by ``f_decay`` dB per octave."""
    with naming("snr_db", "f_decay"):
        return AddColorNoise(min_snr_db=snr_db[0], max_snr_db=snr_db[1], min_f_decay=f_decay[0], max_f_decay=f_decay[1], p=p)


@register_augmentation(stages=WAVEFORM)
def gaussian_snr(*, snr_db: tuple[float, float] = (10.0, 40.0), p: float = 0.5) -> AddGaussianSNR:
    """:class:`~birdcall.augment.AddGaussianSNR`: white noise at ``snr_db``."""
    with naming("snr_db"):
        return AddGaussianSNR(min_snr_db=snr_db[0], max_snr_db=snr_db[1], p=p)


@register_augmentation(stages=WAVEFORM)
def gaussian_noise(*, amplitude: tuple[float, float] = (0.001, 0.015), p: float = 0.5) -> AddGaussianNoise:
    """:class:`~birdcall.augment.AddGaussianNoise`: white noise of standard deviation ``amplitude``."""
    with naming("amplitude"):
        return AddGaussianNoise(min_amplitude=amplitude[0], max_amplitude=amplitude[1], p=p)


@register_augmentation(stages=WAVEFORM)
def gain(*, gain_db: tuple[float, float] = (-6.0, 6.0), p: float = 0.5) -> Gain:
    """:class:`~birdcall.augment.Gain` by ``gain_db``."""
    with naming("gain_db"):
        return Gain(min_gain_db=gain_db[0], max_gain_db=gain_db[1], p=p)


@register_augmentation(stages=MIXING)
def mixup(*, alpha: float = 0.4, labels: str = "union", p: float = 0.5) -> Mixup:
    """:class:`~birdcall.augment.Mixup`; ``labels``: ``union`` (max) or ``weighted``."""
    with naming("alpha", "labels", labels="label_mode"):
        return Mixup(alpha=alpha, label_mode=labels, p=p)


@register_augmentation(stages=MIXING)
def cutmix(*, alpha: float = 1.0, labels: str = "weighted", cut_frequency: bool = True, p: float = 0.5) -> CutMix:
    """:class:`~birdcall.augment.CutMix`; on spectrograms a time x frequency box, or with ``cut_frequency`` false a
    full-height time segment."""
    with naming("alpha", "labels", labels="label_mode"):
        return CutMix(alpha=alpha, label_mode=labels, cut_frequency=cut_frequency, p=p)


@register_augmentation(stages=("spectrogram",))
def freq_mask(*, num_masks: int = 2, max_width: int = 8, min_width: int = 0, fill: float | str = 0.0, p: float = 0.5) -> FrequencyMask:
    """:class:`~birdcall.augment.FrequencyMask`: ``num_masks`` bands of ``min_width``..``max_width`` bins set to
    ``fill`` (a number or ``mean``)."""
    with naming("num_masks", "max_width", "min_width", "fill"):
        return FrequencyMask(min_width=min_width, max_width=max_width, num_masks=num_masks, fill=fill, p=p)


@register_augmentation(stages=("spectrogram",))
def time_mask(*, num_masks: int = 2, max_width: int = 20, min_width: int = 0, fill: float | str = 0.0, p: float = 0.5) -> TimeMask:
    """:class:`~birdcall.augment.TimeMask`: ``num_masks`` spans of ``min_width``..``max_width`` frames set to
    ``fill`` (a number or ``mean``)."""
    with naming("num_masks", "max_width", "min_width", "fill"):
        return TimeMask(min_width=min_width, max_width=max_width, num_masks=num_masks, fill=fill, p=p)
