"""Compose, OneOf and SomeOf: order, probabilities (statistically, with a fixed seed), both kinds of transform."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from birdcall.augment import Compose, Gain, Mixup, OneOf, SomeOf, TimeMask, transform_from_dict
from birdcall.errors import ParameterError

SAMPLE_RATE = 16_000
X = np.full(8, 0.1, dtype=np.float32)


def _gain_db(out: np.ndarray) -> float:
    return round(20 * math.log10(float(out[0]) / 0.1), 3)


def _gain(db: float) -> Gain:
    return Gain(min_gain_db=db, max_gain_db=db, p=1.0)


def test_compose_applies_all_in_order_with_probability_p():
    rng = np.random.default_rng(0)
    t = Compose([_gain(1.0), _gain(2.0), Gain(min_gain_db=4.0, max_gain_db=4.0, p=0.5)], p=0.6)
    seen = Counter(_gain_db(t(X, sample_rate=SAMPLE_RATE, rng=rng)) for _ in range(3000))
    assert set(seen) == {0.0, 3.0, 7.0}
    assert (
        abs(seen[0.0] / 3000 - 0.4) < 0.03 and abs(seen[3.0] / 3000 - 0.3) < 0.03 and abs(seen[7.0] / 3000 - 0.3) < 0.03
    )
    assert Compose([])(X, sample_rate=SAMPLE_RATE, rng=rng) is X


def test_one_of_picks_one_uniformly_or_by_weight():
    rng = np.random.default_rng(1)
    uniform = Counter(
        _gain_db(OneOf([_gain(1.0), _gain(2.0), _gain(3.0)])(X, sample_rate=SAMPLE_RATE, rng=rng)) for _ in range(3000)
    )
    assert set(uniform) == {1.0, 2.0, 3.0} and all(abs(c / 3000 - 1 / 3) < 0.03 for c in uniform.values())
    weighted = OneOf([_gain(1.0), _gain(2.0), _gain(3.0)], weights=(1, 0, 3), p=0.5)
    seen = Counter(_gain_db(weighted(X, sample_rate=SAMPLE_RATE, rng=rng)) for _ in range(4000))
    assert seen[2.0] == 0 and abs(seen[0.0] / 4000 - 0.5) < 0.03 and abs(seen[3.0] / 4000 - 0.375) < 0.03


def test_some_of_picks_k_distinct_uniformly():
    rng = np.random.default_rng(2)
    t = SomeOf((1, 2), [_gain(1.0), _gain(2.0), _gain(4.0)])  # every subset has a distinct total
    seen = Counter(_gain_db(t(X, sample_rate=SAMPLE_RATE, rng=rng)) for _ in range(6000))
    singles, pairs = {1.0, 2.0, 4.0}, {3.0, 5.0, 6.0}
    assert set(seen) == singles | pairs
    assert all(abs(seen[v] / 6000 - 1 / 6) < 0.03 for v in singles | pairs)  # k uniform, then subsets uniform
    everything = SomeOf((0, None), [_gain(1.0), _gain(2.0)])
    assert {_gain_db(everything(X, sample_rate=SAMPLE_RATE, rng=rng)) for _ in range(200)} == {0.0, 1.0, 2.0, 3.0}
    assert _gain_db(SomeOf(2, [_gain(1.0), _gain(2.0)])(X, sample_rate=SAMPLE_RATE, rng=rng)) == 3.0


def test_compose_of_batch_transforms_uses_the_torch_generator():
    x, y = torch.randn(4, 1, 8, 20), torch.eye(4)
    t = Compose([OneOf([Mixup(p=1.0), TimeMask(p=1.0)]), TimeMask(max_width=3, p=0.5)])
    a = t(x, y, generator=torch.Generator().manual_seed(0))
    b = t(x, y, generator=torch.Generator().manual_seed(0))
    assert isinstance(a, tuple) and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    draws = {bool((t(x, y, generator=torch.Generator().manual_seed(s))[1] != y).any()) for s in range(20)}
    assert draws == {True, False}  # OneOf picks Mixup (labels change) or TimeMask (labels kept)


def test_nested_round_trip_and_errors():
    t = Compose(
        [OneOf([_gain(1.0), _gain(2.0)], weights=[1, 2], p=0.5), SomeOf((1, 2), [_gain(3.0), _gain(4.0)])], p=0.9
    )
    assert transform_from_dict(t.to_dict()) == t and repr(transform_from_dict(t.to_dict())) == repr(t)
    with pytest.raises(ParameterError, match="rng"):
        t(X, sample_rate=SAMPLE_RATE)
    with pytest.raises(ParameterError, match="birdcall transform"):
        Compose([lambda x: x])
    with pytest.raises(ParameterError):
        OneOf([])
    with pytest.raises(ParameterError):
        OneOf([_gain(1.0)], weights=[1, 2])
    for bad in (3, (2, 1), (-1, 1), "2"):
        with pytest.raises(ParameterError):
            SomeOf(bad, [_gain(1.0), _gain(2.0)])


def test_same_seed_same_choices():
    t = SomeOf((1, 3), [_gain(1.0), _gain(2.0), _gain(4.0)], p=0.8)

    def run(seed: int) -> list[float]:
        rng = np.random.default_rng(seed)
        return [_gain_db(t(X, sample_rate=SAMPLE_RATE, rng=rng)) for _ in range(50)]

    assert run(5) == run(5) and run(5) != run(6)
