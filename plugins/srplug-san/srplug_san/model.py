"""SAN (Dai et al., "Second-order Attention Network for Single Image Super-Resolution",
CVPR 2019), laid out like the authors' code that made the released checkpoints
(daitao/SAN, ``TestCode/code/model/san.py``).

Structure: head conv; a region-level non-local block (the feature map cut into 2x2 regions,
an embedded-Gaussian non-local block on each); ``n_resgroups`` local-source residual
attention groups (LSRAG: ``n_resblocks`` plain residual blocks, second-order channel
attention, a conv, a local skip) each followed by the share-source skip ``+ gamma * F0``;
the same region non-local block again; the long skip from the head; the EDSR upsampler.

Second-order channel attention (SOCA) pools the channel covariance of the features,
normalises it by its trace, takes its square root with 5 Newton-Schulz iterations, averages
its rows into a ``(N, C)`` descriptor and gates the channels with
``sigmoid(W2 relu(W1 .))``.

Official quirks kept for exactness (checkpoints and outputs must match):

- the non-local block max-pools ``g`` and ``phi`` by 2 (the code meant to switch this off,
  but a local variable overrides the flag), so keys are ``g.0`` and ``phi.0``;
- SOCA uses at most a 1000x1000 window of the features, chosen as the official code does;
- some parameters are created but never used in ``forward``: ``gamma`` of each LSRAG,
  ``conv_last`` of the network and the SOCA inside the region non-local module. They stay so
  that checkpoints load strictly, but are frozen (``requires_grad=False``) so training with
  ``DistributedDataParallel`` sees no unused trainable parameter.

Export: while ``torch.export`` traces (``srplug.export.to_onnx``), the region halves and the
SOCA window bounds are computed from the input size inside the graph instead of in Python, so
one graph with dynamic height and width serves every size (``H, W >= 4``, as eagerly; smaller
inputs are not refused there). Eager and ``torch.compile`` runs take the unchanged Python path.
"""

from __future__ import annotations

import torch
from srplug_rcan.blocks import MeanShiftedNet, attention_gate, conv
from torch import nn
from torch.nn import functional as F

from srplug.errors import InputError

__all__ = [
    "LSRAG",
    "SAN",
    "SOCA",
    "NonLocalBlock",
    "RegionNonLocal",
    "ResBlock",
    "covariance_pool",
    "sqrtm_newton_schulz",
]

#: Side of the largest window SOCA pools over (the released code's value).
SOCA_WINDOW = 1000
#: Newton-Schulz iterations of the matrix square root.
SQRTM_ITERATIONS = 5


def covariance_pool(x: torch.Tensor) -> torch.Tensor:
    """Channel covariance ``(N, C, C)`` of ``(N, C, H, W)`` features: ``Xc Xc^T / (H W)`` with
    ``Xc`` the features minus their spatial mean (MPN-COV's ``CovpoolLayer``)."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    centred = flat - flat.mean(dim=2, keepdim=True)
    return centred @ centred.transpose(1, 2) / (h * w)


def sqrtm_newton_schulz(cov: torch.Tensor, iterations: int = SQRTM_ITERATIONS) -> torch.Tensor:
    """Square root of symmetric positive semi-definite ``(N, C, C)`` matrices by coupled
    Newton-Schulz iterations after trace normalisation, as MPN-COV's ``SqrtmLayer``:
    ``A = cov / tr(cov)``, ``Y0 = A``, ``Z0 = I``, ``T = (3I - Z Y) / 2``, ``Y <- Y T``,
    ``Z <- T Z``; the last step computes ``Y T`` only; the result is ``Y sqrt(tr(cov))``.
    A zero matrix (flat features) gives zero where the official code gives NaN."""
    n, c, _ = cov.shape
    eye3 = 3.0 * torch.eye(c, dtype=cov.dtype, device=cov.device).expand(n, c, c)
    trace = cov.diagonal(dim1=1, dim2=2).sum(dim=1).view(n, 1, 1)
    trace = trace.clamp_min(torch.finfo(cov.dtype).tiny)  # flat features: 0, not NaN
    a = cov / trace
    t = 0.5 * (eye3 - a)
    if iterations < 2:
        y = t  # as the official code: the one-step result is T itself
    else:
        y, z = a @ t, t
        for _ in range(1, iterations - 1):
            t = 0.5 * (eye3 - z @ y)
            y, z = y @ t, t @ z
        y = 0.5 * y @ (eye3 - z @ y)
    return y * trace.sqrt()


def _exported_size(value: torch.Tensor, minimum: int = 0) -> int:
    """The 0-d integer tensor ``value`` (computed from the input's size) as a Python-level size.

    While ``torch.export`` traces with dynamic height and width this is an *unbacked* size:
    the exporter reasons about it without guards (the halves and window offsets below are
    floor divisions of the image size, which it cannot prove facts about for every size), so
    the graph stays valid for all sizes; eagerly it is a plain ``int``."""
    size = value.item()
    torch._check(size >= minimum)
    return size


def _exported_window(size: int, other: int, side: int) -> tuple[int, int]:
    """``(start, stop)`` along one axis of the window of :func:`_soca_window`, from the axis
    size ``size``, the other axis size ``other`` and the window side, as tensor arithmetic
    (for tracing; equal to the eager branches for every size, see the tests).

    The official code crops an axis when ``size >= side`` (centred: start
    ``(size - side) // 2``) or, a quirk, when ``other == side``; then a shorter axis gets a
    negative start that Python wraps: ``max((size - side) // 2 + size, 0)``. The stop is
    ``min((size + side) // 2, size)`` in every case."""
    s = torch.scalar_tensor(size, dtype=torch.int64)
    o = torch.scalar_tensor(other, dtype=torch.int64)
    centred = torch.div(s - side, 2, rounding_mode="floor")
    wrapped = torch.where(o == side, (centred + s).clamp_min(0), torch.zeros_like(s))
    start = torch.where(s >= side, centred, wrapped)
    stop = torch.minimum(torch.div(s + side, 2, rounding_mode="floor"), s)
    return _exported_size(start), _exported_size(stop)


def _soca_window(x: torch.Tensor, side: int) -> torch.Tensor:
    """The part of ``x`` (``(N, C, H, W)``) the official SOCA pools over (Python slicing with
    the same, sometimes negative, offsets; while exporting, the same bounds as tensor
    arithmetic so that the graph does not depend on which branch the example size took)."""
    h, w = x.shape[-2:]
    if torch.compiler.is_exporting():
        (top, bottom), (left, right) = _exported_window(h, w, side), _exported_window(w, h, side)
        return x[:, :, top:bottom, left:right]
    if h < side and w < side:
        return x
    if h < side and w > side:
        left = (w - side) // 2
        return x[:, :, :, left : left + side]
    if w < side and h > side:
        top = (h - side) // 2
        return x[:, :, top : top + side, :]
    top, left = (h - side) // 2, (w - side) // 2
    return x[:, :, top : top + side, left : left + side]


class SOCA(nn.Module):
    """Second-order channel attention: ``x * sigmoid(W2 relu(W1 mean_rows(sqrtm(cov(x)))))``.

    ``conv_du.0`` / ``conv_du.2`` are the 1x1 convolutions (``C -> C // reduction -> C``).
    The statistics are computed in float32 at least (half precision would overflow).
    """

    def __init__(self, channels: int, reduction: int = 8, window: int = SOCA_WINDOW) -> None:
        super().__init__()
        self.window = window
        self.conv_du = attention_gate(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        part = _soca_window(x, self.window)
        stat_dtype = torch.promote_types(x.dtype, torch.float32)
        root = sqrtm_newton_schulz(covariance_pool(part.to(stat_dtype)))
        descriptor = root.mean(dim=1).view(n, c, 1, 1).to(x.dtype)
        return self.conv_du(descriptor) * x


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block: ``x + W(softmax(theta(x)^T phi(x)) g(x))`` with 1x1
    ``theta``, ``phi``, ``g`` to ``inter_channels`` (``phi`` and ``g`` max-pooled by 2, see the
    module notes) and a 1x1 ``W`` back to ``channels``, initialised to zero as officially.
    Needs ``H, W >= 2``."""

    def __init__(self, channels: int, inter_channels: int) -> None:
        super().__init__()
        self.inter_channels = inter_channels
        self.g = nn.Sequential(nn.Conv2d(channels, inter_channels, 1), nn.MaxPool2d(2))
        self.theta = nn.Conv2d(channels, inter_channels, 1)
        self.phi = nn.Sequential(nn.Conv2d(channels, inter_channels, 1), nn.MaxPool2d(2))
        self.W = nn.Conv2d(inter_channels, channels, 1)
        nn.init.zeros_(self.W.weight)
        nn.init.zeros_(self.W.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ci = self.inter_channels
        g = self.g(x).reshape(n, ci, -1).transpose(1, 2)
        theta = self.theta(x).reshape(n, ci, -1).transpose(1, 2)
        phi = self.phi(x).reshape(n, ci, -1)
        attention = F.softmax(theta @ phi, dim=-1)
        y = (attention @ g).transpose(1, 2).reshape(n, ci, h, w)
        return self.W(y) + x


class RegionNonLocal(nn.Module):
    """Region-level non-local module (official ``Nonlocal_CA``): the map is cut at
    ``(H // 2, W // 2)`` into four regions, each goes through the shared
    :class:`NonLocalBlock` (``non_local``). ``soca`` is unused (kept for the checkpoint keys,
    frozen). Needs ``H, W >= 4``."""

    def __init__(self, channels: int, inter_channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.soca = SOCA(channels, reduction=reduction)
        self.soca.requires_grad_(False)
        self.non_local = NonLocalBlock(channels, inter_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if torch.compiler.is_exporting():  # the same halves, as sizes valid for any H and W
            h1 = _exported_size(torch.scalar_tensor(h, dtype=torch.int64) // 2, minimum=2)
            w1 = _exported_size(torch.scalar_tensor(w, dtype=torch.int64) // 2, minimum=2)
        elif h < 4 or w < 4:
            raise InputError(
                f"SAN needs feature maps of at least 4x4 pixels (its region non-local block "
                f"halves 2x2 regions), got {h}x{w}: give a larger image"
            )
        else:
            h1, w1 = h // 2, w // 2
        top = torch.cat([self.non_local(x[..., :h1, :w1]), self.non_local(x[..., :h1, w1:])], 3)
        bottom = torch.cat([self.non_local(x[..., h1:, :w1]), self.non_local(x[..., h1:, w1:])], 3)
        return torch.cat([top, bottom], 2)


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` (official ``RB``, key ``conv_first.{0,2}``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_first = nn.Sequential(
            conv(channels, channels, 3), nn.ReLU(inplace=True), conv(channels, channels, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_first(x) + x


class LSRAG(nn.Module):
    """Local-source residual attention group: ``x + conv_last(soca(rcab(x)))`` where ``rcab``
    is ``n_resblocks`` :class:`ResBlock` (the official name, although they hold no channel
    attention). ``gamma`` is unused officially (frozen here)."""

    def __init__(self, channels: int, n_resblocks: int, reduction: int) -> None:
        super().__init__()
        self.rcab = nn.ModuleList(ResBlock(channels) for _ in range(n_resblocks))
        self.soca = SOCA(channels, reduction=reduction)
        self.conv_last = conv(channels, channels, 3)
        self.gamma = nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for block in self.rcab:
            y = block(y)
        return self.conv_last(self.soca(y)) + x


class SAN(MeanShiftedNet):
    """The second-order attention network.

    ``forward`` maps RGB ``(N, 3, h, w)`` float in [0, 1] (``h, w >= 4``) to
    ``(N, 3, h*scale, w*scale)``, not clamped; inside, the network sees ``x * rgb_range`` as
    officially (``rgb_range`` 255).

    Keys: ``sub_mean``, ``head.0``, ``non_local.{soca.conv_du.*,non_local.{g.0,theta,phi.0,W}}``,
    ``RG.{i}.{rcab.{j}.conv_first.{0,2},soca.conv_du.{0,2},conv_last,gamma}``, ``gamma``,
    ``conv_last``, ``tail.0.{0,2,..}``, ``tail.1``, ``add_mean``.

    Args:
        scale: 2, 3, 4 or 8.
        n_resgroups: LSRAGs (20).
        n_resblocks: residual blocks per LSRAG (10).
        n_feats: feature channels (64).
        reduction: SOCA reduction in the groups (16).
        rgb_range: the pixel range the weights were trained for (255).
    """

    receptive_field: int | None = None
    """Global (covariance pooling and non-local blocks see the whole image): srplug's
    tiling uses its default context instead of measuring."""

    def __init__(
        self,
        scale: int,
        n_resgroups: int = 20,
        n_resblocks: int = 10,
        n_feats: int = 64,
        reduction: int = 16,
        rgb_range: float = 255.0,
    ) -> None:
        super().__init__("SAN", scale, n_resgroups, n_resblocks, n_feats, reduction, rgb_range)
        if n_feats < 16 or n_feats // reduction < 1:
            raise InputError(
                f"SAN needs n_feats >= 16 and >= reduction, got n_feats={n_feats}, "
                f"reduction={reduction}"
            )
        self.add_head(scale, n_feats, rgb_range)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.RG = nn.ModuleList(LSRAG(n_feats, n_resblocks, reduction) for _ in range(n_resgroups))
        self.conv_last = conv(n_feats, n_feats, 3)
        self.conv_last.requires_grad_(False)
        self.add_tail(scale, n_feats)
        self.non_local = RegionNonLocal(n_feats, n_feats // 8, reduction=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h, w)`` RGB in [0, 1] -> ``(N, 3, h*scale, w*scale)``."""
        x = self.features(x)
        shared = self.non_local(x)
        y = shared
        for group in self.RG:
            y = group(y) + self.gamma * shared
        y = self.non_local(y) + x
        return self.image(y)
