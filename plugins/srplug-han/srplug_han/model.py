"""HAN (Niu et al., "Single Image Super-Resolution via a Holistic Attention Network",
ECCV 2020), laid out like the authors' code (wwlCape/HAN, ``src/model/han.py``).

An RCAN backbone (head, ``n_resgroups`` residual groups of RCABs, a body conv) whose
intermediate features feed two attention modules:

- the layer attention module (LAM) weighs the ``n_resgroups + 1`` body outputs (every group
  and the final body conv, stacked newest first) against each other:
  ``softmax(rowmax(E) - E)`` with ``E = F F^T`` over the flattened layers, scaled by a
  learned ``gamma`` and added back; ``last_conv`` fuses the stack to ``n_feats`` channels;
- the channel-spatial attention module (CSAM) gates the last body output with
  ``sigmoid(conv3d(x))`` (one 3x3x3 filter over channels and space), scaled by ``gamma``:
  ``x * gamma * sigmoid(conv3d(x)) + x``.

``last`` fuses both (``2 n_feats -> n_feats``), the long skip adds the head features, and the
EDSR upsampler produces the image. The official code hard-codes 11 stacked layers
(``last_conv`` takes ``n_feats * 11``), i.e. 10 groups; here it is ``n_resgroups + 1``.
"""

from __future__ import annotations

import torch
from srplug_rcan.blocks import MeanShiftedNet, conv
from srplug_rcan.model import ResidualGroup
from torch import nn

__all__ = ["CSAM", "HAN", "LAM"]


class LAM(nn.Module):
    """Layer attention over ``(N, L, C, H, W)`` stacked features -> ``(N, L*C, H, W)``.

    ``gamma`` (scalar, initialised to 0) scales the attended features. The ``L x L`` energy is
    computed in float32 at least (its values overflow half precision).
    """

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, layers, c, h, w = x.shape
        flat = x.reshape(n, layers, -1)
        wide = flat.to(torch.promote_types(x.dtype, torch.float32))
        energy = wide @ wide.transpose(1, 2)
        energy = energy.amax(dim=-1, keepdim=True) - energy
        attention = torch.softmax(energy, dim=-1).to(x.dtype)
        out = (attention @ flat).reshape(n, layers, c, h, w)
        return (self.gamma * out + x).reshape(n, layers * c, h, w)


class CSAM(nn.Module):
    """Channel-spatial attention on ``(N, C, H, W)``: ``x * gamma * sigmoid(conv(x)) + x``
    with ``conv`` a ``Conv3d(1, 1, 3, padding=1)`` (one 3x3x3 filter) over
    ``(C, H, W)``. ``gamma`` (scalar) starts at 0."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 1, 3, 1, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.conv(x.unsqueeze(1))).squeeze(1)
        return x * (self.gamma * gate) + x


class HAN(MeanShiftedNet):
    """The holistic attention network.

    ``forward`` maps RGB ``(N, 3, h, w)`` float in [0, 1] to ``(N, 3, h*scale, w*scale)``,
    not clamped; inside, the network sees ``x * rgb_range`` as officially (255).

    Keys: ``sub_mean``, ``head.0``, ``body.{g}.body.{b}.body.{0,2,3.conv_du.0,3.conv_du.2}``,
    ``body.{g}.body.{n_resblocks}``, ``body.{n_resgroups}``, ``csa.{conv,gamma}``,
    ``la.gamma``, ``last_conv``, ``last``, ``tail.0.{0,2,..}``, ``tail.1``, ``add_mean``.

    Args:
        scale: 2, 3, 4 or 8.
        n_resgroups: residual groups (10).
        n_resblocks: RCABs per group (20).
        n_feats: feature channels (64).
        reduction: channel-attention reduction (16).
        rgb_range: the pixel range the weights were trained for (255).
    """

    receptive_field: int | None = None
    """Global (the attention modules pool the whole image): srplug's tiling uses its
    default context instead of measuring."""

    def __init__(
        self,
        scale: int,
        n_resgroups: int = 10,
        n_resblocks: int = 20,
        n_feats: int = 64,
        reduction: int = 16,
        rgb_range: float = 255.0,
    ) -> None:
        super().__init__("HAN", scale, n_resgroups, n_resblocks, n_feats, reduction, rgb_range)
        self.add_head(scale, n_feats, rgb_range)
        groups: list[nn.Module] = [
            ResidualGroup(n_feats, n_resblocks, reduction) for _ in range(n_resgroups)
        ]
        self.body = nn.Sequential(*groups, conv(n_feats, n_feats, 3))
        self.csa = CSAM()
        self.la = LAM()
        self.last_conv = nn.Conv2d(n_feats * (n_resgroups + 1), n_feats, 3, 1, 1)
        self.last = nn.Conv2d(n_feats * 2, n_feats, 3, 1, 1)
        self.add_tail(scale, n_feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h, w)`` RGB in [0, 1] -> ``(N, 3, h*scale, w*scale)``."""
        x = self.features(x)
        res = x
        stack: list[torch.Tensor] = []
        for layer in self.body:
            res = layer(res)
            stack.insert(0, res)  # newest first, as the official torch.cat([new, old])
        layered = self.last_conv(self.la(torch.stack(stack, dim=1)))
        res = self.last(torch.cat([self.csa(res), layered], dim=1)) + x
        return self.image(res)
