"""DRN (Guo et al., "Closed-loop Matters: Dual Regression Networks for Single Image
Super-Resolution", CVPR 2020), laid out like the authors' code (guoyongcs/DRN).

The primal network is U-Net-like. The LR image is first enlarged bicubically (torch's
``interpolate``, a = -0.75, as officially) to the target size; a head conv and
``log2(scale)`` :class:`DownBlock` halve it back to the LR size while doubling the channels;
then each up block (``n_blocks`` RCABs, a x2 sub-pixel upsampler, a 1x1 conv) doubles the
size again and is concatenated with the matching down-path features. A 3x3 ``tail`` conv after
the bottom and after every up block gives an RGB image at 1x, 2x, ..., ``scale`` x the LR
size. The dual networks (one :class:`DownBlock` per x2 step, 3 -> ``n_feats`` -> 3 channels)
map each SR output back to the next smaller size, closing the loop for the dual loss.
"""

from __future__ import annotations

import math

import torch
from srplug_rcan.blocks import RCAB, MeanShift, Upsampler, check_positive, conv
from torch import nn
from torch.nn import functional as F

from srplug.errors import InputError

__all__ = ["DRN", "VARIANTS", "DownBlock", "variant_config"]

#: ``(n_blocks, n_feats)`` of the published models by variant and scale (the authors'
#: ``utility.init_model``).
VARIANTS: dict[str, dict[int, tuple[int, int]]] = {
    "drn-s": {4: (30, 16), 8: (30, 8)},
    "drn-l": {4: (40, 20), 8: (36, 10)},
}


def variant_config(variant: str, scale: int) -> tuple[int, int]:
    """``(n_blocks, n_feats)`` of ``variant`` (``"drn-s"`` / ``"drn-l"``) at ``scale``."""
    try:
        return VARIANTS[variant][scale]
    except KeyError:
        raise InputError(
            f"{variant} is defined for scales {sorted(VARIANTS.get(variant, {}))}, not {scale}"
        ) from None


class DownBlock(nn.Module):
    """Stride-2 3x3 conv (no bias) to ``features``, LeakyReLU(``negval``), then
    ``log2(scale) - 1`` more such stages and a stride-1 3x3 conv (no bias) to
    ``out_channels``. ``(N, in, H, W) -> (N, out, ceil(H / scale), ceil(W / scale))``.

    Keys ``dual_module.{i}.0.weight`` (strided convs) and ``dual_module.{n}.weight`` (the last),
    as the official ``common.DownBlock``. Without biases and with a leaky ReLU, the block is
    positively homogeneous: it gives the same result on [0, 1] and [0, 255] images up to the
    factor.
    """

    def __init__(
        self,
        in_channels: int,
        features: int,
        out_channels: int,
        scale: int = 2,
        negval: float = 0.2,
    ) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        channels = in_channels
        for _ in range(max(1, int(math.log2(scale)))):
            stages.append(
                nn.Sequential(
                    nn.Conv2d(channels, features, 3, stride=2, padding=1, bias=False),
                    nn.LeakyReLU(negval, inplace=True),
                )
            )
            channels = features
        stages.append(nn.Conv2d(features, out_channels, 3, stride=1, padding=1, bias=False))
        self.dual_module = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dual_module(x)


class DRN(nn.Module):
    """A DRN primal network with (optionally) its dual networks.

    Inference: ``forward(lr)`` maps RGB ``(N, 3, h, w)`` float in [0, 1] to the final SR
    image ``(N, 3, h*scale, w*scale)``, not clamped (the intermediate outputs are not
    computed). Inside, as officially, the network works on ``x * rgb_range`` (255).

    Training (dual regression):

    - :meth:`forward_all` ``(lr) -> [sr_1x, sr_2x, ..., sr_scale]``: every output of the
      primal network, ``len = log2(scale) + 1``, ``sr_k`` of shape ``(N, 3, h*k, w*k)``, in
      [0, 1] like the input. The last one equals ``forward(lr)``.
    - :attr:`dual_models`: ``nn.ModuleList`` of ``log2(scale)`` :class:`DownBlock`;
      ``dual_models[i]`` maps the output at ``2**(i+1)`` x to ``2**i`` x. Empty when built
      with ``dual=False`` (the primal checkpoints hold no dual weights; see
      :func:`srplug_drn.load_dual_weights`).
    - :meth:`dual` ``(sr_list) -> [lr_1x, ..., lr_{scale/2}]``: the dual networks applied to
      ``sr_list[1:]`` (the output of :meth:`forward_all`, or the same sizes), in [0, 1].

    The authors' losses: ``L1(sr[-1], hr) + sum_i L1(sr[i], lr_i)`` (primal, with ``lr_i``
    the HR downscaled to the size of ``sr[i]``) ``+ 0.1 * sum_i L1(dual(sr)[i], lr_i)``
    (dual; it needs no HR).

    Keys (official): ``sub_mean``, ``head``, ``down.{p}.dual_module.*``,
    ``up_blocks.{p}.{0..n_blocks-1}.body.*`` (RCABs), ``up_blocks.{p}.{n_blocks}.0`` (x2
    upsampler conv), ``up_blocks.{p}.{n_blocks+1}`` (1x1 conv), ``tail.{0..phases}``,
    ``add_mean``; the dual networks under ``dual_models.{i}.dual_module.*`` (the authors
    save them in a separate file).

    Args:
        scale: a power of two >= 2 (the published models: 4 and 8).
        n_blocks: RCABs per up block.
        n_feats: base feature channels (the bottom has ``n_feats * scale``).
        negval: negative slope of the leaky ReLUs in the down blocks (0.2).
        rgb_range: the pixel range the weights were trained for (255).
        dual: build the dual networks.
    """

    receptive_field: int | None = None
    """Global (channel attention pools the whole image): srplug's tiling uses its default
    context instead of measuring."""

    def __init__(
        self,
        scale: int,
        n_blocks: int,
        n_feats: int,
        negval: float = 0.2,
        rgb_range: float = 255.0,
        dual: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("scale", scale), ("n_blocks", n_blocks), ("n_feats", n_feats)):
            check_positive("DRN", name, value)
        if scale < 2 or scale & (scale - 1):
            raise InputError(f"DRN needs a power-of-two scale >= 2, got {scale}")
        self.scale = scale
        self.phases = int(math.log2(scale))
        self.rgb_range = float(rgb_range)
        self.negval = float(negval)
        self.n_feats = n_feats
        phases = self.phases
        width = [n_feats * 2**p for p in range(phases + 1)]  # channels at each depth

        self.sub_mean = MeanShift(self.rgb_range, sign=-1)
        self.head = conv(3, n_feats, 3)
        self.down = nn.ModuleList(
            DownBlock(width[p], width[p], width[p + 1], 2, negval) for p in range(phases)
        )
        # up block i works on width[phases - i + 1] channels (width[phases] for i = 0) and
        # ends with width[phases - i - 1] channels before the concatenation.
        self.up_blocks = nn.ModuleList()
        for i in range(phases):
            channels = width[phases] if i == 0 else width[phases - i + 1]
            self.up_blocks.append(
                nn.Sequential(
                    *(RCAB(channels) for _ in range(n_blocks)),
                    Upsampler(2, channels),
                    conv(channels, width[phases - i - 1], 1),
                )
            )
        self.tail = nn.ModuleList(
            [conv(width[phases], 3, 3)] + [conv(width[p], 3, 3) for p in range(phases, 0, -1)]
        )
        self.add_mean = MeanShift(self.rgb_range, sign=1)
        self.dual_models = nn.ModuleList()
        if dual:
            self.add_dual_models()

    def add_dual_models(self) -> nn.ModuleList:
        """Create (randomly initialised) dual networks if there are none; return them."""
        if not len(self.dual_models):
            device = self.head.weight.device
            dtype = self.head.weight.dtype
            for _ in range(self.phases):
                block = DownBlock(3, self.n_feats, 3, 2, self.negval)
                self.dual_models.append(block.to(device=device, dtype=dtype))
        return self.dual_models

    def _bottom(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = F.interpolate(
            x * self.rgb_range, scale_factor=self.scale, mode="bicubic", align_corners=False
        )
        x = self.head(self.sub_mean(x))
        copies = []
        for block in self.down:
            copies.append(x)
            x = block(x)
        return x, copies

    def _output(self, index: int, features: torch.Tensor) -> torch.Tensor:
        return self.add_mean(self.tail[index](features)) / self.rgb_range

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(N, 3, h, w)`` in [0, 1] -> ``[(N, 3, h, w), (N, 3, 2h, 2w), ..., (N, 3, sh, sw)]``."""
        x, copies = self._bottom(x)
        results = [self._output(0, x)]
        for i, block in enumerate(self.up_blocks):
            x = torch.cat([block(x), copies[self.phases - i - 1]], dim=1)
            results.append(self._output(i + 1, x))
        return results

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h, w)`` RGB in [0, 1] -> ``(N, 3, h*scale, w*scale)`` (the last output)."""
        x, copies = self._bottom(x)
        for i, block in enumerate(self.up_blocks):
            x = torch.cat([block(x), copies[self.phases - i - 1]], dim=1)
        return self._output(self.phases, x)

    def dual(self, sr: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """The dual networks on ``sr`` (``len = log2(scale) + 1``, as :meth:`forward_all`
        returns, or ``log2(scale)`` tensors without the 1x one): ``dual_models[i]`` maps the
        ``2**(i+1)`` x output to ``2**i`` x. Returns ``log2(scale)`` tensors in [0, 1]."""
        if not len(self.dual_models):
            raise InputError(
                "this DRN has no dual networks: build it with dual=True, call "
                "add_dual_models(), or load the authors' dual file with "
                "srplug_drn.load_dual_weights"
            )
        sr = list(sr)
        if len(sr) == self.phases + 1:
            sr = sr[1:]
        if len(sr) != self.phases:
            raise InputError(
                f"dual() takes the {self.phases + 1} outputs of forward_all (or the "
                f"{self.phases} above 1x), got {len(sr)} tensors"
            )
        return [model(image) for model, image in zip(self.dual_models, sr, strict=True)]

    def extra_repr(self) -> str:
        return f"scale={self.scale}, rgb_range={self.rgb_range:g}"
