"""Exponential moving average of weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srplug.errors import InputError
from srplug.train.ema import ModelEMA


class WithCounter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.register_buffer("count", torch.tensor(0))


def test_update_follows_the_formula():
    model = WithCounter()
    with torch.no_grad():
        model.lin.weight.fill_(1.0)
    ema = ModelEMA(model, decay=0.9, warmup=False)
    with torch.no_grad():
        model.lin.weight.fill_(3.0)
        model.count.fill_(5)
    ema.update(model)
    assert torch.allclose(ema.module.lin.weight, torch.full((1, 2), 0.9 * 1 + 0.1 * 3))
    ema.update(model)
    assert torch.allclose(ema.module.lin.weight, torch.full((1, 2), 0.9 * 1.2 + 0.1 * 3))
    assert int(ema.module.count) == 5  # integer buffers are copied
    assert ema.updates == 2


def test_warmup_decay_and_independence_from_the_model():
    model = nn.Linear(2, 2)
    ema = ModelEMA(model, decay=0.999)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    ema.updates = 10_000
    assert ema.current_decay() == 0.999
    assert all(not p.requires_grad for p in ema.module.parameters())
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(model.weight, ema.module.weight)  # a copy, not a view


def test_state_dict_round_trip():
    model = nn.Linear(3, 1)
    ema = ModelEMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.mul_(2)
    ema.update(model)
    other = ModelEMA(nn.Linear(3, 1), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and torch.equal(other.module.weight, ema.module.weight)


def test_bad_decay():
    with pytest.raises(InputError, match=r"decay must lie in \[0, 1\)"):
        ModelEMA(nn.Linear(1, 1), decay=1.0)
