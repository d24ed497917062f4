"""Registered augmentations: TransformSpec, the registry's builders, checks that name the key, user transforms."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
import yaml

from birdcall.augment import (
    AUGMENTATIONS,
    AddBackgroundNoise,
    AugmentConfig,
    CutMix,
    FrequencyMask,
    Gain,
    Mixup,
    TimeShift,
    TransformSpec,
    WaveformTransform,
    build_waveform_augment,
    create_augmentation,
    register_augmentation,
)
from birdcall.augment.spec import resolve_spec
from birdcall.config import from_dict, to_dict
from birdcall.errors import ParameterError

SAMPLE_RATE = 16_000


@pytest.fixture
def registry():
    """The registry as it was before the test: user registrations made in a test do not leak into others."""
    saved = dict(AUGMENTATIONS._entries)
    yield AUGMENTATIONS
    AUGMENTATIONS._entries.clear()
    AUGMENTATIONS._entries.update(saved)


def test_spec_is_an_immutable_plain_mapping_of_parameters():
    spec = TransformSpec("gain", p=0.5, gain_db=[-3, 3])
    assert spec.name == "gain" and spec["gain_db"] == (-3, 3) and dict(spec.params) == {"p": 0.5, "gain_db": (-3, 3)}
    assert spec.to_dict() == {"name": "gain", "p": 0.5, "gain_db": [-3, 3]}
    assert TransformSpec.from_dict(spec.to_dict()) == spec and hash(TransformSpec.from_dict(spec.to_dict())) == hash(spec)
    assert spec.replace(p=0.1) == TransformSpec("gain", p=0.1, gain_db=(-3, 3)) and spec["p"] == 0.5
    assert pickle.loads(pickle.dumps(spec)) == spec and copy.deepcopy(spec) == spec
    assert repr(spec) == "TransformSpec('gain', p=0.5, gain_db=(-3, 3))"
    with pytest.raises(AttributeError):
        spec.name = "x"
    with pytest.raises(TypeError):
        spec.params["p"] = 1.0
    for bad in (3, {"p": 0.5}, {"name": ""}, {"name": "gain", 1: 2}):
        with pytest.raises(ParameterError, match=r"^where: "):
            TransformSpec.from_dict(bad, where="where")


def test_builtins_fit_their_stages():
    stages = {name: AUGMENTATIONS.get(name).stages for name in AUGMENTATIONS.names()}
    assert stages == {
        **{n: ("waveform",) for n in ("time_shift", "pitch_shift", "background_noise", "pink_noise", "color_noise", "gaussian_snr", "gaussian_noise", "gain")},
        "mixup": ("batch", "spectrogram"), "cutmix": ("batch", "spectrogram"), "freq_mask": ("spectrogram",), "time_mask": ("spectrogram",),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("stage", "entry", "expected"),
    [
        ("waveform", {"name": "time_shift", "p": 0.3, "shift": [-0.2, 0.1], "unit": "seconds"},
         TimeShift(min_shift=-0.2, max_shift=0.1, shift_unit="seconds", rollover=True, p=0.3)),
        ("waveform", {"name": "gain", "p": 1}, Gain(min_gain_db=-6.0, max_gain_db=6.0, p=1.0)),  # the recipe's default range
        ("batch", {"name": "mixup"}, Mixup(alpha=0.4, label_mode="union", p=0.5)),
        ("spectrogram", {"name": "cutmix", "labels": "union", "cut_frequency": False}, CutMix(alpha=1.0, label_mode="union", cut_frequency=False)),
        ("spectrogram", {"name": "freq_mask", "p": 0.3, "max_width": 4, "fill": "mean"}, FrequencyMask(max_width=4, num_masks=2, fill="mean", p=0.3)),
    ],
)  # fmt: skip
def test_the_registry_builds_each_entry_with_the_recipe_defaults(stage, entry, expected):
    spec = resolve_spec(TransformSpec.from_dict(entry), stage, owner="here")
    built = create_augmentation(spec)
    assert built == expected and type(built) is type(expected)
    assert next(iter(spec.params)) == "p" and set(spec.params) == set(AUGMENTATIONS.get(entry["name"]).parameters)  # complete, p first


def test_resolving_converts_yaml_values_to_the_annotated_types():
    spec = resolve_spec(TransformSpec("background_noise", p="0.5", snr_db=[3, "30"], paths="noise/"), "waveform", owner="o")
    assert spec.params == {"p": 0.5, "snr_db": (3.0, 30.0), "paths": ("noise/",), "cache": False}
    assert all(type(v) is float for v in (spec["p"], *spec["snr_db"]))


@pytest.mark.parametrize(
    ("stage", "entry", "message"),
    [
        ("waveform", {"name": "gainz"}, r"^A\.waveform\[1\]: unknown augmentation 'gainz'; registered: background_noise, "),
        ("waveform", {"name": "mixup"}, r"^A\.waveform\[1\]: mixup is not a waveform augmentation \(it fits: batch, spectrogram\)$"),
        ("batch", {"name": "freq_mask"}, r"^A\.batch\[1\]: freq_mask is not a batch augmentation"),
        ("waveform", {"name": "background_noise", "snr_dbx": [3, 30]}, r"^A\.waveform\[1\]\.snr_dbx: unknown parameter of background_noise; known: snr_db, paths, cache, p$"),
        ("waveform", {"name": "background_noise", "snr_db": [30, 3]}, r"^A\.waveform\[1\]\.snr_db: AddBackgroundNoise: min_snr_db \(30\.0\) > max_snr_db \(3\.0\)$"),
        ("waveform", {"name": "background_noise", "snr_db": [3]}, r"^A\.waveform\[1\]\.snr_db: expected a list of 2 values"),
        ("waveform", {"name": "gain", "p": 1.5}, r"^A\.waveform\[1\]\.p must be in \[0, 1\], got 1\.5$"),
        ("waveform", {"name": "gain", "p": "often"}, r"^A\.waveform\[1\]\.p: expected a finite number, got 'often'$"),
        ("waveform", {"name": "time_shift", "unit": "minutes"}, r"^A\.waveform\[1\]\.unit: TimeShift: shift_unit must be one of"),
        ("waveform", {"name": "time_shift", "shift": [-2, 2]}, r"^A\.waveform\[1\]\.shift: TimeShift: shift range \[-2\.0, 2\.0\] must lie within \[-1\.0, 1\.0\]$"),
        ("waveform", {"name": "time_shift", "fade_duration": 5}, r"^A\.waveform\[1\]\.fade_duration: TimeShift: fade_duration must be 0 or in"),
        ("waveform", {"name": "pitch_shift", "semitones": [-30, 2]}, r"^A\.waveform\[1\]\.semitones: PitchShift: semitones range"),
        ("waveform", {"name": "gaussian_noise", "amplitude": [-1, 1]}, r"^A\.waveform\[1\]\.amplitude: AddGaussianNoise: amplitude range"),
        ("batch", {"name": "mixup", "labels": "sum"}, r"^A\.batch\[1\]\.labels: Mixup: label_mode must be one of"),
        ("spectrogram", {"name": "cutmix", "alpha": 0}, r"^A\.spectrogram\[1\]\.alpha: CutMix: alpha must be > 0, got 0\.0$"),
        ("spectrogram", {"name": "time_mask", "max_width": -1}, r"^A\.spectrogram\[1\]\.max_width: TimeMask: max_width must be an integer >= 0, got -1$"),
        ("spectrogram", {"name": "time_mask", "min_width": 9, "max_width": 4}, r"^A\.spectrogram\[1\]\.min_width: TimeMask: min_width \(9\) > max_width \(4\)$"),
        ("spectrogram", {"name": "freq_mask", "fill": "median"}, r"^A\.spectrogram\[1\]\.fill: FrequencyMask: fill must be a number or 'mean'"),
        ("spectrogram", {"name": "freq_mask", "p": 0, "num_masks": 1.5}, r"^A\.spectrogram\[1\]\.num_masks: expected an integer, got 1\.5$"),  # off, still checked
    ],
)  # fmt: skip
def test_a_bad_entry_is_one_line_naming_its_key(stage, entry, message):
    with pytest.raises(ParameterError, match=message) as info:
        resolve_spec(TransformSpec.from_dict(entry), stage, owner=f"A.{stage}[1]")
    assert "\n" not in str(info.value)


def test_background_noise_paths_are_not_read_when_the_config_is_checked(tmp_path):
    missing = str(tmp_path / "elsewhere")  # e.g. a run folder's config read on another machine
    config = AugmentConfig(waveform=[{"name": "background_noise", "paths": [missing]}])
    assert config.waveform[0]["paths"] == (missing,)
    with pytest.raises(ParameterError, match=r"^augment\.waveform\[0\] \(background_noise\): AddBackgroundNoise: .*elsewhere: no such file or folder$"):
        build_waveform_augment(config)


class ClipPeaks(WaveformTransform):
    """A user's transform: clip the waveform at ``limit`` (no randomness beyond the gate)."""

    def __init__(self, limit: float = 0.5, p: float = 0.5):
        super().__init__(p)
        if not 0 < limit <= 1:
            raise ParameterError(f"ClipPeaks: limit must be in (0, 1], got {limit!r}")
        self.limit = limit

    def apply(self, samples, *, sample_rate):
        return np.clip(samples, -self.limit, self.limit)


def test_a_user_registered_transform_is_named_in_a_recipe_and_built(registry, clip, tmp_path):
    @register_augmentation(stages=("waveform",))
    def clip_peaks(*, limit: float = 0.5, p: float = 0.5) -> ClipPeaks:
        return ClipPeaks(limit=limit, p=p)

    register_augmentation(ClipPeaks, name="clip_peaks_class", stages=["waveform"])  # a class is an entry point too
    text = "waveform:\n  - {name: gain, p: 1.0, gain_db: [6, 6]}\n  - {name: clip_peaks, p: 1, limit: '0.1'}\n  - {name: clip_peaks_class, limit: 0.2}\n"
    config = from_dict(AugmentConfig, yaml.safe_load(text))
    assert config.waveform[1] == TransformSpec("clip_peaks", p=1.0, limit=0.1)  # the YAML string read as the annotated float
    assert config.waveform[2] == TransformSpec("clip_peaks_class", p=0.5, limit=0.2)
    assert from_dict(AugmentConfig, to_dict(config)) == config
    pipeline = build_waveform_augment(config)
    assert [type(t) for t in pipeline.transforms] == [Gain, ClipPeaks, ClipPeaks] and pipeline.transforms[1].limit == 0.1
    out = build_waveform_augment(config.__class__(waveform=config.waveform[:2]))(clip, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0))
    assert np.abs(out).max() == pytest.approx(0.1)  # 6 dB louder, then clipped
    with pytest.raises(ParameterError, match=r"AugmentConfig\.waveform\[0\]\.limit: ClipPeaks: limit must be in \(0, 1\], got 3\.0"):
        AugmentConfig(waveform=[{"name": "clip_peaks", "limit": 3}])
    with pytest.raises(ParameterError, match=r"AugmentConfig\.batch\[0\]: clip_peaks is not a batch augmentation"):
        AugmentConfig(batch=[{"name": "clip_peaks"}])


def test_registration_is_checked(registry):
    def no_p(*, limit: float = 0.5):
        return ClipPeaks(limit)

    with pytest.raises(ParameterError, match="keyword parameters only, p among them"):
        register_augmentation(no_p, stages=("waveform",))
    with pytest.raises(ParameterError, match="stages must be some of waveform, batch, spectrogram"):
        register_augmentation(ClipPeaks, stages=("clip",))
    with pytest.raises(ParameterError, match="augmentation 'gain' is registered twice"):
        register_augmentation(ClipPeaks, name="gain", stages=("waveform",))

    @register_augmentation(stages=("waveform",))
    def not_a_transform(*, p: float = 0.5):
        return "nothing"

    with pytest.raises(ParameterError, match=r"\(not_a_transform\): the entry point returned str, not a birdcall transform"):
        AugmentConfig(waveform=[{"name": "not_a_transform"}])


def test_a_batch_entry_point_can_be_registered_for_both_batch_stages(registry):
    @register_augmentation(stages=("batch", "spectrogram"))
    def soft_mixup(*, alpha: float = 0.2, p: float = 0.5) -> Mixup:
        return Mixup(alpha=alpha, label_mode="weighted", p=p)

    config = AugmentConfig(batch=[{"name": "soft_mixup"}], spectrogram=[{"name": "soft_mixup", "alpha": 0.3}])
    from birdcall.augment import build_batch_augment, build_spectrogram_augment

    assert build_batch_augment(config).transforms == (Mixup(alpha=0.2, label_mode="weighted"),)
    features, targets = build_spectrogram_augment(config)(torch.randn(4, 1, 8, 10), torch.eye(4), generator=torch.Generator().manual_seed(0))
    assert features.shape == (4, 1, 8, 10) and targets.shape == (4, 4)


def test_background_noise_builds_from_its_paths(noise_dir):
    config = AugmentConfig(waveform=[{"name": "background_noise", "paths": [str(noise_dir)], "snr_db": [5, 10], "cache": True}])
    (noise,) = build_waveform_augment(config).transforms
    assert isinstance(noise, AddBackgroundNoise) and (noise.min_snr_db, noise.max_snr_db, noise.cache) == (5.0, 10.0, True)
    assert len(noise.files) == 2


def test_the_readme_table_lists_every_builtin_with_its_stages_and_defaults():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| ([a-z, ]+) \| (.*) \|$", readme, re.M)
    assert sorted(name for name, _, _ in rows) == AUGMENTATIONS.names()
    for name, stages, params in rows:
        entry = AUGMENTATIONS.get(name)
        assert tuple(stages.split(", ")) == entry.stages, name
        documented = {key: yaml.safe_load(value) for key, value in re.findall(r"`(\w+): ([^`]+)`", params)}
        defaults = resolve_spec(TransformSpec(name), entry.stages[0], owner=name).to_dict()
        assert documented.keys() == defaults.keys() - {"name", "p"}, name
        for key, value in documented.items():  # -3.01 for the pink slope: two decimals are enough in prose
            assert value == (pytest.approx(defaults[key], abs=0.01) if isinstance(value, (float, list)) else defaults[key]), (name, key)
