"""The SRCNN network (Dong, Loy, He, Tang, ECCV 2014 / TPAMI 2016) on the Y channel."""

from __future__ import annotations

import torch
from torch import nn

from srplug.errors import InputError
from srplug.ops.direct import Conv2dAct
from srplug.resize import imresize

__all__ = ["PADDING_MODES", "SRCNN"]

PADDING_MODES = ("zeros", "reflect", "replicate")


def _check_size(name: str, value: object, *, odd: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"SRCNN option {name} must be a positive int, got {value!r}")
    if odd and value % 2 == 0:
        raise InputError(
            f"SRCNN option {name} must be odd so the output keeps the input size, got {value}"
        )
    return value


class SRCNN(nn.Module):
    """Bicubic enlargement followed by three convolutions (patch extraction, non-linear
    mapping, reconstruction) with ReLU after the first two.

    ``forward`` takes the low-resolution luma ``(N, 1, h, w)`` float in [0, 1] (BT.601 studio
    range), enlarges it by ``scale`` with MATLAB bicubic :func:`srplug.resize.imresize`, and
    returns the restored ``(N, 1, h*scale, w*scale)`` in the input's dtype, not clamped. Every
    convolution pads by ``f // 2`` (``padding_mode``) so the size is kept, as in the test-time
    network of Lornatang/SRCNN-PyTorch (the paper trains without padding on 33x33 patches).

    Args:
        scale: enlargement factor (>= 1).
        f1, f2, f3: kernel sizes of the three layers (odd): 9-1-5 is the paper's base
            network, 9-5-5 its best.
        n1, n2: channels after the first and second layer (64, 32).
        padding_mode: ``"zeros"``, ``"reflect"`` or ``"replicate"``.
    """

    def __init__(
        self,
        scale: int,
        f1: int = 9,
        f2: int = 1,
        f3: int = 5,
        n1: int = 64,
        n2: int = 32,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        _check_size("scale", scale, odd=False)
        sizes = [_check_size(k, v, odd=True) for k, v in (("f1", f1), ("f2", f2), ("f3", f3))]
        channels = [_check_size(k, v, odd=False) for k, v in (("n1", n1), ("n2", n2))]
        if padding_mode not in PADDING_MODES:
            raise InputError(
                f"SRCNN option padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}"
            )
        self.scale = scale
        widths = [1, *channels, 1]
        convs = [
            nn.Conv2d(widths[i], widths[i + 1], k, padding=k // 2, padding_mode=padding_mode)
            for i, k in enumerate(sizes)
        ]
        self.conv1, self.conv2, self.conv3 = convs
        self.relu = nn.ReLU(inplace=True)
        self.relu_fused = False  # set by fuse_ops: conv1 applies the ReLU itself

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, h, w)`` LR luma in [0, 1] -> ``(N, 1, h*scale, w*scale)``."""
        x = imresize(x, float(self.scale)) if self.scale != 1 else x
        x = self.conv1(x)
        x = x if self.relu_fused else self.relu(x)
        x = self.relu(self.conv2(x))
        return self.conv3(x)

    def fuse_ops(self, impl: str) -> None:
        """:func:`srplug.ops.fuse` hook: when srplug's direct kernel beats oneDNN on the first
        layer (zero padding, the default), it takes the ReLU into it
        (:class:`srplug.ops.Conv2dAct`); keys and parameters unchanged."""
        if not self.relu_fused and Conv2dAct.worth_it(self.conv1):
            self.conv1 = Conv2dAct.from_conv(self.conv1, self.relu, impl)
            self.relu_fused = True

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
