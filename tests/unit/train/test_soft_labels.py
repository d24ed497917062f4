"""Soft-label training pieces: power transform, distillation loss, weighted loss, batch sampler, windows, teacher."""

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from birdcall.data.labels import LabelSet
from birdcall.errors import ParameterError
from birdcall.features import FeatureConfig
from birdcall.train import TrainConfig
from birdcall.train.config import PseudoLabelConfig
from birdcall.train.cv import fold_config
from birdcall.train.loop import soft_label_loss
from birdcall.train.losses import build_loss, distillation_loss
from birdcall.train.soft_labels import (
    OnlineTeacher,
    PseudoBatchSampler,
    PseudoWindows,
    fold_path,
    pseudo_batches,
    pseudo_per_batch,
    transform_soft_labels,
)


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_transform_soft_labels_power_then_threshold():
    p = np.array([[0.9, 0.5, 0.2, 0.0, 1.0]], dtype=np.float32)
    out = transform_soft_labels(p, power=2.0, threshold=0.1)
    np.testing.assert_allclose(out, [[0.81, 0.25, 0.0, 0.0, 1.0]], rtol=1e-6)  # 0.2**2 = 0.04 < 0.1 -> 0
    np.testing.assert_array_equal(transform_soft_labels(p), p)  # identity by default
    assert transform_soft_labels(p, power=0.5).dtype == np.float32
    np.testing.assert_allclose(transform_soft_labels(p, power=0.5)[0, 1], math.sqrt(0.5), rtol=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_distillation_loss_matches_hand_computation(temperature):
    zs, zt = 0.5, -1.0
    qs, qt = _sigmoid(zs / temperature), _sigmoid(zt / temperature)
    bce = -(qt * math.log(qs) + (1 - qt) * math.log(1 - qs))
    entropy = -(qt * math.log(qt) + (1 - qt) * math.log(1 - qt))
    s, t = torch.tensor([[zs]]), torch.tensor([[zt]])
    assert distillation_loss(s, t, temperature=temperature, kind="bce").item() == pytest.approx(bce * temperature**2, rel=1e-5)
    assert distillation_loss(s, t, temperature=temperature, kind="kl").item() == pytest.approx((bce - entropy) * temperature**2, rel=1e-5)


def test_distillation_kl_is_zero_at_the_teacher_and_gradients_agree():
    z = torch.tensor([[2.0, -3.0, 0.1]])
    assert distillation_loss(z, z, kind="kl").item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(z, z, kind="bce").item() > 0.1  # the teacher's entropy
    grads = []
    for kind in ("bce", "kl"):
        s = torch.tensor([[0.3, 1.0, -2.0]], requires_grad=True)
        distillation_loss(s, z, temperature=3.0, kind=kind).backward()
        grads.append(s.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])
    s, t = torch.zeros_like(z).requires_grad_(True), z.clone().requires_grad_(True)
    distillation_loss(s, t).backward()
    assert t.grad is None and s.grad is not None  # the teacher gets no gradient


def test_distillation_loss_refuses_bad_arguments():
    with pytest.raises(ParameterError, match="temperature"):
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), temperature=0.0)
    with pytest.raises(ParameterError, match="'bce' or 'kl'"):
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), kind="mse")
    with pytest.raises(ParameterError, match="same shape"):
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 3))


def test_sample_weights_scale_rows_and_ones_change_nothing():
    criterion = build_loss("bce")
    logits, targets = torch.tensor([[1.0, -1.0], [0.5, 2.0]]), torch.tensor([[1.0, 0.0], [0.3, 0.8]])
    per_row = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=1)
    assert criterion(logits, targets, torch.ones(2)).item() == pytest.approx(criterion(logits, targets).item())
    expected = (per_row[0] * 1.0 + per_row[1] * 0.25).item() / 2
    assert criterion(logits, targets, torch.tensor([1.0, 0.25])).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ParameterError, match="sample_weights"):
        criterion(logits, targets, torch.ones(3))


def test_soft_label_loss_combines_hard_soft_and_teacher_terms():
    config = TrainConfig(pseudo={"labels": "x.parquet", "audio": ".", "weight": 0.5}, distill={"weight": 0.25, "temperature": 2.0})
    criterion = build_loss("bce")
    torch.manual_seed(0)
    logits, targets, teacher = torch.randn(4, 3), torch.rand(4, 3), torch.randn(3, 3)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=1)
    plain = soft_label_loss(criterion, logits, targets, n_pseudo=0, config=config)
    assert plain.item() == pytest.approx(bce.mean().item(), rel=1e-6)
    pseudo_only = soft_label_loss(criterion, logits, targets, n_pseudo=1, config=config)
    assert pseudo_only.item() == pytest.approx((bce[:3].sum() + 0.5 * bce[3]).item() / 4, rel=1e-6)
    both = soft_label_loss(criterion, logits, targets, n_pseudo=1, config=config, teacher_logits=teacher)
    kd = distillation_loss(logits[:3], teacher, temperature=2.0).item()
    expected = (0.75 * bce[:3].sum() + 0.5 * bce[3]).item() / 4 + 0.25 * kd * 3 / 4
    assert both.item() == pytest.approx(expected, rel=1e-6)


def test_pseudo_per_batch_rounds_and_keeps_both_kinds():
    def per(ratio, batch):
        return pseudo_per_batch(TrainConfig(pseudo={"labels": "x", "audio": ".", "ratio": ratio}).pseudo, batch)

    assert per(0.5, 32) == 16
    assert per(0.25, 32) == 8
    assert per(0.01, 32) == 1  # at least one
    assert per(0.99, 4) == 3  # at least one labelled item
    with pytest.raises(ParameterError, match="batch_size >= 2"):
        per(0.5, 1)


def _epochs(sampler, epochs, seed=0):
    out = []
    for epoch in range(1, epochs + 1):
        sampler.generator.manual_seed(seed + epoch)
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


def test_pseudo_batch_sampler_layout_and_coverage():
    sampler = PseudoBatchSampler(10, 7, batch_size=4, per_batch=2, generator=torch.Generator(), seed=3)
    assert len(sampler) == 5  # 10 labelled items, 2 per batch
    epochs = _epochs(sampler, 3)
    pseudo_seen = []
    for batches in epochs:
        assert len(batches) == 5
        labelled = [i for b in batches for i in b[:2]]
        assert sorted(labelled) == list(range(10))  # one pass over the labelled items per epoch
        for b in batches:
            assert all(i < 10 for i in b[:2]) and all(10 <= i < 17 for i in b[2:])
        pseudo_seen += [i - 10 for b in batches for i in b[2:]]
    # 30 pseudo draws: windows 0..6 each once before any repeats, cycle after cycle, across epochs
    for cycle in range(4):
        chunk = pseudo_seen[cycle * 7 : (cycle + 1) * 7]
        assert len(set(chunk)) == len(chunk)
    again = PseudoBatchSampler(10, 7, batch_size=4, per_batch=2, generator=torch.Generator(), seed=3)
    assert _epochs(again, 3) == epochs  # deterministic given the generator seeds: a resume draws the same


def test_pseudo_batch_sampler_ranks_split_batches_and_weights_are_used():
    full = _epochs(PseudoBatchSampler(12, 5, batch_size=4, per_batch=1, generator=torch.Generator()), 1)[0]
    ranks = [_epochs(PseudoBatchSampler(12, 5, batch_size=4, per_batch=1, generator=torch.Generator(), rank=r, world=2), 1)[0] for r in (0, 1)]
    assert ranks[0] == full[0::2] and ranks[1] == full[1::2]
    weights = np.zeros(12)
    weights[[3, 7]] = 1.0  # only two labelled items can be drawn
    drawn = _epochs(PseudoBatchSampler(12, 5, batch_size=4, per_batch=1, generator=torch.Generator(), labelled_weights=weights), 2)
    assert {i for batches in drawn for b in batches for i in b[:3]} == {3, 7}
    with pytest.raises(ParameterError, match="per_batch"):
        PseudoBatchSampler(12, 5, batch_size=4, per_batch=4, generator=torch.Generator())


def test_pseudo_batches_balance_draws_windows_of_rare_teacher_species_more_often():
    # 9 windows where the teacher hears species 0, 1 window where it hears species 1, 2 windows with none
    targets = np.zeros((12, 2), dtype=np.float32)
    targets[:9, 0] = 0.9
    targets[9, 1] = 0.6
    targets[10:, 1] = 0.4  # below 0.5: the teacher does not hear it
    pseudo = PseudoWindows([Path(f"w{i}") for i in range(12)], np.zeros(12), targets, FeatureConfig(), read=lambda path: None)
    labelled = np.eye(2, dtype=np.float32)[[0, 1] * 50]

    def draws(balance, epochs=4):
        sampler = pseudo_batches(PseudoLabelConfig(labels="l", audio="a", balance=balance), labelled, pseudo, batch_size=4, generator=torch.Generator(), seed=5)
        return np.array([i - 100 for batches in _epochs(sampler, epochs) for b in batches for i in b[2:]])

    uniform = draws(0.0)
    assert len(uniform) == 4 * 50 * 2 and np.bincount(uniform, minlength=12).min() >= 16  # each window once per cycle of 12
    # power 1: each class (species 0, species 1, none) is drawn about a third of the time: window 9 alone holds species 1
    full = draws(1.0)
    shares = np.array([np.isin(full, group).mean() for group in (range(9), [9], [10, 11])])
    assert np.allclose(shares, 1 / 3, atol=0.06), shares
    assert np.bincount(uniform, minlength=12)[9] < 40 < 100 < np.bincount(full, minlength=12)[9]  # 400 draws: 1/12 against 1/3
    assert (draws(1.0) == full).all()  # seeded by (seed, epoch): a resumed run draws the same
    with pytest.raises(ParameterError, match="pseudo_weights"):
        PseudoBatchSampler(4, 3, batch_size=4, per_batch=1, generator=torch.Generator(), pseudo_weights=np.zeros(3))
    with pytest.raises(ParameterError, match="balance"):
        PseudoLabelConfig(labels="l", audio="a", balance=-0.5)


def test_pseudo_windows_cut_the_teachers_window_and_pad_like_the_student():
    features = FeatureConfig(sample_rate=8000, clip_duration=1.0, n_fft=256, hop_length=128, n_mels=16, fmax=4000.0, pad="wrap")
    audio = {"a": np.arange(20000, dtype=np.float32), "b": np.arange(6000, dtype=np.float32)}
    ds = PseudoWindows(["a", "a", "b"], np.array([0.0, 2.0, 0.0]), np.eye(3, dtype=np.float32), features, read=audio.__getitem__)
    np.testing.assert_array_equal(ds.window(0), np.arange(8000))
    np.testing.assert_array_equal(ds.window(1), np.arange(16000, 20000).tolist() + np.arange(16000, 20000).tolist())  # end: wrapped
    np.testing.assert_array_equal(ds.window(2)[6000:], np.arange(2000))  # 0.75 s recording tiled to 1 s
    y, t = ds[1]
    assert y.shape == (8000,) and t.tolist() == [0.0, 1.0, 0.0]


class _FakeScorer:
    """A stand-in teacher: probability of species 'b' is the window's RMS, 'a' is 0.25; records what it saw."""

    def __init__(self, sample_rate):
        self.labels = LabelSet(("b", "a", "z"))
        self.features = FeatureConfig(sample_rate=sample_rate, clip_duration=1.0, n_fft=256, hop_length=128, n_mels=16, fmax=4000.0)
        self.seen = []

    def __call__(self, windows):
        self.seen.append(windows.shape)
        rms = np.sqrt(np.mean(windows.astype(np.float64) ** 2, axis=1))
        return np.stack([rms, np.full(len(windows), 0.25), np.zeros(len(windows))], axis=1).astype(np.float32)


def test_online_teacher_aligns_species_resamples_and_gives_logits():
    student = FeatureConfig(sample_rate=8000, clip_duration=1.0, n_fft=256, hop_length=128, n_mels=16, fmax=4000.0)
    fake = _FakeScorer(16000)
    teacher = OnlineTeacher(fake, LabelSet(("a", "b")), student)
    t = np.arange(8000) / 8000
    batch = torch.from_numpy(np.stack([0.5 * np.sin(2 * np.pi * 440 * t), np.zeros(8000)]).astype(np.float32))
    probs = teacher.probabilities(batch)
    assert fake.seen == [(2, 16000)]  # resampled to the teacher's rate
    np.testing.assert_allclose(probs[:, 0], 0.25)  # student order: a, b
    assert probs[0, 1] == pytest.approx(0.5 / math.sqrt(2), rel=0.02) and probs[1, 1] == 0.0
    logits = teacher(batch)
    assert logits[0, 0].item() == pytest.approx(math.log(0.25 / 0.75), rel=1e-5)
    assert torch.isfinite(logits).all()  # p = 0 is clipped, not -inf
    with pytest.raises(ParameterError, match="scores none of 1 student species"):
        OnlineTeacher(_FakeScorer(16000), LabelSet(("a", "q")), student)
    other = FeatureConfig(sample_rate=8000, clip_duration=2.0, n_fft=256, hop_length=128, n_mels=16, fmax=4000.0)
    with pytest.raises(ParameterError, match="clips of 1.0 s"):
        OnlineTeacher(_FakeScorer(8000), LabelSet(("a",)), other)


def test_fold_placeholders():
    assert fold_path("runs/pl/fold{fold}.parquet", 3) == "runs/pl/fold3.parquet"
    assert fold_path("plain.parquet", None) == "plain.parquet"
    with pytest.raises(ParameterError, match="not a K-fold run"):
        fold_path("pl{fold}.parquet", None)
    config = TrainConfig(folds=5, pseudo={"labels": "pl/fold{fold}.parquet", "audio": "u"}, distill={"teacher": "runs/t/fold{fold}/best.safetensors"})
    two = fold_config(replace(config, init_from="runs/s/fold{fold}/best.safetensors"), 2, seed=7)
    assert two.pseudo.labels == "pl/fold2.parquet" and two.distill.teacher == "runs/t/fold2/best.safetensors" and two.seed == 7
    assert two.init_from == "runs/s/fold2/best.safetensors"
    with pytest.raises(ParameterError, match="only K-fold runs"):
        TrainConfig(pseudo={"labels": "pl{fold}.parquet", "audio": "u"})


def test_config_refusals():
    with pytest.raises(ParameterError, match="audio is required"):
        TrainConfig(pseudo={"labels": "x.parquet"})
    with pytest.raises(ParameterError, match="ratio"):
        TrainConfig(pseudo={"labels": "x.parquet", "audio": ".", "ratio": 0.0})
    with pytest.raises(ParameterError, match="distill.*loss|DistillConfig.loss"):
        TrainConfig(distill={"loss": "mse"})
    with pytest.raises(ParameterError, match="power"):
        TrainConfig(pseudo={"power": 0})
    with pytest.raises(ParameterError, match="pseudo.augment: expected true or false"):
        TrainConfig(pseudo={"augment": "maybe"})
