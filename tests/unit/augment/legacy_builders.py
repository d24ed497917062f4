"""A frozen copy of how birdcall built the augmentation stages from the flat ``AugmentConfig`` (34 fields) before
the config became lists of registered transforms (issue 18): the reference the new builders must match draw for
draw. Do not edit it to follow the library; it is what "behaviour unchanged" is measured against.

``legacy_stages(flat, background)`` takes a flat augment mapping (missing keys at the old defaults) and returns the
trainer's per-clip pipeline (``train.loop.waveform_augment``), the waveform-batch stage and the spectrogram stage.
"""

from __future__ import annotations

from birdcall.augment import (
    AddBackgroundNoise,
    AddGaussianNoise,
    AddGaussianSNR,
    AddPinkNoise,
    Compose,
    CutMix,
    FrequencyMask,
    Gain,
    Mixup,
    PitchShift,
    TimeMask,
    TimeShift,
)

OLD_DEFAULTS = {
    "time_shift_p": 0.0, "time_shift": (-0.5, 0.5), "time_shift_unit": "fraction", "time_shift_rollover": True,
    "pitch_shift_p": 0.0, "pitch_shift_semitones": (-2.0, 2.0),
    "background_noise_p": 0.5, "background_noise_paths": (), "background_noise_snr_db": (3.0, 30.0), "background_noise_cache": False,
    "pink_noise_p": 0.0, "pink_noise_snr_db": (10.0, 40.0), "gaussian_snr_p": 0.0, "gaussian_snr_db": (10.0, 40.0),
    "gaussian_noise_p": 0.0, "gaussian_noise_amplitude": (0.001, 0.015), "gain_p": 0.0, "gain_db": (-6.0, 6.0),
    "mixup_p": 0.0, "mixup_alpha": 0.4, "mixup_labels": "union", "mixup_domain": "waveform",
    "cutmix_p": 0.0, "cutmix_alpha": 1.0, "cutmix_labels": "weighted", "cutmix_domain": "spectrogram", "cutmix_frequency": True,
    "freq_mask_p": 0.0, "freq_mask_num_masks": 2, "freq_mask_max_width": 8,
    "time_mask_p": 0.0, "time_mask_num_masks": 2, "time_mask_max_width": 20, "mask_fill": 0.0,
}  # fmt: skip


def _waveform_transforms(c: dict) -> list:
    out = []
    if c["time_shift_p"] > 0:
        low, high = c["time_shift"]
        out.append(TimeShift(min_shift=low, max_shift=high, shift_unit=c["time_shift_unit"], rollover=c["time_shift_rollover"], p=c["time_shift_p"]))
    if c["pitch_shift_p"] > 0:
        low, high = c["pitch_shift_semitones"]
        out.append(PitchShift(min_semitones=low, max_semitones=high, p=c["pitch_shift_p"]))
    if c["background_noise_p"] > 0 and c["background_noise_paths"]:
        low, high = c["background_noise_snr_db"]
        out.append(AddBackgroundNoise(c["background_noise_paths"], min_snr_db=low, max_snr_db=high, cache=c["background_noise_cache"], p=c["background_noise_p"]))
    if c["pink_noise_p"] > 0:
        low, high = c["pink_noise_snr_db"]
        out.append(AddPinkNoise(min_snr_db=low, max_snr_db=high, p=c["pink_noise_p"]))
    if c["gaussian_snr_p"] > 0:
        low, high = c["gaussian_snr_db"]
        out.append(AddGaussianSNR(min_snr_db=low, max_snr_db=high, p=c["gaussian_snr_p"]))
    if c["gaussian_noise_p"] > 0:
        low, high = c["gaussian_noise_amplitude"]
        out.append(AddGaussianNoise(min_amplitude=low, max_amplitude=high, p=c["gaussian_noise_p"]))
    if c["gain_p"] > 0:
        low, high = c["gain_db"]
        out.append(Gain(min_gain_db=low, max_gain_db=high, p=c["gain_p"]))
    return out


def _mixers(c: dict, domain: str) -> list:
    out = []
    if c["mixup_p"] > 0 and c["mixup_domain"] == domain:
        out.append(Mixup(alpha=c["mixup_alpha"], label_mode=c["mixup_labels"], p=c["mixup_p"]))
    if c["cutmix_p"] > 0 and c["cutmix_domain"] == domain:
        out.append(CutMix(alpha=c["cutmix_alpha"], label_mode=c["cutmix_labels"], cut_frequency=c["cutmix_frequency"], p=c["cutmix_p"]))
    return out


def _masks(c: dict) -> list:
    out = []
    if c["freq_mask_p"] > 0:
        out.append(FrequencyMask(max_width=c["freq_mask_max_width"], num_masks=c["freq_mask_num_masks"], fill=c["mask_fill"], p=c["freq_mask_p"]))
    if c["time_mask_p"] > 0:
        out.append(TimeMask(max_width=c["time_mask_max_width"], num_masks=c["time_mask_num_masks"], fill=c["mask_fill"], p=c["time_mask_p"]))
    return out


def legacy_stages(flat: dict, background: list) -> tuple[Compose, Compose, Compose]:
    """``(trainer per-clip pipeline, waveform-batch stage, spectrogram stage)`` as the old code built them."""
    c = {**OLD_DEFAULTS, **flat}
    stages = []
    if background and c["background_noise_p"] > 0 and not c["background_noise_paths"]:
        low, high = c["background_noise_snr_db"]
        stages.append(AddBackgroundNoise(background, min_snr_db=low, max_snr_db=high, cache=True, p=c["background_noise_p"]))
    stages.append(Compose(_waveform_transforms(c)))
    return Compose(stages), Compose(_mixers(c, "waveform")), Compose(_mixers(c, "spectrogram") + _masks(c))
