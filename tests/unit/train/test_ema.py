from __future__ import annotations

import io
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from birdcall.config import from_yaml, to_yaml
from birdcall.errors import ParameterError
from birdcall.train.ema import EmaConfig, ModelEma, ema_from_config


class Scalar(nn.Module):
    """One float64 parameter and one buffer."""

    def __init__(self, value: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([value], dtype=torch.float64))
        self.register_buffer("count", torch.tensor([0.0], dtype=torch.float64))

    def forward(self, x):
        return x * self.w


def test_constant_decay_matches_closed_form():
    model = Scalar(2.0)
    ema = ModelEma(model, decay=0.9, warmup=False)
    values = [1.0, -3.0, 0.5, 4.0, 10.0]
    expected = 2.0
    for v in values:
        model.w.data.fill_(v)
        ema.update(model)
        expected = 0.9 * expected + 0.1 * v
    # closed form of the recursion: d^n * w0 + sum_k (1 - d) d^(n-1-k) w_k
    n = len(values)
    closed = 0.9**n * 2.0 + sum(0.1 * 0.9 ** (n - 1 - k) * v for k, v in enumerate(values))
    assert ema.module.w.item() == pytest.approx(closed, rel=1e-12)
    assert ema.module.w.item() == pytest.approx(expected, rel=1e-12)
    assert ema.num_updates == n

    constant = Scalar(0.0)
    ema = ModelEma(constant, decay=0.9, warmup=False)
    constant.w.data.fill_(1.0)
    for _ in range(7):
        ema.update(constant)
    assert ema.module.w.item() == pytest.approx(1 - 0.9**7, rel=1e-12)  # w_n = d^n w_0 + (1 - d^n) w


def test_warmup_decay_matches_closed_form():
    model = Scalar(0.0)
    ema = ModelEma(model, decay=0.5, warmup=True)
    model.w.data.fill_(1.0)
    decays = [min(0.5, (1 + k) / (10 + k)) for k in range(20)]
    assert decays[:2] == [0.1, 2 / 11] and decays[-1] == 0.5
    for k, d in enumerate(decays):
        assert ema.current_decay() == pytest.approx(d)
        ema.update(model)
    product = 1.0
    for d in decays:
        product *= d
    assert ema.module.w.item() == pytest.approx(1.0 - product, rel=1e-12)  # e_n = prod(d_k) * 0 + (1 - prod(d_k)) * 1


def test_buffers_are_copied_not_averaged():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEma(model, decay=0.99, warmup=False)
    model.train()
    model(torch.randn(8, 2, generator=torch.Generator().manual_seed(0)) * 5 + 3)
    ema.update(model)
    bn, ema_bn = model[1], ema.module[1]
    assert torch.equal(ema_bn.running_mean, bn.running_mean) and torch.equal(ema_bn.running_var, bn.running_var)
    assert ema_bn.num_batches_tracked.item() == 1


def test_module_is_eval_frozen_and_untouched_by_backward():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    ema = ModelEma(model, decay=0.9)
    assert not ema.module.training
    assert all(not p.requires_grad for p in ema.module.parameters())
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    assert all(p.grad is None for p in ema.module.parameters())
    for k, v in ema.module.state_dict().items():
        assert torch.equal(v, before[k])
    assert ema.module[0].weight.data_ptr() != model[0].weight.data_ptr()
    with torch.no_grad():
        x = torch.ones(2, 3)
        assert torch.equal(ema.module(x), ema.module(x))  # dropout is off


def test_state_dict_round_trip_resumes_exactly():
    def run(ema, model, values):
        for v in values:
            model.w.data.fill_(v)
            model.count += 1
            ema.update(model)

    values = [float(v) for v in range(10)]
    model = Scalar(5.0)
    reference = ModelEma(model, decay=0.8, warmup=True)
    run(reference, model, values)

    model = Scalar(5.0)
    ema = ModelEma(model, decay=0.8, warmup=True)
    run(ema, model, values[:4])
    buffer = io.BytesIO()
    torch.save(ema.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    resumed = ModelEma(model, decay=0.8, warmup=True)  # starts from the current model weights...
    resumed.load_state_dict(state)  # ...then the saved average and update count replace them
    assert resumed.num_updates == 4
    run(resumed, model, values[4:])
    assert resumed.num_updates == reference.num_updates == 10
    assert torch.equal(resumed.module.w, reference.module.w)
    assert torch.equal(resumed.module.count, reference.module.count)


def test_update_with_a_different_model_raises():
    ema = ModelEma(Scalar(), decay=0.9)
    with pytest.raises(ParameterError, match="differ"):
        ema.update(nn.Linear(1, 1))
    with pytest.raises(ParameterError):
        ema.load_state_dict({"module": {}})


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1, 1.5])
def test_bad_decay_raises(decay):
    with pytest.raises(ParameterError):
        ModelEma(Scalar(), decay=decay)


def test_ema_config_round_trips_and_builds(tmp_path):
    @dataclass(frozen=True)
    class Outer:
        ema: EmaConfig = field(default_factory=EmaConfig)

    config = EmaConfig(ema_decay=0.999, ema_warmup=False)
    to_yaml(Outer(ema=config), tmp_path / "c.yaml")
    assert from_yaml(Outer, tmp_path / "c.yaml").ema == config
    ema = ema_from_config(Scalar(), config)
    assert isinstance(ema, ModelEma) and ema.decay == 0.999 and not ema.warmup
    assert ema_from_config(Scalar(), EmaConfig()) is None  # ema_decay 0 disables
    with pytest.raises(ParameterError):
        EmaConfig(ema_decay=1.0)
