"""The PyTorch references against independent, literal definitions (no compiler needed)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srplug.ops import reference
from tests.ops.conftest import rel_err


def literal_esr(x: torch.Tensor, weight: torch.Tensor, s: int, reduction: str) -> torch.Tensor:
    """Loop over the output pixels: the candidates of pixel (Y, X) come from phase
    (Y % s, X % s) of the conv output at (Y // s, X // s)."""
    G = reference.REDUCTIONS[reduction]
    C = weight.shape[0] // (G * s * s)
    feats = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    n, _, h, w = feats.shape
    out = torch.empty(n, 1, h * s, w * s, dtype=x.dtype)
    for Y in range(h * s):
        for X in range(w * s):
            p = (Y % s) * s + X % s
            f = [
                feats[:, [(g * C + c) * s * s + p for c in range(C)], Y // s, X // s]
                for g in range(G)
            ]
            if reduction == "max":
                out[:, 0, Y, X] = f[0].max(dim=1).values
                continue
            z = {"tm": f[1], "tr": f[1] * f[-1], "cnn": f[1] * f[1]}[reduction]
            out[:, 0, Y, X] = (f[0] * torch.softmax(z, dim=1)).sum(dim=1)
    return out


@pytest.mark.parametrize("reduction", list(reference.REDUCTIONS))
@pytest.mark.parametrize("scale", [2, 3])
def test_esr_reference_matches_the_literal_definition(reduction: str, scale: int) -> None:
    torch.manual_seed(0)
    G = reference.REDUCTIONS[reduction]
    x = torch.randn(2, 2, 4, 5, dtype=torch.float64)
    weight = torch.randn(G * 3 * scale * scale, 2, 3, 3, dtype=torch.float64)
    got = reference.esr_upscale(x, weight, scale, reduction)
    assert got.shape == (2, 1, 4 * scale, 5 * scale)
    assert rel_err(got, literal_esr(x, weight, scale, reduction)) < 1e-12


class RcanCALayer(nn.Module):
    """RCAN's CALayer written the way the official code does (the module being replaced)."""

    def __init__(self, channel: int, reduction: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channel, channel // reduction, 1, padding=0, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channel // reduction, channel, 1, padding=0, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


def test_channel_attention_reference_matches_rcan_layer() -> None:
    torch.manual_seed(0)
    layer = RcanCALayer(32, 8).double()
    x = torch.randn(3, 32, 7, 9, dtype=torch.float64)
    skip = torch.randn_like(x)
    down, up = layer.conv_du[0], layer.conv_du[2]
    got = reference.channel_attention(x, down.weight, down.bias, up.weight, up.bias, skip)
    assert rel_err(got, layer(x) + skip) < 1e-12


@pytest.mark.parametrize("activation", reference.ACTIVATIONS)
def test_pixel_shuffle_reference(activation: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 12, 3, 5, dtype=torch.float64)
    bias = torch.randn(12, dtype=torch.float64)
    prelu = torch.rand(3, dtype=torch.float64)
    got = reference.pixel_shuffle(x, 2, bias, activation, 0.2, prelu)
    y = F.pixel_shuffle(x + bias[None, :, None, None], 2)
    want = {
        "none": y,
        "relu": y.clamp(min=0),
        "leaky_relu": torch.where(y > 0, y, 0.2 * y),
        "tanh": torch.tanh(y),
        "sigmoid": 1 / (1 + torch.exp(-y)),
        "prelu": torch.where(y > 0, y, prelu[None, :, None, None] * y),
    }[activation]
    assert rel_err(got, want) < 1e-12
