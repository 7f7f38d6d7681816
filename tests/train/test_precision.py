"""Precision choice: the ``auto`` probe and the autocast contexts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srplug.errors import InputError
from srplug.train.precision import autocast, probe_precision, resolve_fixed
from tests.train.tiny_models import TinySR

CPU = torch.device("cpu")


def probe_inputs():
    torch.manual_seed(0)
    model = TinySR(2, 1, 8).to(memory_format=torch.channels_last)
    lr = torch.rand(4, 1, 8, 8).contiguous(memory_format=torch.channels_last)
    hr = torch.rand(4, 1, 16, 16).contiguous(memory_format=torch.channels_last)
    return model, lr, hr


def test_probe_compares_losses_and_leaves_the_model_alone():
    model, lr, hr = probe_inputs()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    result = probe_precision(model, lr, hr, nn.L1Loss(), steps=2, min_speedup=0.0)
    assert result.candidate == "bf16" and result.chosen == "bf16"  # any speed will do
    assert result.loss_change < 0.01 and result.grad_cosine > 0.99
    assert result.fp32_ms > 0 and result.low_ms > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(rng, torch.get_rng_state())
    assert result.describe().startswith("precision auto -> bf16: bf16 step ")


def test_probe_keeps_fp32_when_too_slow_or_too_different():
    model, lr, hr = probe_inputs()
    slow = probe_precision(model, lr, hr, nn.L1Loss(), steps=1, min_speedup=1e6)
    assert slow.chosen == "fp32"
    strict = probe_precision(
        model, lr, hr, nn.L1Loss(), steps=1, min_speedup=0.0, max_loss_change=0.0
    )
    assert strict.chosen == "fp32" or strict.loss_change == 0.0


def test_autocast_contexts():
    x = torch.rand(1, 1, 4, 4)
    conv = nn.Conv2d(1, 1, 3)
    with autocast("bf16", CPU):
        assert conv(x).dtype == torch.bfloat16
    with autocast("fp32", CPU):
        assert conv(x).dtype == torch.float32
    assert resolve_fixed("bf16", CPU) == "bf16"
    with pytest.raises(InputError, match="'fp16' needs a CUDA device"):
        resolve_fixed("fp16", CPU)
