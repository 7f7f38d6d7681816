"""Pixel losses between a network output and its HR target."""

from __future__ import annotations

import torch
from torch import nn

from srplug.errors import InputError

__all__ = ["CharbonnierLoss", "build_loss"]


class CharbonnierLoss(nn.Module):
    """Mean of ``sqrt((sr - hr)^2 + eps^2)`` over all elements: a smooth L1 that keeps a
    finite gradient at zero. ``sr`` and ``hr`` are float tensors of the same shape."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        if eps <= 0:
            raise InputError(f"Charbonnier eps must be positive, got {eps}")
        self.eps = eps

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        diff = sr - hr
        return torch.sqrt(diff * diff + self.eps * self.eps).mean()

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


def build_loss(kind: str, eps: float = 1e-3) -> nn.Module:
    """``"l1"`` (mean absolute error), ``"l2"`` (mean squared error) or ``"charbonnier"``;
    each maps ``(sr, hr)`` float tensors of one shape to a scalar mean."""
    if kind == "l1":
        return nn.L1Loss()
    if kind == "l2":
        return nn.MSELoss()
    if kind == "charbonnier":
        return CharbonnierLoss(eps)
    raise InputError(f"unknown loss {kind!r}: use 'l1', 'l2' or 'charbonnier'")
