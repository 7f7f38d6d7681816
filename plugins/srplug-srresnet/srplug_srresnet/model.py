"""SRResNet (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017) and BasicSR's batch-norm-free MSRResNet, on RGB in [0, 1].

:class:`SRResNet` key layout: ``conv_first`` (9x9) + ``act_first`` (PReLU),
``body.N.{conv1,bn1,prelu,conv2,bn2}``, ``conv_after_body`` + ``after_body`` (BN; PReLU in
leftthomas/SRGAN's files), ``upsample.N.{conv,prelu}``, ``conv_last`` (9x9).
:class:`MSRResNet` key layout: ``conv_first``, ``body.N.{conv1,conv2}``, ``upsample.N.conv``,
``conv_hr``, ``conv_last``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srplug.errors import InputError

__all__ = ["AFTER_BODY", "OUTPUTS", "MSRResNet", "ResBlockBN", "SRResNet", "UpsampleStep"]

AFTER_BODY = ("bn", "prelu")
"""What follows ``conv_after_body``: batch norm (paper) or PReLU (leftthomas/SRGAN)."""
OUTPUTS = ("linear", "tanh")
"""Output mapping: ``linear`` (the last conv gives [0, 1] values) or ``tanh``
(``(tanh(y) + 1) / 2``, as leftthomas/SRGAN's generator)."""


def _positive_int(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{owner} option {name} must be a positive int, got {value!r}")
    return value


def _choice(owner: str, name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(f"{owner} option {name} must be one of {allowed}, got {value!r}")
    return str(value)


def _conv(c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)


def _steps(owner: str, scale: int) -> list[int]:
    """Pixel-shuffle factors of the upsampler: ``[3]`` for x3, ``[2] * n`` for ``2**n``."""
    if scale == 3:
        return [3]
    if scale >= 2 and scale & (scale - 1) == 0:
        return [2] * (scale.bit_length() - 1)
    raise InputError(f"{owner} supports scale 3 or a power of 2, not {scale}")


class ResBlockBN(nn.Module):
    """``x + bn2(conv2(prelu(bn1(conv1(x)))))``, 3x3 convs: SRResNet's residual block."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = _conv(features, features)
        self.bn1 = nn.BatchNorm2d(features)
        self.prelu = nn.PReLU()
        self.conv2 = _conv(features, features)
        self.bn2 = nn.BatchNorm2d(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class UpsampleStep(nn.Module):
    """3x3 conv ``F -> F * r**2``, pixel shuffle ``r``, then ``act`` (PReLU, or the shared
    LeakyReLU of MSRResNet when ``prelu=False``; applied by the owner)."""

    def __init__(self, features: int, factor: int, prelu: bool = True) -> None:
        super().__init__()
        self.conv = _conv(features, features * factor * factor)
        self.shuffle = nn.PixelShuffle(factor)
        self.prelu = nn.PReLU() if prelu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shuffle(self.conv(x))
        return self.prelu(y) if self.prelu is not None else F.leaky_relu(y, 0.1)


class SRResNet(nn.Module):
    """The SRResNet / SRGAN generator: 9x9 conv + PReLU, ``blocks`` residual blocks with batch
    norm and PReLU, 3x3 conv + BN with a skip from the first features, pixel-shuffle x2 steps
    (conv, shuffle, PReLU; one x3 step for scale 3), 9x9 conv to RGB.

    ``forward`` maps RGB ``(N, 3, h, w)`` float in [0, 1] to ``(N, 3, h*scale, w*scale)``
    (not clamped; in [0, 1] by construction with ``output="tanh"``). Batch norm uses its
    running statistics in ``eval()`` mode (srplug's upsamplers run the module in eval mode).

    Args:
        scale: 2, 4 or 8 (x2 steps) or 3 (one x3 step); the paper's is 4.
        blocks: residual blocks (16 in the paper, 5 in leftthomas/SRGAN).
        features: channels (64).
        after_body: ``"bn"`` (paper) or ``"prelu"`` after ``conv_after_body``.
        output: ``"linear"`` or ``"tanh"`` (see :data:`OUTPUTS`).
    """

    def __init__(
        self,
        scale: int,
        blocks: int = 16,
        features: int = 64,
        after_body: str = "bn",
        output: str = "linear",
    ) -> None:
        super().__init__()
        self.scale = _positive_int("SRResNet", "scale", scale)
        blocks = _positive_int("SRResNet", "blocks", blocks)
        features = _positive_int("SRResNet", "features", features)
        self.after_body_kind = _choice("SRResNet", "after_body", after_body, AFTER_BODY)
        self.output = _choice("SRResNet", "output", output, OUTPUTS)
        self.conv_first = _conv(3, features, 9)
        self.act_first = nn.PReLU()
        self.body = nn.Sequential(*(ResBlockBN(features) for _ in range(blocks)))
        self.conv_after_body = _conv(features, features)
        self.after_body = nn.BatchNorm2d(features) if after_body == "bn" else nn.PReLU()
        self.upsample = nn.Sequential(
            *(UpsampleStep(features, r) for r in _steps("SRResNet", scale))
        )
        self.conv_last = _conv(features, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h, w)`` RGB in [0, 1] -> ``(N, 3, h*scale, w*scale)``."""
        feat = self.act_first(self.conv_first(x))
        res = self.after_body(self.conv_after_body(self.body(feat)))
        out = self.conv_last(self.upsample(feat + res))
        return (torch.tanh(out) + 1) / 2 if self.output == "tanh" else out

    def extra_repr(self) -> str:
        return f"scale={self.scale}, after_body={self.after_body_kind!r}, output={self.output!r}"


class _ResBlockNoBN(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = _conv(features, features)
        self.conv2 = _conv(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class MSRResNet(nn.Module):
    """BasicSR's "modified SRResNet": no batch norm, 3x3 convs everywhere, LeakyReLU(0.1) after
    ``conv_first``, each upsampling step and ``conv_hr``, ReLU inside the residual blocks, no
    long skip, and the bilinearly enlarged input added to the output.

    ``forward`` maps RGB ``(N, 3, h, w)`` float in [0, 1] to ``(N, 3, h*scale, w*scale)``.

    Args:
        scale: 2, 3, 4 (BasicSR's) or 8.
        blocks: residual blocks (16).
        features: channels (64).
    """

    def __init__(self, scale: int, blocks: int = 16, features: int = 64) -> None:
        super().__init__()
        self.scale = _positive_int("MSRResNet", "scale", scale)
        blocks = _positive_int("MSRResNet", "blocks", blocks)
        features = _positive_int("MSRResNet", "features", features)
        self.conv_first = _conv(3, features)
        self.body = nn.Sequential(*(_ResBlockNoBN(features) for _ in range(blocks)))
        steps = _steps("MSRResNet", scale)
        self.upsample = nn.Sequential(*(UpsampleStep(features, r, prelu=False) for r in steps))
        self.conv_hr = _conv(features, features)
        self.conv_last = _conv(features, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h, w)`` RGB in [0, 1] -> ``(N, 3, h*scale, w*scale)``."""
        out = self.upsample(self.body(F.leaky_relu(self.conv_first(x), 0.1)))
        out = self.conv_last(F.leaky_relu(self.conv_hr(out), 0.1))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return out + base

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
