"""Small SR networks with the structure of real ones, for tiling and export tests.

:class:`EDSRLike` is EDSR's layout (mean shift, head conv, residual blocks without batch
norm and with residual scaling, body conv + long skip, pixel-shuffle upsampler, tail conv);
``EDSRLike(scale, blocks=16, feats=64)`` is EDSR-baseline. :class:`ChannelAttentionNet` has
RCAN's channel attention (global average pooling), so its output at one pixel depends on the
whole image.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K mean, as EDSR's MeanShift


class _ResBlock(nn.Module):
    def __init__(self, feats: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(feats, feats, 3, padding=1), nn.ReLU(), nn.Conv2d(feats, feats, 3, padding=1)
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


def _upsampler(scale: int, feats: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    if scale & (scale - 1) == 0:  # powers of two: x2 steps
        for _ in range(int(math.log2(scale))):
            layers += [nn.Conv2d(feats, 4 * feats, 3, padding=1), nn.PixelShuffle(2)]
    else:
        layers += [nn.Conv2d(feats, scale * scale * feats, 3, padding=1), nn.PixelShuffle(scale)]
    return nn.Sequential(*layers)


class EDSRLike(nn.Module):
    """``(N, 3, h, w)`` RGB in [0, 1] -> ``(N, 3, h*s, w*s)``; EDSR's layout (see module doc)."""

    def __init__(
        self, scale: int, blocks: int = 16, feats: int = 64, res_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(_RGB_MEAN).view(1, 3, 1, 1))
        self.head = nn.Conv2d(3, feats, 3, padding=1)
        self.body = nn.Sequential(
            *(_ResBlock(feats, res_scale) for _ in range(blocks)),
            nn.Conv2d(feats, feats, 3, padding=1),
        )
        self.tail = nn.Sequential(_upsampler(scale, feats), nn.Conv2d(feats, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x - self.mean)
        return self.tail(x + self.body(x)) + self.mean


class ChannelAttentionNet(nn.Module):
    """``(N, C, h, w)`` -> ``(N, C, h*s, w*s)``: conv, RCAN channel attention (global average
    pool, 1x1 down, ReLU, 1x1 up, sigmoid, scale), conv, pixel shuffle, plus nearest skip."""

    def __init__(self, scale: int, channels: int = 3, feats: int = 16) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(channels, feats, 3, padding=1)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(feats, feats // 4, 1),
            nn.ReLU(),
            nn.Conv2d(feats // 4, feats, 1),
            nn.Sigmoid(),
        )
        self.tail = nn.Sequential(
            nn.Conv2d(feats, channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.head(x))
        f = f * self.attention(f)
        skip = nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest")
        return skip + 0.1 * self.tail(f)
