"""The one rule for integer and number arguments (birdcall._validate)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from birdcall._validate import check_choice, check_float, check_int, is_int, is_number
from birdcall.errors import ParameterError


@pytest.mark.parametrize("value", [0, 3, -2, np.int64(3), np.int32(-1), np.uint8(7)])
def test_ints_and_numpy_integers_are_integers(value):
    assert is_int(value) and is_number(value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 3.0, np.float32(3.0), "3", None, [3], 3 + 0j])
def test_bools_floats_and_others_are_not_integers(value):
    assert not is_int(value)


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(2.0), 1, np.int16(2), math.inf, math.nan])
def test_numbers(value):
    assert is_number(value)


@pytest.mark.parametrize("value", [True, np.bool_(False), "1.0", None, 1j])
def test_not_numbers(value):
    assert not is_number(value)


def test_check_int_returns_a_python_int():
    value = check_int("n", np.int64(5), min=1)
    assert value == 5 and type(value) is int


@pytest.mark.parametrize(
    ("kwargs", "value", "message"),
    [
        ({"min": 1}, 0, "n must be a positive integer, got 0"),
        ({"min": 1}, True, "n must be a positive integer, got True"),
        ({"min": 0}, -1, "n must be an integer >= 0, got -1"),
        ({"min": 13, "max": 20}, 21, "n must be an integer in 13..20, got 21"),
        ({"max": 2}, 3, "n must be an integer <= 2, got 3"),
        ({}, 2.0, "n must be an integer, got 2.0"),
        ({"min": 0, "owner": "Gain"}, np.float64(1.0), "Gain: n must be an integer >= 0, got "),
    ],
)
def test_check_int_messages(kwargs, value, message):
    with pytest.raises(ParameterError) as err:
        check_int("n", value, **kwargs)
    assert str(err.value).startswith(message)


def test_check_float():
    assert check_float("x", np.int64(2), min=0.0, min_inclusive=False) == 2.0
    assert type(check_float("x", np.float32(0.5), min=0.0, max=1.0)) is float
    for bad in (0.0, True, math.nan, math.inf, "1"):
        with pytest.raises(ParameterError, match=r"^O: x must be a finite number > 0.0 and <= 1.0, got "):
            check_float("x", bad, min=0.0, max=1.0, min_inclusive=False, owner="O")


def test_check_choice():
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ParameterError, match=r"^Crop: mode must be one of \('a', 'b'\), got 'c'$"):
        check_choice("mode", "c", ("a", "b"), owner="Crop")


def test_the_rule_holds_at_call_sites():
    """NumPy integers and floats are accepted where plain ones are; bools are refused everywhere."""
    from birdcall.augment.batch.mixup import Mixup
    from birdcall.features.mfcc import delta
    from birdcall.synth.noise import pink_noise
    from birdcall.testing.signals import tone

    rng = np.random.default_rng(0)
    assert pink_noise(np.int64(8), rng=rng).shape == (8,)
    assert tone(frequency_hz=440.0, duration=0.01, sample_rate=np.int32(8000)).shape == (80,)
    assert Mixup(alpha=np.float32(0.4)).alpha == pytest.approx(0.4)
    data = np.zeros((2, 9))
    for call in (
        lambda: pink_noise(True, rng=rng),
        lambda: tone(frequency_hz=440.0, duration=0.01, sample_rate=True),
        lambda: Mixup(alpha=True),
        lambda: delta(data, order=True),
    ):
        with pytest.raises(ParameterError):
            call()
