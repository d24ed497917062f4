from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from birdcall.config import from_yaml, to_yaml
from birdcall.errors import ParameterError
from birdcall.train.optim import (
    OptimConfig,
    WarmupCosine,
    build_optimizer,
    build_scheduler,
    optimizer_from_config,
    param_groups_weight_decay,
    scheduler_from_config,
)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)  # weight: decay, bias: no decay
        self.bn = nn.BatchNorm2d(2)  # weight, bias: no decay
        self.norm = nn.LayerNorm(4)  # weight, bias: no decay
        self.head = nn.Linear(4, 3)  # weight: decay, bias: no decay
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 4))  # 3-D, listed in no_weight_decay
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)

    def no_weight_decay(self):
        return {"pos_embed"}


def _by_id(groups):
    return [{id(p) for p in g["params"]} for g in groups]


def test_param_groups_exclude_bias_norm_and_listed():
    model = Tiny()
    groups = param_groups_weight_decay(model, 0.05)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    decay, no_decay = _by_id(groups)
    assert decay == {id(model.conv.weight), id(model.head.weight)}
    assert len(no_decay) == 7
    expected = [model.conv.bias, model.bn.weight, model.bn.bias, model.norm.weight, model.norm.bias, model.head.bias, model.pos_embed]
    assert no_decay == {id(p) for p in expected}


@pytest.mark.parametrize(("name", "cls"), [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)])
def test_build_optimizer_groups(name, cls):
    model = Tiny()
    opt = build_optimizer(model, name=name, lr=0.1, weight_decay=0.01, momentum=0.8)
    assert type(opt) is cls
    assert [len(g["params"]) for g in opt.param_groups] == [2, 7]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]
    assert all(g["lr"] == 0.1 for g in opt.param_groups)
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.8


def test_build_optimizer_without_exclusion_decays_every_trainable_parameter():
    model = Tiny()
    opt = build_optimizer(model, name="adamw", lr=0.1, weight_decay=0.01, no_decay_bias_norm=False)
    assert len(opt.param_groups) == 1 and len(opt.param_groups[0]["params"]) == 9
    assert opt.param_groups[0]["weight_decay"] == 0.01


def test_build_optimizer_from_parameters_uses_ndim_rule():
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    opt = build_optimizer(model.parameters(), name="adamw", lr=0.1, weight_decay=0.01)
    assert [len(g["params"]) for g in opt.param_groups] == [1, 3]
    groups = [{"params": list(model.parameters()), "weight_decay": 0.5}]
    assert build_optimizer(groups, name="sgd", lr=0.1).param_groups[0]["weight_decay"] == 0.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": -1e-3},
        {"lr": 0.0},
        {"lr": 1e-3, "name": "lamb"},
        {"lr": 1e-3, "weight_decay": -0.1},
        {"lr": 1e-3, "name": "sgd", "momentum": 1.0},
    ],
)
def test_build_optimizer_bad_arguments_raise(kwargs):
    with pytest.raises(ParameterError):
        build_optimizer(Tiny(), **kwargs)


def test_build_optimizer_without_trainable_parameters_raises():
    with pytest.raises(ParameterError, match="no trainable"):
        build_optimizer(nn.Linear(2, 2).requires_grad_(False), lr=0.1)


def _sched(warmup=4, total=12, min_lr_ratio=0.1, lr=2.0):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    return opt, build_scheduler(opt, warmup_steps=warmup, total_steps=total, min_lr_ratio=min_lr_ratio)


def _lrs(opt, sched, n):
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_scheduler_exact_values():
    opt, sched = _sched(warmup=4, total=12, min_lr_ratio=0.1, lr=2.0)
    lrs = _lrs(opt, sched, 15)
    assert lrs[0] == 0.0  # step 0
    assert lrs[1] == pytest.approx(0.5) and lrs[3] == pytest.approx(1.5)  # linear warm-up 2 * s / 4
    assert lrs[4] == pytest.approx(2.0)  # end of warm-up: the peak
    assert lrs[8] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))  # middle of the cosine: halfway to the floor
    assert lrs[12] == pytest.approx(0.2) and lrs[14] == pytest.approx(0.2)  # end and after: lr * min_lr_ratio
    s = 6
    assert lrs[s] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - 4) / 8))))
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))


def test_scheduler_without_warmup_starts_at_peak():
    opt, sched = _sched(warmup=0, total=10, min_lr_ratio=0.0, lr=1.0)
    lrs = _lrs(opt, sched, 11)
    assert lrs[0] == 1.0 and lrs[5] == pytest.approx(0.5) and lrs[10] == 0.0


def test_scheduler_state_dict_round_trip_continues_identically():
    def make():
        model = nn.Linear(3, 2)
        with torch.no_grad():
            model.weight.copy_(torch.linspace(-1.0, 1.0, 6).reshape(2, 3))
            model.bias.fill_(0.3)
        opt = build_optimizer(model, name="adamw", lr=0.1, weight_decay=0.01)
        return model, opt, build_scheduler(opt, warmup_steps=3, total_steps=20, min_lr_ratio=0.05)

    def train(model, opt, sched, n):
        out = []
        for _ in range(n):
            loss = model(torch.ones(1, 3)).pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            out.append(opt.param_groups[0]["lr"])
        return out

    reference_model, opt, sched = make()
    reference = train(reference_model, opt, sched, 12)

    model, opt, sched = make()
    train(model, opt, sched, 5)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # the schedule's state is plain data
    assert state["sched"]["lr_lambdas"][0] == {"warmup_steps": 3, "total_steps": 20, "min_lr_ratio": 0.05}
    model2, opt2, _ = make()
    sched2 = build_scheduler(opt2, warmup_steps=1, total_steps=2)  # different schedule: the saved one wins
    model2.load_state_dict(state["model"])
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    assert train(model2, opt2, sched2, 7) == reference[5:]
    for name, p in model2.state_dict().items():
        assert torch.equal(p, reference_model.state_dict()[name])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warmup_steps": 11, "total_steps": 10},
        {"warmup_steps": -1, "total_steps": 10},
        {"warmup_steps": 0, "total_steps": 0},
        {"warmup_steps": 1.5, "total_steps": 10},
        {"warmup_steps": 1, "total_steps": 10, "min_lr_ratio": 1.5},
    ],
)
def test_build_scheduler_bad_arguments_raise(kwargs):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ParameterError):
        build_scheduler(opt, **kwargs)


def test_warmup_equal_total_is_pure_warmup():
    fn = WarmupCosine(4, 4, 0.25)
    assert [fn(s) for s in range(6)] == [0.0, 0.25, 0.5, 0.75, 0.25, 0.25]


def test_optim_config_round_trips_and_builds(tmp_path):
    config = OptimConfig(optimizer="sgd", lr=0.05, weight_decay=1e-4, momentum=0.85, no_decay_bias_norm=False, warmup_epochs=0.5, min_lr_ratio=0.01)

    @dataclass(frozen=True)
    class Outer:
        optim: OptimConfig = field(default_factory=OptimConfig)

    to_yaml(Outer(optim=config), tmp_path / "c.yaml")
    assert from_yaml(Outer, tmp_path / "c.yaml").optim == config
    model = Tiny()
    opt = optimizer_from_config(model, config)
    assert isinstance(opt, torch.optim.SGD) and len(opt.param_groups) == 1 and opt.param_groups[0]["momentum"] == 0.85
    sched = scheduler_from_config(opt, config, steps_per_epoch=10, epochs=3)
    fn = sched.lr_lambdas[0]
    assert (fn.warmup_steps, fn.total_steps, fn.min_lr_ratio) == (5, 30, 0.01)
    long_warmup = OptimConfig(warmup_epochs=5.0)
    assert scheduler_from_config(optimizer_from_config(model, long_warmup), long_warmup, steps_per_epoch=4, epochs=2).lr_lambdas[0].warmup_steps == 8


@pytest.mark.parametrize("kwargs", [{"lr": -1.0}, {"optimizer": "rmsprop"}, {"warmup_epochs": -1.0}, {"min_lr_ratio": 2.0}, {"momentum": -0.1}])
def test_optim_config_validates(kwargs):
    with pytest.raises(ParameterError):
        OptimConfig(**kwargs)
