"""Every field of TrainConfig and of the configs nested in it (FeatureConfig, AugmentConfig), and of the other
training configs, refuses a bad value with a one-line ParameterError naming the key: from YAML/dicts and on
direct construction alike. Valid values, the defaults and the shipped recipes still load."""

from __future__ import annotations

import dataclasses
import math
import types
import typing

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from birdcall.augment import AugmentConfig
from birdcall.data.soundscape import WindowMixConfig
from birdcall.config import apply_overrides, from_dict, from_yaml, to_dict, to_yaml
from birdcall.errors import ParameterError
from birdcall.features import FeatureConfig
from birdcall.models.cnn import ModelConfig
from birdcall.train import TrainConfig
from birdcall.train.config import DataConfig, NetConfig
from birdcall.train.ema import EmaConfig
from birdcall.train.losses import LossConfig
from birdcall.train.optim import OptimConfig

NESTED = {"features": FeatureConfig, "augment": AugmentConfig, "mix": WindowMixConfig, "net": NetConfig, "data": DataConfig}
# numeric fields where a negative value is legitimate (gains, SNRs and shifts in dB/seconds, a mask fill value)
NEGATIVE_OK = {"noise_min_snr_db", "noise_max_snr_db", "mix_min_gain_db", "mix_max_gain_db", "snr_db", "background_db"}
# string fields that take one of a few names
CHOICES = {"pool", "select", "crop", "loss", "optimizer", "device", "scale", "normalize", "pad", "channels", "rnn_type"}
# fields that are probabilities or fractions bounded by 1 (AugmentConfig's lists of transforms: tests/unit/augment)
AT_MOST_ONE = {"noise_p", "mix_p", "val_fraction", "secondary_weight", "ema_decay", "label_smoothing", "drop_rate", "drop_path_rate",
               "momentum", "min_lr_ratio", "focal_alpha", "preemphasis", "p", "min_overlap_fraction"}


def _options(hint) -> tuple[tuple, bool]:
    """(non-None types of a field, whether None is allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        return tuple(a for a in args if a is not type(None)), type(None) in args
    return (hint,), False


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


WORDS = st.text(min_size=1, max_size=8).filter(_not_a_number)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
CONTAINERS = st.one_of(st.lists(st.integers(0, 3), min_size=1, max_size=3), st.dictionaries(st.sampled_from("ab"), st.integers(), min_size=1))


def bad_values(key: str, hint) -> st.SearchStrategy:
    """Values that must be refused for a field ``key`` of type ``hint``."""
    (kind, *_), none_ok = _options(hint)
    out = [] if none_ok else [st.none()]
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):  # a nested config: a number, a word, a list, a flag
        return st.one_of(st.none(), st.integers(), st.floats(), WORDS, st.lists(st.integers(), min_size=1), st.booleans())
    if origin is tuple:
        args = typing.get_args(kind)
        element = args[0]
        out += [st.integers(), st.dictionaries(st.sampled_from("ab"), st.integers(), min_size=1)]
        if element is float:
            out += [st.tuples(NON_FINITE, st.floats(-1, 1)).map(list), st.lists(st.floats(-1, 1), min_size=3, max_size=4), WORDS]
        else:
            out += [st.lists(st.integers(), min_size=1, max_size=3)]
        return st.one_of(out)
    if kind is bool:
        return st.one_of(*out, st.integers(), st.floats(allow_nan=False), WORDS, CONTAINERS)
    if kind is str:
        out += [st.integers(), st.floats(allow_nan=False), st.booleans(), CONTAINERS]
        if key in CHOICES:
            out.append(st.just("not-one-of-the-names"))
        return st.one_of(out)
    # numbers
    out += [NON_FINITE, WORDS, CONTAINERS, st.booleans()]
    if kind is int:
        out.append(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()))
    if key not in NEGATIVE_OK:
        out.append(st.integers(max_value=-1) if kind is int else st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False))
    if key in AT_MOST_ONE:
        out.append(st.floats(min_value=1.0 + 1e-6, max_value=1e9))
    return st.one_of(out)


def _fields(cls) -> list[tuple[str, object]]:
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]


TRAIN_FIELDS = [(None, key, hint) for key, hint in _fields(TrainConfig)] + [
    (outer, key, hint) for outer, cls in NESTED.items() for key, hint in _fields(cls)
]


@pytest.mark.parametrize(("outer", "key", "hint"), TRAIN_FIELDS, ids=[f"{o}.{k}" if o else k for o, k, _ in TRAIN_FIELDS])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_train_config_field_refuses_bad_values_naming_the_key(outer, key, hint, data):
    value = data.draw(bad_values(key, hint), label="value")
    mapping = {key: value} if outer is None else {outer: {key: value}}
    with pytest.raises(ParameterError) as info:  # from a YAML recipe or key=value overrides
        from_dict(TrainConfig, mapping)
    message = str(info.value)
    assert key in message and "\n" not in message, message
    owner = TrainConfig if outer is None else NESTED[outer]
    with pytest.raises(ParameterError) as info:  # and when constructed in Python
        owner(**{key: value})
    assert key in str(info.value) and "\n" not in str(info.value)


OTHER_CONFIGS = {ModelConfig: {"num_classes": 3}, OptimConfig: {}, LossConfig: {}, EmaConfig: {}}
OTHER_FIELDS = [(cls, key, hint) for cls in OTHER_CONFIGS for key, hint in _fields(cls)]


@pytest.mark.parametrize(("cls", "key", "hint"), OTHER_FIELDS, ids=[f"{c.__name__}.{k}" for c, k, _ in OTHER_FIELDS])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_the_other_training_configs_refuse_bad_values_naming_the_key(cls, key, hint, data):
    value = data.draw(bad_values(key, hint), label="value")
    with pytest.raises(ParameterError) as info:
        cls(**{**OTHER_CONFIGS[cls], key: value})
    assert key in str(info.value) or key.split("_")[-1] in str(info.value), str(info.value)
    with pytest.raises(ParameterError):
        from_dict(cls, {**OTHER_CONFIGS[cls], key: value})


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["grad_clip=-1"], r"TrainConfig\.grad_clip must be >= 0 \(0 disables clipping\), got -1\.0"),
        (["lr=.nan"], r"TrainConfig\.optim\.lr: must be a finite number, got nan"),  # old flat names still work
        (["optim.lr=.inf"], r"TrainConfig\.optim\.lr: must be a finite number, got inf"),
        (["noise_p=1.5"], r"override 'augment\.background_noise_p': AugmentConfig\.background_noise_p must be in \[0, 1\], got 1\.5"),
        (["augment.gain_p=2"], r"override 'augment\.gain_p': AugmentConfig\.gain_p must be in \[0, 1\], got 2\.0"),  # old names
        (["augment.waveform.gain.p=2"], r"TrainConfig\.augment: AugmentConfig\.waveform\[1\]\.p must be in \[0, 1\], got 2\.0"),
        (["augment.waveform.gain.gain_db=[6, -6]"], r"TrainConfig\.augment: AugmentConfig\.waveform\[1\]\.gain_db: Gain: min_gain_db \(6\.0\) > max_gain_db"),
        (["optim.warmup_epochs=-1"], r"TrainConfig\.optim: OptimConfig: warmup_epochs must be >= 0"),
        (["data.mix_p=2"], r"TrainConfig\.data: DataConfig\.mix_p must be in \[0, 1\], got 2\.0"),
        (["num_workers=-2"], r"TrainConfig\.num_workers must be >= 0, got -2"),
        (["features=5"], r"TrainConfig\.features: expected FeatureConfig \(a mapping\), got 5"),
        (["epochs=[1, 2]"], r"TrainConfig\.epochs: expected an integer, got \[1, 2\]"),
        (["epochs={a: 1}"], r"TrainConfig\.epochs: expected an integer, got \{'a': 1\}"),
        (["features.n_mels=many"], r"TrainConfig\.features\.n_mels: expected an integer, got 'many'"),
        (["seed=-1"], r"TrainConfig\.seed must be >= 0, got -1"),
    ],
)
def test_issue_examples_are_one_line_parameter_errors(overrides, expected):
    with pytest.raises(ParameterError, match=expected):
        apply_overrides(TrainConfig(), overrides)


def test_grad_clip_zero_still_means_off_and_direct_construction_is_checked():
    assert TrainConfig(grad_clip=0).grad_clip == 0.0  # 0 disables clipping, as before
    with pytest.raises(ParameterError, match="grad_clip"):
        TrainConfig(grad_clip=-1)
    with pytest.raises(ParameterError, match="features"):
        TrainConfig(features=5)
    assert TrainConfig(features={"n_mels": 64}).features == FeatureConfig(n_mels=64)  # a mapping is read as the config
    assert isinstance(TrainConfig(optim={"lr": 1}).optim.lr, float) and TrainConfig(epochs=2.0).epochs == 2


DEFAULTS = [TrainConfig(), NetConfig(), DataConfig(), FeatureConfig(), AugmentConfig(), ModelConfig(num_classes=3), OptimConfig(), LossConfig(), EmaConfig()]


@pytest.mark.parametrize("config", DEFAULTS, ids=lambda c: type(c).__name__)
def test_every_default_round_trips(config, tmp_path):
    assert from_dict(type(config), to_dict(config)) == config
    to_yaml(config, tmp_path / "c.yaml")
    assert from_yaml(type(config), tmp_path / "c.yaml") == config


UNIT = st.floats(0.0, 1.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    lr=st.floats(1e-6, 10.0), epochs=st.integers(1, 1000), grad_clip=st.floats(0.0, 100.0), noise_p=UNIT, mix_p=UNIT,
    warmup=st.floats(0.0, 10.0), workers=st.integers(0, 16), gain_p=UNIT, n_mels=st.integers(8, 256), yaml_strings=st.booleans(),
)  # fmt: skip
@pytest.mark.integration
def test_valid_values_load_and_round_trip(lr, epochs, grad_clip, noise_p, mix_p, warmup, workers, gain_p, n_mels, yaml_strings):
    data = {"lr": lr, "epochs": epochs, "grad_clip": grad_clip, "noise_p": noise_p, "mix_p": mix_p, "warmup_epochs": warmup,
            "num_workers": workers, "augment": {"gain_p": gain_p}, "features": {"n_mels": n_mels}}  # fmt: skip
    if yaml_strings:  # YAML 1.1 reads 2e-3 as a string: numbers may arrive as text
        data = {k: (repr(v) if isinstance(v, float) else v) for k, v in data.items()}
    config = from_dict(TrainConfig, data)
    assert config.optim.lr == pytest.approx(lr) and config.epochs == epochs
    assert [s["p"] for s in config.augment.waveform if s.name == "gain"] == ([float(gain_p)] if float(gain_p) > 0 else [])
    assert from_dict(TrainConfig, yaml.safe_load(yaml.safe_dump(to_dict(config)))) == config
