"""The FSRCNN network (Dong, Loy, Tang, ECCV 2016) on the Y channel."""

from __future__ import annotations

import torch
from torch import nn

from srplug.errors import InputError
from srplug.ops.direct import Conv2dAct

__all__ = ["DECONV_KERNEL", "FSRCNN", "ConvPReLU", "deconv_padding"]

DECONV_KERNEL = 9
"""Kernel size of the final transposed convolution (the paper's 9x9)."""


def deconv_padding(scale: int, kernel: int = DECONV_KERNEL) -> tuple[int, int]:
    """``(padding, output_padding)`` of the transposed convolution: ``kernel // 2`` and
    ``scale - 1``, so an ``h``-pixel input gives exactly ``h * scale`` output pixels
    (``(h - 1) * scale - 2 * (kernel // 2) + kernel + scale - 1``, for odd ``kernel``).

    This is yjn870/FSRCNN-pytorch's choice: input pixel ``i`` has its kernel centre (tap 4)
    on output pixel ``scale * i``, and output pixel ``scale * i + a`` receives tap ``4 + a``
    from input ``i``. Weights trained with other paddings need their taps shifted.
    """
    return kernel // 2, scale - 1


def _check_positive(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"FSRCNN option {name} must be an int >= {minimum}, got {value!r}")
    return value


class ConvPReLU(nn.Module):
    """``Conv2d(c_in, c_out, k, padding=k // 2)`` followed by a per-channel ``PReLU``."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
        self.act = nn.PReLU(c_out)
        self.act_fused = False  # set by fuse_ops: self.conv applies self.act itself

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, c_in, h, w)`` -> ``(N, c_out, h, w)``."""
        y = self.conv(x)
        return y if self.act_fused else self.act(y)

    def fuse_ops(self, impl: str) -> None:
        """:func:`srplug.ops.fuse` hook: a convolution the direct kernel runs faster takes
        the PReLU into it (:class:`srplug.ops.Conv2dAct`); keys and parameters unchanged."""
        if not self.act_fused and Conv2dAct.worth_it(self.conv):
            self.conv = Conv2dAct.from_conv(self.conv, self.act, impl)
            self.act_fused = True


class FSRCNN(nn.Module):
    """Feature extraction (5x5, ``d``), shrinking (1x1, ``s``), ``m`` mapping layers (3x3,
    ``s``), expanding (1x1, ``d``), each with PReLU, then a 9x9 transposed convolution with
    stride ``scale`` to one channel.

    ``forward`` maps the low-resolution luma ``(N, 1, h, w)`` float in [0, 1] (BT.601 studio
    range) to ``(N, 1, h*scale, w*scale)`` in the input's dtype, not clamped; the output is
    the image itself, not a residual. ``d=56, s=12, m=4`` is FSRCNN, ``d=32, s=5, m=1``
    FSRCNN-s. See :func:`deconv_padding` for the output alignment.
    """

    def __init__(self, scale: int, d: int = 56, s: int = 12, m: int = 4) -> None:
        super().__init__()
        self.scale = _check_positive("scale", scale)
        _check_positive("d", d)
        _check_positive("s", s)
        _check_positive("m", m, minimum=0)
        self.extract = ConvPReLU(1, d, 5)
        self.shrink = ConvPReLU(d, s, 1)
        self.mapping = nn.Sequential(*(ConvPReLU(s, s, 3) for _ in range(m)))
        self.expand = ConvPReLU(s, d, 1)
        padding, output_padding = deconv_padding(scale)
        self.deconv = nn.ConvTranspose2d(
            d,
            1,
            DECONV_KERNEL,
            stride=scale,
            padding=padding,
            output_padding=output_padding,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's initialisation: He-normal convolutions, a N(0, 0.001) transposed
        convolution, zero biases. The tiny deconvolution start keeps early training stable."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.25, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.deconv.weight, std=0.001)
        nn.init.zeros_(self.deconv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, h, w)`` LR luma in [0, 1] -> ``(N, 1, h*scale, w*scale)``."""
        x = self.expand(self.mapping(self.shrink(self.extract(x))))
        return self.deconv(x)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
