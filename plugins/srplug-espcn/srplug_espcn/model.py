"""The ESPCN network (Shi et al., CVPR 2016) on the Y channel."""

from __future__ import annotations

import torch
from torch import nn

from srplug.errors import InputError

__all__ = ["ACTIVATIONS", "ESPCN", "OUTPUT_ACTIVATIONS"]

ACTIVATIONS = ("tanh", "relu")
"""Hidden activations: the paper's ``tanh``, or ``relu`` (OpenCV dnn_superres's graphs)."""
OUTPUT_ACTIVATIONS = ("none", "tanh")
"""After the pixel shuffle: nothing (the paper) or ``tanh`` (OpenCV dnn_superres's graphs)."""


def _check(name: str, value: object, *, odd: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"ESPCN option {name} must be a positive int, got {value!r}")
    if odd and value % 2 == 0:
        raise InputError(f"ESPCN option {name} must be odd (same-size padding), got {value}")
    return value


def _activation(name: str, value: str, allowed: tuple[str, ...]) -> nn.Module:
    if value not in allowed:
        raise InputError(f"ESPCN option {name} must be one of {allowed}, got {value!r}")
    return {"tanh": nn.Tanh(), "relu": nn.ReLU(), "none": nn.Identity()}[value]


class ESPCN(nn.Module):
    """Two feature convolutions on the low-resolution image, a convolution to ``scale**2``
    channels and a pixel shuffle (sub-pixel convolution).

    ``forward`` maps the low-resolution luma ``(N, 1, h, w)`` float in [0, 1] to
    ``(N, 1, h*scale, w*scale)`` in the input's dtype, not clamped. Sub-pixel ``(di, dj)`` of
    low-resolution pixel ``(i, j)`` is channel ``di * scale + dj`` (``pixel_shuffle``).

    Args:
        scale: enlargement factor.
        n1, n2: channels of the first two layers (64, 32).
        f1, f2, f3: kernel sizes (5, 3, 3; odd, zero padding ``f // 2``).
        act: activation after the first two layers, ``"tanh"`` (paper) or ``"relu"``.
        out_act: ``"none"`` (paper) or ``"tanh"`` after the pixel shuffle.
    """

    def __init__(
        self,
        scale: int,
        n1: int = 64,
        n2: int = 32,
        f1: int = 5,
        f2: int = 3,
        f3: int = 3,
        act: str = "tanh",
        out_act: str = "none",
    ) -> None:
        super().__init__()
        self.scale = _check("scale", scale)
        widths = [1, _check("n1", n1), _check("n2", n2), scale * scale]
        sizes = [_check("f1", f1, odd=True), _check("f2", f2, odd=True), _check("f3", f3, odd=True)]
        self.conv1, self.conv2, self.conv3 = (
            nn.Conv2d(widths[i], widths[i + 1], k, padding=k // 2) for i, k in enumerate(sizes)
        )
        self.act = _activation("act", act, ACTIVATIONS)
        self.shuffle = nn.PixelShuffle(scale)
        self.out_act = _activation("out_act", out_act, OUTPUT_ACTIVATIONS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, h, w)`` LR luma in [0, 1] -> ``(N, 1, h*scale, w*scale)``."""
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        return self.out_act(self.shuffle(self.conv3(x)))

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
