"""Building blocks of the RCAN family (RCAN, SAN, HAN, DRN), with the official parameter names.

The RCAN code base (and SAN, HAN and DRN, which grew out of it) works on RGB in [0, 255]: a
1x1 :class:`MeanShift` subtracts the DIV2K mean first and another adds it back at the end.
The modules here keep the official attribute names so that the authors' checkpoints load as
they are: ``conv_du.0`` / ``conv_du.2`` in :class:`ChannelAttention`, ``body.{0,2,3}`` in
:class:`RCAB`, ``{0,2,...}`` in :class:`Upsampler`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from srplug.errors import InputError

__all__ = [
    "DIV2K_RGB_MEAN",
    "RCAB",
    "ChannelAttention",
    "MeanShift",
    "MeanShiftedNet",
    "Upsampler",
    "attention_gate",
    "check_positive",
    "conv",
]

#: Mean RGB of DIV2K in [0, 1], the value every model of the family shifts by.
DIV2K_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)


def check_positive(model: str, name: str, value: object) -> int:
    """``value`` if it is a positive int, else :class:`~srplug.errors.InputError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{model} option {name} must be a positive int, got {value!r}")
    return value


def conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> nn.Conv2d:
    """A stride-1 convolution with zero "same" padding (``kernel_size // 2``)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


def attention_gate(channels: int, reduction: int) -> nn.Sequential:
    """The channel-attention gate of RCAN and SAN (``conv_du``): 1x1 conv ``C -> C //
    reduction`` with bias, ReLU, 1x1 conv back to ``C``, sigmoid. Maps a descriptor
    ``(N, C, 1, 1)`` to weights in (0, 1) of the same shape."""
    return nn.Sequential(
        nn.Conv2d(channels, channels // reduction, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels // reduction, channels, 1),
        nn.Sigmoid(),
    )


class MeanShift(nn.Conv2d):
    """1x1 convolution ``y = x + sign * rgb_range * mean`` on ``(N, 3, H, W)`` RGB.

    ``weight`` is the identity ``(3, 3, 1, 1)`` and ``bias`` ``(3,)`` holds
    ``sign * rgb_range * mean``; both are parameters (so checkpoints carry them, as in the
    official code) but frozen (``requires_grad=False``).
    """

    def __init__(
        self,
        rgb_range: float,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
        sign: int = -1,
    ) -> None:
        super().__init__(3, 3, kernel_size=1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(rgb_mean))
        for p in self.parameters():
            p.requires_grad_(False)


class ChannelAttention(nn.Module):
    """RCAN's channel attention: ``x * sigmoid(W2 relu(W1 avgpool(x)))``.

    ``conv_du.0`` is the 1x1 down-projection ``(C // reduction, C, 1, 1)`` and ``conv_du.2``
    the 1x1 up-projection ``(C, C // reduction, 1, 1)``, both with bias, as in the official
    code (``CALayer``). Maps ``(N, C, H, W)`` to the same shape and dtype.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if channels // reduction < 1:
            raise InputError(
                f"channel attention on {channels} channels with reduction {reduction} leaves "
                "no channel: use a smaller reduction or more features"
            )
        self.conv_du = attention_gate(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(x.mean(dim=(2, 3), keepdim=True))


class RCAB(nn.Module):
    """Residual channel attention block: ``x + CA(conv(relu(conv(x))))``.

    Keys ``body.0`` and ``body.2`` (3x3 convolutions with bias) and ``body.3``
    (:class:`ChannelAttention`), as in the official RCAN, HAN and DRN code.
    ``attention`` builds the attention layer (``attention(channels, reduction)``).
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        kernel_size: int = 3,
        attention: type[nn.Module] = ChannelAttention,
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, kernel_size),
            nn.ReLU(inplace=True),
            conv(channels, channels, kernel_size),
            attention(channels, reduction),
        )

        self.skip_fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip_fused:  # see fuse_ops: the attention kernel adds the skip
            body = self.body
            return body[3](body[2](body[1](body[0](x))), residual=x)
        return self.body(x) + x

    def fuse_ops(self, impl: str) -> None:
        """Hook of :func:`srplug.ops.fuse`: RCAN's channel attention becomes the fused
        :class:`srplug.ops.ChannelAttention` (same ``conv_du`` parameters, shared) and takes
        the skip add into its second pass. Other attention layers are left alone."""
        import srplug.ops

        old = self.body[3]
        if self.skip_fused or type(old) is not ChannelAttention:
            return
        down = old.conv_du[0]
        fused = srplug.ops.ChannelAttention(
            down.in_channels, down.in_channels // down.out_channels, impl=impl
        )
        fused.conv_du = old.conv_du
        self.body[3] = fused
        self.skip_fused = True


class Upsampler(nn.Sequential):
    """Sub-pixel upsampler of EDSR/RCAN: ``log2(scale)`` times (3x3 conv to ``4 C``, pixel
    shuffle 2) for powers of two, or one 3x3 conv to ``9 C`` and pixel shuffle 3.

    Keys ``0``, ``2``, ``4`` ... are the convolutions. ``(N, C, h, w) -> (N, C, h*s, w*s)``.
    """

    def __init__(self, scale: int, channels: int) -> None:
        layers: list[nn.Module] = []
        if scale >= 2 and scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [conv(channels, 4 * channels, 3), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [conv(channels, 9 * channels, 3), nn.PixelShuffle(3)]
        else:
            raise InputError(
                f"the RCAN-style upsampler supports scales 2, 3, 4, 8 ..., not {scale}"
            )
        super().__init__(*layers)


def upsampler_scale(state: dict[str, torch.Tensor], prefix: str, channels: int) -> int | None:
    """The scale of an :class:`Upsampler` stored under ``prefix`` (``"tail.0."``) in ``state``,
    read from its convolutions' output channels; None when there is none."""
    outs = []
    index = 0
    while f"{prefix}{index}.weight" in state:
        outs.append(int(state[f"{prefix}{index}.weight"].shape[0]))
        index += 2
    if outs == [9 * channels]:
        return 3
    if outs and all(o == 4 * channels for o in outs):
        return 2 ** len(outs)
    return None


class MeanShiftedNet(nn.Module):
    """Base of the RCAN-family networks: option checks, ``sub_mean`` and ``head.0`` (3x3 conv
    RGB -> ``n_feats``) here, ``tail`` (:class:`Upsampler` then a 3x3 conv to RGB) and
    ``add_mean`` from :meth:`add_tail`, which the subclass calls after its body so that the
    modules are created (and randomly initialised) in the official order.

    :meth:`features` maps RGB ``(N, 3, h, w)`` in [0, 1] to the head features
    ``(N, n_feats, h, w)`` of ``x * rgb_range`` minus the DIV2K mean; :meth:`image` maps
    features ``(N, n_feats, h, w)`` back to RGB ``(N, 3, h*scale, w*scale)`` in [0, 1] (not
    clamped).
    """

    def __init__(
        self,
        model: str,
        scale: int,
        n_resgroups: int,
        n_resblocks: int,
        n_feats: int,
        reduction: int,
        rgb_range: float,
    ) -> None:
        super().__init__()
        for name, value in (
            ("scale", scale),
            ("n_resgroups", n_resgroups),
            ("n_resblocks", n_resblocks),
            ("n_feats", n_feats),
            ("reduction", reduction),
        ):
            check_positive(model, name, value)

    def add_head(self, scale: int, n_feats: int, rgb_range: float) -> None:
        """Set ``scale``, ``rgb_range``, ``sub_mean`` and ``head``."""
        self.scale = scale
        self.rgb_range = float(rgb_range)
        self.sub_mean = MeanShift(self.rgb_range, sign=-1)
        self.head = nn.Sequential(conv(3, n_feats, 3))

    def add_tail(self, scale: int, n_feats: int) -> None:
        """Set ``tail`` and ``add_mean``."""
        self.tail = nn.Sequential(Upsampler(scale, n_feats), conv(n_feats, 3, 3))
        self.add_mean = MeanShift(self.rgb_range, sign=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h, w)`` RGB in [0, 1] -> head features ``(N, n_feats, h, w)``."""
        return self.head(self.sub_mean(x * self.rgb_range))

    def image(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``(N, n_feats, h, w)`` -> ``(N, 3, h*scale, w*scale)`` RGB in [0, 1]."""
        return self.add_mean(self.tail(features)) / self.rgb_range

    def extra_repr(self) -> str:
        return f"scale={self.scale}, rgb_range={self.rgb_range:g}"
