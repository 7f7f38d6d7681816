"""RCAN (Zhang et al., "Image Super-Resolution Using Very Deep Residual Channel Attention
Networks", ECCV 2018), laid out like the official code (yulunzhang/RCAN)."""

from __future__ import annotations

import torch
from torch import nn

from srplug_rcan.blocks import RCAB, MeanShiftedNet, conv

__all__ = ["RCAN", "ResidualGroup"]


class ResidualGroup(nn.Module):
    """``n_resblocks`` :class:`~srplug_rcan.blocks.RCAB` then a 3x3 conv, plus a short skip.

    Keys ``body.0`` .. ``body.{n-1}`` (RCABs) and ``body.{n}`` (the conv).
    """

    def __init__(self, channels: int, n_resblocks: int, reduction: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = [RCAB(channels, reduction) for _ in range(n_resblocks)]
        self.body = nn.Sequential(*blocks, conv(channels, channels, 3))

        self.skip_fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip_fused:  # see fuse_ops: the last convolution adds the skip
            return self.body[-1](self.body[:-1](x), residual=x)
        return self.body(x) + x

    def fuse_ops(self, impl: str) -> None:
        """Hook of :func:`srplug.ops.fuse`: the group's last convolution becomes a
        :class:`srplug.ops.Conv3x3` (parameters shared) that adds the group's skip."""
        from srplug.ops import Conv3x3

        last = self.body[-1]
        if self.skip_fused or not Conv3x3.eligible(last):
            return
        self.body[-1] = Conv3x3.from_conv(last, impl=impl)  # type: ignore[arg-type]
        self.skip_fused = True


class RCAN(MeanShiftedNet):
    """Residual in residual: head conv, ``n_resgroups`` :class:`ResidualGroup` and a conv with
    a long skip, then the sub-pixel upsampler and a conv to RGB.

    ``forward`` maps RGB ``(N, 3, h, w)`` float in [0, 1] to ``(N, 3, h*scale, w*scale)``
    (not clamped). Inside, as in the official code, the network sees ``x * rgb_range`` minus
    the DIV2K mean (``sub_mean``) and its output is divided by ``rgb_range`` after
    ``add_mean``, so checkpoints trained with ``rgb_range=255`` give the official output.

    State-dict keys are the official ones: ``sub_mean``, ``head.0``,
    ``body.{g}.body.{b}.body.{0,2,3.conv_du.0,3.conv_du.2}``, ``body.{g}.body.{n_resblocks}``,
    ``body.{n_resgroups}``, ``tail.0.{0,2,...}``, ``tail.1``, ``add_mean``.

    Args:
        scale: 2, 3, 4 or 8 (any power of two works).
        n_resgroups: residual groups (10).
        n_resblocks: RCABs per group (20).
        n_feats: feature channels (64).
        reduction: channel-attention reduction (16).
        rgb_range: the pixel range the weights were trained for (255).
    """

    receptive_field: int | None = None
    """Global (channel attention pools the whole image): srplug's tiling uses its default
    context instead of measuring."""

    def __init__(
        self,
        scale: int,
        n_resgroups: int = 10,
        n_resblocks: int = 20,
        n_feats: int = 64,
        reduction: int = 16,
        rgb_range: float = 255.0,
    ) -> None:
        super().__init__("RCAN", scale, n_resgroups, n_resblocks, n_feats, reduction, rgb_range)
        self.add_head(scale, n_feats, rgb_range)
        groups: list[nn.Module] = [
            ResidualGroup(n_feats, n_resblocks, reduction) for _ in range(n_resgroups)
        ]
        self.body = nn.Sequential(*groups, conv(n_feats, n_feats, 3))
        self.add_tail(scale, n_feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h, w)`` RGB in [0, 1] -> ``(N, 3, h*scale, w*scale)``."""
        x = self.features(x)
        x = self.body(x) + x
        return self.image(x)
