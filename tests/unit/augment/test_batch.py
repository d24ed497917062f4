"""Mixup and CutMix: what is mixed, by how much, and what happens to the labels."""

from __future__ import annotations

import pytest
import torch

from birdcall.augment import CutMix, Mixup


def _constant_batch(batch: int, *shape: int) -> torch.Tensor:
    """Example ``i`` is filled with ``i + 1``, so every output value tells which examples it came from."""
    return torch.stack([torch.full(shape, float(i + 1)) for i in range(batch)])


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_mixup_weighted_labels_match_the_mixing_weights():
    x, y = _constant_batch(6, 20), torch.eye(6)
    mixed, targets = Mixup(alpha=0.4, label_mode="weighted", p=1.0)(x, y, generator=_gen())
    assert mixed.shape == x.shape and targets.shape == y.shape
    torch.testing.assert_close(targets.sum(1), torch.ones(6))
    for i in range(6):
        lam = targets[i, i]
        others = [j for j in range(6) if j != i and targets[i, j] > 0]
        assert len(others) <= 1  # one partner, never itself
        j = others[0] if others else (i + 1) % 6
        torch.testing.assert_close(mixed[i], lam * x[i] + (1 - lam) * x[j])
        torch.testing.assert_close(targets[i, j], 1 - lam)


def test_mixup_union_labels_are_the_max_and_mix_the_same_audio():
    x, y = _constant_batch(6, 20), torch.eye(6)
    weighted = Mixup(label_mode="weighted", p=1.0)(x, y, generator=_gen(3))
    union = Mixup(label_mode="union", p=1.0)(x, y, generator=_gen(3))
    assert torch.equal(weighted[0], union[0])
    assert set(union[1].unique().tolist()) == {0.0, 1.0} and union[1].sum(1).tolist() == [2.0] * 6
    assert torch.equal(union[1] > 0, weighted[1] > 0)
    assert torch.equal(x, _constant_batch(6, 20)) and torch.equal(y, torch.eye(6))  # inputs untouched


def test_mixup_is_per_example_with_probability_p():
    x, y = torch.randn(1000, 4, generator=_gen(1)), torch.eye(1000)[:, :8]
    mixed, _ = Mixup(alpha=1.0, p=0.3)(x, y, generator=_gen(2))
    changed = (mixed != x).any(dim=1).float().mean().item()
    assert abs(changed - 0.3) < 0.05


def test_mixup_weights_follow_beta():
    t = Mixup(alpha=0.4, p=1.0)
    lam = t.randomize_parameters(torch.zeros(4000, 2), applied=torch.ones(4000, dtype=torch.bool), generator=_gen())[
        "lam"
    ]
    assert abs(lam.mean().item() - 0.5) < 0.03  # Beta(a, a) is symmetric
    assert abs(lam.var().item() - 0.25 / (2 * 0.4 + 1)) < 0.01  # var = 1 / (4 (2a + 1))


def test_cutmix_waveform_pastes_one_segment_labels_by_length():
    x, y = _constant_batch(5, 100), torch.eye(5)
    mixed, targets = CutMix(alpha=1.0, label_mode="weighted", p=1.0)(x, y, generator=_gen(4))
    for i in range(5):
        foreign = torch.nonzero(mixed[i] != x[i]).flatten()
        if len(foreign):
            assert foreign[-1] - foreign[0] + 1 == len(foreign)  # one contiguous segment
            j = int(mixed[i, foreign[0]].item()) - 1
            assert j != i and torch.all(mixed[i, foreign] == j + 1)
            torch.testing.assert_close(targets[i, j], torch.tensor(len(foreign) / 100))
        torch.testing.assert_close(targets[i, i], torch.tensor(1 - len(foreign) / 100))


def test_cutmix_union_labels():
    x, y = _constant_batch(8, 50), torch.eye(8)
    mixed, targets = CutMix(label_mode="union", p=1.0)(x, y, generator=_gen(5))
    for i in range(8):
        pasted = (mixed[i] != x[i]).any().item()
        assert targets[i].sum().item() == (2.0 if pasted else 1.0) and targets[i, i] == 1.0


@pytest.mark.parametrize("cut_frequency", [True, False])
def test_cutmix_spectrogram_pastes_a_box_labels_by_area(cut_frequency):
    x, y = _constant_batch(6, 2, 16, 40), torch.eye(6)
    mixed, targets = CutMix(alpha=1.0, cut_frequency=cut_frequency, p=1.0)(x, y, generator=_gen(6))
    for i in range(6):
        foreign = mixed[i] != x[i]  # (C, F, T)
        assert torch.equal(foreign[0], foreign[1])  # the same box in every channel
        rows, cols = torch.nonzero(foreign[0].any(1)).flatten(), torch.nonzero(foreign[0].any(0)).flatten()
        if len(rows):
            assert foreign[0].sum() == len(rows) * len(cols)  # a full rectangle...
            assert rows[-1] - rows[0] + 1 == len(rows) and cols[-1] - cols[0] + 1 == len(cols)  # ...in one piece
            if not cut_frequency:
                assert len(rows) == 16
        area = foreign[0].float().mean()
        torch.testing.assert_close(targets[i, i], 1 - area)
        torch.testing.assert_close(targets[i].sum(), torch.tensor(1.0))


def test_batch_of_one_is_left_alone():
    x, y = torch.randn(1, 10), torch.ones(1, 3)
    for t in (Mixup(p=1.0), CutMix(p=1.0)):
        out, targets = t(x, y, generator=_gen())
        assert torch.equal(out, x) and torch.equal(targets, y)
