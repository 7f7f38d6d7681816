"""Pixel losses between a network output and its HR target."""

from __future__ import annotations

import torch
from torch import nn

from srplug.errors import InputError

__all__ = ["BorderWeightedLoss", "CharbonnierLoss", "build_loss", "elementwise"]


class CharbonnierLoss(nn.Module):
    """Mean of ``sqrt((sr - hr)^2 + eps^2)`` over all elements: a smooth L1 that keeps a
    finite gradient at zero. ``sr`` and ``hr`` are float tensors of the same shape."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        if eps <= 0:
            raise InputError(f"Charbonnier eps must be positive, got {eps}")
        self.eps = eps

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return elementwise("charbonnier", sr, hr, self.eps).mean()

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


class BorderWeightedLoss(nn.Module):
    """The ``kind`` loss (see :func:`elementwise`) of float ``(B, C, H, W)`` images, where
    a frame ``border`` pixels wide on each side weighs ``weight`` against 1 inside: the
    weighted mean ``sum(m * e) / sum(m)`` of the per-element loss ``e``, a scalar.
    ``weight = 0`` leaves the frame out."""

    def __init__(self, kind: str, border: int, weight: float = 0.0, eps: float = 1e-3) -> None:
        super().__init__()
        if border < 1:
            raise InputError(f"border must be 1 or more, got {border}")
        if not 0.0 <= weight < 1.0:
            raise InputError(f"border weight must be in [0, 1), got {weight}")
        _check_kind(kind)
        self.kind, self.border, self.weight, self.eps = kind, border, weight, eps

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        b = self.border
        if sr.ndim != 4 or min(sr.shape[-2:]) <= 2 * b:
            raise InputError(
                f"cannot set apart a {b}-pixel border of an output of shape {tuple(sr.shape)}; "
                "use a larger data.patch_size or a smaller loss.border"
            )
        if self.weight == 0.0:
            return elementwise(self.kind, sr[..., b:-b, b:-b], hr[..., b:-b, b:-b], self.eps).mean()
        mask = sr.new_full(sr.shape[-2:], self.weight)
        mask[b:-b, b:-b] = 1.0
        e = elementwise(self.kind, sr, hr, self.eps)
        return (e * mask).sum() / (mask.sum() * e[..., 0, 0].numel())

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, border={self.border}, weight={self.weight}"


def elementwise(kind: str, sr: torch.Tensor, hr: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Per-element loss of ``kind`` (``"l1"``, ``"l2"``, ``"charbonnier"``), shape of ``sr``."""
    _check_kind(kind)
    d = sr - hr
    if kind == "l1":
        return d.abs()
    if kind == "l2":
        return d * d
    return torch.sqrt(d * d + eps * eps)


def _check_kind(kind: str) -> None:
    if kind not in ("l1", "l2", "charbonnier"):
        raise InputError(f"unknown loss {kind!r}: use 'l1', 'l2' or 'charbonnier'")


def build_loss(
    kind: str, eps: float = 1e-3, border: int = 0, border_weight: float = 0.0
) -> nn.Module:
    """``"l1"`` (mean absolute error), ``"l2"`` (mean squared error) or ``"charbonnier"``;
    each maps ``(sr, hr)`` float tensors of one shape to a scalar mean. ``border > 0`` gives
    a :class:`BorderWeightedLoss` (``(B, C, H, W)`` inputs) whose frame weighs
    ``border_weight``."""
    _check_kind(kind)
    if border:
        return BorderWeightedLoss(kind, border, border_weight, eps)
    if kind == "l1":
        return nn.L1Loss()
    if kind == "l2":
        return nn.MSELoss()
    return CharbonnierLoss(eps)
