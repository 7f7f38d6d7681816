"""Tiny networks for tests: nearest-neighbour enlargement with parameters to detect loading."""

from __future__ import annotations

import torch
from torch import nn


class Nearest(nn.Module):
    """``(N, C, h, w)`` -> nearest-neighbour ``(N, C, h*s, w*s)``, times ``gain`` plus ``offset``.

    ``gain`` is a ``(width,)`` parameter (its mean is used), ``offset`` a scalar parameter.
    """

    def __init__(self, scale: int, offset: float = 0.0, width: int = 1) -> None:
        super().__init__()
        self.scale = scale
        self.gain = nn.Parameter(torch.ones(width))
        self.offset = nn.Parameter(torch.tensor(offset))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest")
        return up * self.gain.mean() + self.offset
