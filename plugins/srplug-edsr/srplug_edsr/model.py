"""EDSR and MDSR (Lim et al., "Enhanced Deep Residual Networks for Single Image
Super-Resolution", CVPRW 2017) on RGB images in [0, 1].

Both subtract the DIV2K RGB mean and scale the image to ``[0, rgb_range]`` (255, as the
authors trained) inside ``forward``, so weights trained on 0..255 images work on srplug's
[0, 1] tensors; the output is mapped back the same way. The mean shift is a constant buffer,
not a parameter: parameter counts are the published ones (EDSR-baseline x2 1,369,859).

Key layout (BasicSR's names, which srplug uses as its own): ``conv_first``,
``body.N.conv1`` / ``body.N.conv2``, ``conv_after_body``, ``upsample.{0,2}`` (one conv per
x2 step, or one for x3), ``conv_last``; MDSR adds ``pre_process.x<s>.{0,1}.conv{1,2}`` and
keys its upsamplers ``upsample.x<s>.*``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srplug.errors import InputError

__all__ = ["DIV2K_RGB_MEAN", "EDSR", "MDSR", "ResBlock", "Upsampler"]

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
"""RGB mean of DIV2K in [0, 1], as EDSR-PyTorch and BasicSR subtract it."""


def _positive_int(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{owner} option {name} must be a positive int, got {value!r}")
    return value


def _positive_float(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"{owner} option {name} must be a positive number, got {value!r}")
    return float(value)


def _conv(c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)


class ResBlock(nn.Module):
    """``x + res_scale * conv2(relu(conv1(x)))``: EDSR's residual block (no batch norm, no
    activation after the addition). ``(N, F, h, w)`` -> same shape."""

    def __init__(self, features: int, kernel_size: int = 3, res_scale: float = 1.0) -> None:
        super().__init__()
        self.conv1 = _conv(features, features, kernel_size)
        self.conv2 = _conv(features, features, kernel_size)
        self.res_scale = res_scale
        self.fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:  # see fuse_ops: conv1 applies the ReLU, conv2 adds the skip
            if self.res_scale == 1.0:
                return self.conv2(self.conv1(x), residual=x)
            return x + self.conv2(self.conv1(x)) * self.res_scale
        res = self.conv2(F.relu(self.conv1(x)))
        if self.res_scale != 1.0:
            res = res * self.res_scale
        return x + res

    def fuse_ops(self, impl: str) -> None:
        """Hook of :func:`srplug.ops.fuse`: both convolutions become
        :class:`srplug.ops.Conv3x3` (parameters shared), the first with the ReLU, the second
        with the skip add when ``res_scale`` is 1."""
        from srplug.ops import Conv3x3

        if self.fused or not (Conv3x3.eligible(self.conv1) and Conv3x3.eligible(self.conv2)):
            return
        self.conv1 = Conv3x3.from_conv(self.conv1, activation="relu", impl=impl)
        self.conv2 = Conv3x3.from_conv(self.conv2, impl=impl)
        self.fused = True

    def extra_repr(self) -> str:
        return f"res_scale={self.res_scale}"


class Upsampler(nn.Sequential):
    """Sub-pixel upsampler without activations: for ``scale = 2**n``, ``n`` times (3x3 conv
    ``F -> 4F``, pixel shuffle 2); for 3, one 3x3 conv ``F -> 9F`` and pixel shuffle 3.
    ``(N, F, h, w)`` -> ``(N, F, h*scale, w*scale)``. Children ``0, 2, ...`` are the convs."""

    def __init__(self, scale: int, features: int) -> None:
        layers: list[nn.Module] = []
        if scale == 3:
            layers += [_conv(features, 9 * features), nn.PixelShuffle(3)]
        elif scale >= 2 and scale & (scale - 1) == 0:
            for _ in range(scale.bit_length() - 1):
                layers += [_conv(features, 4 * features), nn.PixelShuffle(2)]
        else:
            raise InputError(f"EDSR/MDSR upsamplers support scale 3 or a power of 2, not {scale}")
        super().__init__(*layers)
        self.scale = scale


class _MeanShift(nn.Module):
    """Holds the RGB mean (non-persistent buffer) and the range of the network's pixels."""

    rgb_mean: torch.Tensor

    def __init__(self, rgb_range: float) -> None:
        super().__init__()
        self.rgb_range = rgb_range
        mean = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1)
        self.register_buffer("rgb_mean", mean, persistent=False)

    def _to_network(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] image -> mean-subtracted ``[0, rgb_range]`` values."""
        return (x - self.rgb_mean.to(x.dtype)) * self.rgb_range

    def _to_image(self, y: torch.Tensor) -> torch.Tensor:
        return y / self.rgb_range + self.rgb_mean.to(y.dtype)


class EDSR(_MeanShift):
    """EDSR / EDSR-baseline: ``conv_first`` -> ``blocks`` residual blocks -> ``conv_after_body``
    (+ the long skip) -> sub-pixel upsampler -> ``conv_last``, all 3x3, between a mean shift in
    and out.

    ``forward`` maps RGB ``(N, 3, h, w)`` float in [0, 1] to ``(N, 3, h*scale, w*scale)``
    in the input's dtype, not clamped.

    Args:
        scale: 2, 3 or 4 (any power of 2 also builds).
        blocks: residual blocks (16 baseline, 32 EDSR).
        features: channels (64 baseline, 256 EDSR).
        res_scale: residual scaling (1 baseline, 0.1 EDSR).
        rgb_range: pixel range the weights were trained on (255 for the authors' files).
    """

    def __init__(
        self,
        scale: int,
        blocks: int = 16,
        features: int = 64,
        res_scale: float = 1.0,
        rgb_range: float = 255.0,
    ) -> None:
        super().__init__(_positive_float("EDSR", "rgb_range", rgb_range))
        self.scale = _positive_int("EDSR", "scale", scale)
        blocks = _positive_int("EDSR", "blocks", blocks)
        features = _positive_int("EDSR", "features", features)
        self.res_scale = _positive_float("EDSR", "res_scale", res_scale)
        self.conv_first = _conv(3, features)
        self.body = nn.Sequential(*(ResBlock(features, 3, self.res_scale) for _ in range(blocks)))
        self.conv_after_body = _conv(features, features)
        self.upsample = Upsampler(scale, features)
        self.conv_last = _conv(features, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h, w)`` RGB in [0, 1] -> ``(N, 3, h*scale, w*scale)``."""
        feat = self.conv_first(self._to_network(x))
        res = self.conv_after_body(self.body(feat)) + feat
        return self._to_image(self.conv_last(self.upsample(res)))

    def extra_repr(self) -> str:
        return f"scale={self.scale}, rgb_range={self.rgb_range}"


class MDSR(_MeanShift):
    """MDSR: one network for several scales. Per scale a pre-processing module (two 5x5
    residual blocks) and an upsampler; shared ``conv_first``, body (``blocks`` 3x3 residual
    blocks + ``conv_after_body`` + long skip) and ``conv_last``.

    The module holds every branch (an MDSR checkpoint loads whole); :attr:`scale` picks the
    branch ``forward`` runs and can be changed after construction (multi-scale training).
    ``forward`` maps RGB ``(N, 3, h, w)`` float in [0, 1] to ``(N, 3, h*scale, w*scale)``.

    Args:
        scale: the branch to run, one of ``scales``.
        blocks: shared residual blocks (80 MDSR, 16 MDSR-baseline).
        features: channels (64).
        scales: the scales the network holds branches for, in the checkpoint's order.
        rgb_range: pixel range the weights were trained on (255 for the authors' files).
    """

    def __init__(
        self,
        scale: int,
        blocks: int = 80,
        features: int = 64,
        scales: tuple[int, ...] = (2, 3, 4),
        rgb_range: float = 255.0,
    ) -> None:
        super().__init__(_positive_float("MDSR", "rgb_range", rgb_range))
        blocks = _positive_int("MDSR", "blocks", blocks)
        features = _positive_int("MDSR", "features", features)
        scales = tuple(_positive_int("MDSR", "scales", s) for s in scales)
        if not scales or len(set(scales)) != len(scales):
            raise InputError(f"MDSR option scales must be distinct scales, got {scales!r}")
        self.scales = scales
        self.conv_first = _conv(3, features)
        self.pre_process = nn.ModuleDict(
            {f"x{s}": nn.Sequential(ResBlock(features, 5), ResBlock(features, 5)) for s in scales}
        )
        self.body = nn.Sequential(*(ResBlock(features) for _ in range(blocks)))
        self.conv_after_body = _conv(features, features)
        self.upsample = nn.ModuleDict({f"x{s}": Upsampler(s, features) for s in scales})
        self.conv_last = _conv(features, 3)
        self.scale = scale

    @property
    def scale(self) -> int:
        """The scale ``forward`` enlarges by (the branch it runs)."""
        return self._scale

    @scale.setter
    def scale(self, value: int) -> None:
        if value not in self.scales:
            raise InputError(
                f"this MDSR holds branches for scales {self.scales}, not {value!r}; "
                "pass one of those"
            )
        self._scale = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h, w)`` RGB in [0, 1] -> ``(N, 3, h*scale, w*scale)`` (branch ``scale``)."""
        branch = f"x{self._scale}"
        feat = self.pre_process[branch](self.conv_first(self._to_network(x)))
        res = self.conv_after_body(self.body(feat)) + feat
        return self._to_image(self.conv_last(self.upsample[branch](res)))

    def extra_repr(self) -> str:
        return f"scale={self._scale}, scales={self.scales}, rgb_range={self.rgb_range}"
