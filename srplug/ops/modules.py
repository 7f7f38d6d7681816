"""Module forms of the fused ops, with the parameter layout of the original networks, and
the helpers the drop-in layers (``Conv3x3``, ``Conv2dAct``, ``SubPixelConvTranspose2d``)
share."""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from torch import nn

from srplug.errors import InputError
from srplug.ops.functional import channel_attention, check_impl

__all__ = ["ChannelAttention", "share_parameters", "version_key"]

_M = TypeVar("_M", bound=nn.Module)


def share_parameters(new: _M, old: nn.Module) -> _M:
    """``new`` (built on the meta device) takes ``old``'s ``weight`` and ``bias`` Parameter
    objects (no copy) and its training mode; returns ``new``."""
    new.weight = old.weight
    if old.bias is not None:
        new.bias = old.bias
    new.train(old.training)
    return new


def version_key(*tensors: torch.Tensor | None) -> tuple[Any, ...]:
    """What a value derived from ``tensors`` (transformed filters) is cached under: changes
    when any of them is modified in place, replaced, cast or moved."""
    return tuple((t._version, t.data_ptr(), t.dtype, t.device) for t in tensors if t is not None)


class ChannelAttention(nn.Module):
    """RCAN's channel attention layer (``CALayer``), fused, optionally with the RCAB skip.

    Parameters are laid out as in RCAN's official code, ``conv_du = Sequential(Conv2d(C, C//r,
    1), ReLU, Conv2d(C//r, C, 1), Sigmoid)``, so its state-dict keys are
    ``conv_du.0.weight``, ``conv_du.0.bias``, ``conv_du.2.weight`` and ``conv_du.2.bias`` and
    an official checkpoint's ``...body.N`` entries load unchanged.

    Args:
        channels: ``C``.
        reduction: ``r``; the hidden layer has ``C // r`` channels (RCAN: 16).
        impl: ``"auto"``, ``"ref"``, ``"cpp"`` or ``"cuda"`` (see :mod:`srplug.ops`).
    """

    def __init__(self, channels: int, reduction: int = 16, impl: str = "auto") -> None:
        super().__init__()
        if channels < 1 or reduction < 1 or channels // reduction < 1:
            raise InputError(
                f"ChannelAttention needs channels >= reduction >= 1, got {channels}, {reduction}"
            )
        self.impl = check_impl(impl)
        hidden = channels // reduction
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, padding=0, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, padding=0, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``x * attention(x) (+ residual)``, same shape, dtype, format."""
        down, up = self.conv_du[0], self.conv_du[2]
        assert isinstance(down, nn.Conv2d) and isinstance(up, nn.Conv2d)
        assert down.bias is not None and up.bias is not None
        return channel_attention(
            x, down.weight, down.bias, up.weight, up.bias, residual, impl=self.impl
        )

    def extra_repr(self) -> str:
        return f"impl={self.impl!r}"
