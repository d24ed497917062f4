"""Waveform transforms: one mono clip, numpy in and out, ``t(samples, *, sample_rate, rng)``."""

from .add_background_noise import AddBackgroundNoise as AddBackgroundNoise
from .add_color_noise import AddColorNoise as AddColorNoise
from .add_gaussian_noise import AddGaussianNoise as AddGaussianNoise
from .add_gaussian_snr import AddGaussianSNR as AddGaussianSNR
from .add_pink_noise import AddPinkNoise as AddPinkNoise
from .gain import Gain as Gain
from .pitch_shift import PitchShift as PitchShift
from .random_crop import RandomCrop as RandomCrop
from .time_shift import TimeShift as TimeShift
