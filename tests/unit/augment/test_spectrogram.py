"""SpecAugment masks: exactly the drawn spans are filled, widths stay in bounds, masks differ per example."""

from __future__ import annotations

import pytest
import torch

from birdcall.augment import FrequencyMask, TimeMask
from birdcall.errors import ParameterError

FILL = -7.0


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("cls", "axis"), [(TimeMask, -1), (FrequencyMask, -2)])
def test_mask_fills_exactly_the_drawn_spans(cls, axis):
    x = torch.rand(8, 2, 24, 50, generator=_gen(1)) + 1.0
    t = cls(min_width=2, max_width=6, num_masks=3, fill=FILL, p=1.0)
    params = t.randomize_parameters(x, applied=torch.ones(8, dtype=torch.bool), generator=_gen(2))
    starts, widths = params["starts"], params["widths"]
    length = x.shape[axis]
    assert starts.shape == widths.shape == (8, 3)
    assert (widths >= 2).all() and (widths <= 6).all() and (starts >= 0).all() and (starts + widths <= length).all()
    out, targets = t.apply(x, None, **params)
    assert targets is None
    for b in range(8):
        expected = torch.zeros(length, dtype=torch.bool)
        for s, w in zip(starts[b].tolist(), widths[b].tolist(), strict=True):
            expected[s : s + w] = True
        masked = (out[b] == FILL).movedim(axis, -1).reshape(-1, length)
        assert torch.equal(masked.all(0), expected) and torch.equal(masked.any(0), expected)  # whole spans only
        assert torch.equal(out[b].movedim(axis, -1)[..., ~expected], x[b].movedim(axis, -1)[..., ~expected])


@pytest.mark.parametrize(("cls", "axis"), [(TimeMask, -1), (FrequencyMask, -2)])
def test_masked_count_never_exceeds_the_budget_and_differs_per_example(cls, axis):
    x = torch.ones(16, 1, 32, 64)
    y = torch.eye(16)
    out, targets = cls(max_width=5, num_masks=2, fill=0.0, p=1.0)(x, y, generator=_gen(3))
    assert targets is y
    hit = (out == 0).movedim(axis, -1).reshape(16, -1, x.shape[axis])
    assert torch.equal(hit.all(1), hit.any(1))
    counts = hit.all(1).sum(1)
    assert (counts <= 10).all() and len(set(counts.tolist())) > 1
    assert len({tuple(row.tolist()) for row in hit.all(1)}) > 8  # independent masks per example


def test_time_mask_width_capped_by_length_and_fixed_width():
    x = torch.ones(4, 1, 8, 5)
    out, _ = TimeMask(min_width=9, max_width=9, num_masks=1, p=1.0)(x, None, generator=_gen())
    assert (out == 0).all()  # the width is capped at the 5 frames
    out, _ = TimeMask(min_width=3, max_width=3, num_masks=1, p=1.0)(torch.ones(4, 1, 8, 50), None, generator=_gen())
    assert ((out == 0).all(2).all(1).sum(1) == 3).all()


def test_mask_on_waveforms_and_mean_fill():
    x = torch.arange(40.0).reshape(2, 20)
    out, _ = TimeMask(min_width=4, max_width=4, num_masks=1, fill="mean", p=1.0)(x, None, generator=_gen())
    for b in range(2):
        changed = out[b] != x[b]
        assert changed.sum() <= 4 and torch.allclose(out[b][changed], x[b].mean())
    with pytest.raises(ParameterError, match="dims"):
        FrequencyMask()(x, None, generator=_gen())


def test_mask_probability_is_per_example():
    x = torch.ones(2000, 1, 4, 30)
    out, _ = TimeMask(min_width=1, max_width=3, num_masks=1, p=0.25)(x, None, generator=_gen(7))
    assert abs((out == 0).flatten(1).any(1).float().mean().item() - 0.25) < 0.03
