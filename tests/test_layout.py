"""srplug.layout: only 4-D tensors change memory format, so modules with Conv3d still convert."""

from __future__ import annotations

import torch
from torch import nn

import srplug
from srplug.layout import to_memory_format


def test_4d_tensors_go_channels_last_and_5d_ones_stay() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv3d(1, 1, 3), nn.BatchNorm2d(8))
    kernel_5d = net[1].weight.detach().clone()
    assert to_memory_format(net, torch.channels_last) is net
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not net[0].weight.is_contiguous()
    assert net[1].weight.dim() == 5 and net[1].weight.is_contiguous()
    assert torch.equal(net[1].weight, kernel_5d)
    assert net[2].running_mean.dim() == 1
    to_memory_format(net, torch.contiguous_format)
    assert net[0].weight.is_contiguous()


def test_a_model_holding_a_conv3d_runs_channels_last_on_cpu() -> None:
    up = srplug.get("han", scale=2, weights=None, **srplug.info("han").smoke_options)
    assert up.model is not None
    weights = [p for p in up.model.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    assert any(p.dim() == 5 for p in up.model.parameters())
    out = up.upscale_tensor(torch.rand(1, 3, 9, 11))
    assert out.shape == (1, 3, 18, 22) and torch.isfinite(out).all()
