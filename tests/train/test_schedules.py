"""Learning-rate schedules."""

from __future__ import annotations

import math

import pytest
import torch

from srplug.errors import InputError
from srplug.train.schedules import LRFactor, build_scheduler


def test_warmup_then_constant():
    f = LRFactor("constant", 10, warmup=4)
    assert [f(k) for k in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_step_milestones():
    f = LRFactor("step", 100, milestones=[10, 20], gamma=0.1)
    assert f(9) == 1.0 and f(10) == pytest.approx(0.1) and f(20) == pytest.approx(0.01)


def test_cosine_runs_from_one_to_the_floor():
    f = LRFactor("cosine", 11, min_factor=0.1)
    assert f(0) == 1.0 and f(10) == pytest.approx(0.1)
    assert f(5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert all(f(k) >= f(k + 1) for k in range(10))
    w = LRFactor("cosine", 12, warmup=2)
    assert w(0) == 0.5 and w(2) == 1.0 and w(11) == pytest.approx(0.0)
    assert w(7) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 9)))


def test_scheduler_drives_the_optimizer_and_round_trips():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=0.1)
    sched = build_scheduler(opt, "cosine", 5, warmup=1, min_lr=0.01)
    rates = []
    for _ in range(5):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.01)
    state = sched.state_dict()
    opt2 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched2 = build_scheduler(opt2, "constant", 99)
    sched2.load_state_dict(state)
    assert sched2.lr_lambdas[0].kind == "cosine" and sched2.last_epoch == 5


def test_bad_schedules():
    with pytest.raises(InputError, match="unknown schedule 'linear'"):
        LRFactor("linear", 10)
    with pytest.raises(InputError, match="warmup < steps"):
        LRFactor("cosine", 10, warmup=10)
