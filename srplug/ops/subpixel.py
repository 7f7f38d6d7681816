"""Transposed convolutions in sub-pixel form: ``conv2d`` + ``pixel_shuffle``.

A transposed convolution with stride ``s`` whose output is exactly ``s`` times its input
(``k + output_padding - 2 * padding == s``, FSRCNN's 9x9 deconvolution) computes output
pixel ``s*i + a`` as ``sum_q w[a + p + s*q] x[i - q]``: one ordinary convolution per
sub-pixel ``a``. They become one convolution to ``C_out * s * s`` channels and a pixel
shuffle, with the taps that are zero for every sub-pixel cropped away. Same results up to
float rounding, and on the CPU several times faster than ``F.conv_transpose2d`` (FSRCNN x2 on a
256x256 plane: the deconvolution is most of the network's time).

- :func:`deconv_to_subpixel`: a frozen :class:`SubPixelConv` equivalent to a
  ``nn.ConvTranspose2d`` (used by the OpenCV adapter's inference modules).
- :class:`SubPixelConvTranspose2d`: a ``nn.ConvTranspose2d`` (same parameters and state-dict
  keys) that runs its sub-pixel form, cached while the weights do not change, and the
  transposed convolution itself when gradients are needed. :func:`srplug.ops.fuse` swaps
  eligible transposed convolutions for it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srplug.errors import InputError
from srplug.ops.modules import share_parameters, version_key

__all__ = ["SubPixelConv", "SubPixelConvTranspose2d", "deconv_to_subpixel", "subpixel_form"]


class SubPixelConv(nn.Module):
    """``pad -> conv2d -> pixel_shuffle``: a transposed convolution in sub-pixel form, frozen.

    Args:
        weight: ``(C_out * s * s, C_in, kh, kw)``; ``bias``: ``(C_out * s * s,)`` or None.
        pads: ``(left, right, top, bottom)`` for ``F.pad`` (negative values crop).
        scale: ``s``.
    """

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None, pads: tuple[int, ...], scale: int
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.pads = pads
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, h, w)`` -> ``(N, C_out, h*s, w*s)``."""
        return _run_subpixel(x, self.weight, self.bias, self.pads, self.scale)

    def extra_repr(self) -> str:
        return f"kernel={tuple(self.weight.shape[-2:])}, pads={self.pads}, scale={self.scale}"


def _run_subpixel(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    pads: tuple[int, ...],
    scale: int,
) -> torch.Tensor:
    if any(pads):
        x = F.pad(x, pads)
    return F.pixel_shuffle(F.conv2d(x, weight, bias), scale)


def _subpixel_taps(k: int, s: int, p: int) -> tuple[int, int]:
    """``(q_lo, q_hi)``: the input offsets ``q`` (output ``s*i + a`` reads input ``i - q``
    through tap ``a + p + s*q``) that some sub-pixel ``a`` uses, for kernel ``k``."""
    lo = min(math.ceil((-a - p) / s) for a in range(s))
    hi = max(math.floor((k - 1 - a - p) / s) for a in range(s))
    return lo, hi


def _eligible(deconv: nn.Module) -> bool:
    if not isinstance(deconv, nn.ConvTranspose2d):
        return False
    s_h, s_w = deconv.stride
    if s_h != s_w or s_h < 2 or deconv.groups != 1 or tuple(deconv.dilation) != (1, 1):
        return False
    if not isinstance(deconv.padding, tuple) or deconv.padding_mode != "zeros":
        return False
    (k_h, k_w), (p_h, p_w) = deconv.kernel_size, deconv.padding
    op_h, op_w = deconv.output_padding
    return k_h + op_h - 2 * p_h == s_h and k_w + op_w - 2 * p_w == s_h


def subpixel_form(
    deconv: nn.ConvTranspose2d,
) -> tuple[torch.Tensor, torch.Tensor | None, tuple[int, int, int, int]]:
    """``(weight, bias, pads)`` of ``deconv``'s sub-pixel form (detached), for
    :func:`_run_subpixel`; ``deconv`` must be eligible (see :func:`deconv_to_subpixel`)."""
    s = deconv.stride[0]
    k_h, k_w = deconv.kernel_size
    p_h, p_w = deconv.padding  # type: ignore[misc]
    w = deconv.weight.detach()  # (C_in, C_out, kH, kW)
    c_in, c_out = w.shape[:2]
    (lo_h, hi_h), (lo_w, hi_w) = _subpixel_taps(k_h, s, p_h), _subpixel_taps(k_w, s, p_w)
    size_h, size_w = hi_h - lo_h + 1, hi_w - lo_w + 1
    # tap r of the new kernel reads input i - (hi - r): output s*i + a takes w[a + p + s*(hi - r)]
    weight = torch.zeros(c_out, s, s, c_in, size_h, size_w, dtype=w.dtype, device=w.device)
    for a_h in range(s):
        for r_h in range(size_h):
            t_h = a_h + p_h + s * (hi_h - r_h)
            if not 0 <= t_h < k_h:
                continue
            for a_w in range(s):
                for r_w in range(size_w):
                    t_w = a_w + p_w + s * (hi_w - r_w)
                    if 0 <= t_w < k_w:
                        weight[:, a_h, a_w, :, r_h, r_w] = w[:, :, t_h, t_w].T
    weight = weight.reshape(c_out * s * s, c_in, size_h, size_w)
    # crop the taps that are zero for every output channel
    used_h = weight.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    used_w = weight.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    r0, r1 = (int(used_h[0]), int(used_h[-1])) if used_h.numel() else (hi_h, hi_h)
    c0, c1 = (int(used_w[0]), int(used_w[-1])) if used_w.numel() else (hi_w, hi_w)
    weight = weight[:, :, r0 : r1 + 1, c0 : c1 + 1].contiguous()
    # kept tap r reads x[i - hi + r]: pad hi - r0 before and r1 - hi after (negative: crop)
    pads = (hi_w - c0, c1 - hi_w, hi_h - r0, r1 - hi_h)
    bias = None
    if deconv.bias is not None:
        bias = deconv.bias.detach().repeat_interleave(s * s)
    return weight, bias, pads


def deconv_to_subpixel(deconv: nn.ConvTranspose2d) -> SubPixelConv | None:
    """A frozen sub-pixel equivalent (``conv2d`` + ``pixel_shuffle``) of ``deconv``.

    FSRCNN loaded from OpenCV's graphs shrinks from a 9x9 transposed convolution to a 1x1
    convolution (every other tap is zero there). Returns ``None`` when ``deconv`` does not
    have the form (groups, dilation, unequal strides, stride 1, an output that is not exactly
    ``s`` times the input).
    """
    if not _eligible(deconv):
        return None
    weight, bias, pads = subpixel_form(deconv)
    return SubPixelConv(weight, bias, pads, deconv.stride[0])


class SubPixelConvTranspose2d(nn.ConvTranspose2d):
    """A ``nn.ConvTranspose2d`` computed in its sub-pixel form (see the module doc).

    Same parameters and state-dict keys as the transposed convolution it replaces (it is
    one). The sub-pixel weights are cached and recomputed when the weight or bias changes
    (version counter, storage, dtype, device). When gradients are needed the transposed
    convolution itself runs, so training is unaffected.
    """

    _cache: tuple[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor | None, tuple[int, ...]]]

    @staticmethod
    def eligible(deconv: nn.Module) -> bool:
        """Whether ``deconv`` is a plain transposed convolution with an output exactly
        ``stride`` times its input (stride >= 2, no groups or dilation)."""
        return type(deconv) is nn.ConvTranspose2d and _eligible(deconv)

    @classmethod
    def from_deconv(cls, deconv: nn.ConvTranspose2d) -> SubPixelConvTranspose2d:
        """A :class:`SubPixelConvTranspose2d` sharing ``deconv``'s parameters (no copy)."""
        if not cls.eligible(deconv):
            raise InputError(
                "only an nn.ConvTranspose2d with equal strides >= 2, groups 1, dilation 1, "
                f"zero padding and an output exactly stride times its input qualifies, got "
                f"{deconv}"
            )
        new = cls(
            deconv.in_channels,
            deconv.out_channels,
            deconv.kernel_size,  # type: ignore[arg-type]
            stride=deconv.stride,  # type: ignore[arg-type]
            padding=deconv.padding,  # type: ignore[arg-type]
            output_padding=deconv.output_padding,  # type: ignore[arg-type]
            bias=deconv.bias is not None,
            device="meta",
        )
        return share_parameters(new, deconv)

    def _subpixel(self) -> tuple[torch.Tensor, torch.Tensor | None, tuple[int, ...]]:
        key = version_key(self.weight, self.bias)
        cache = getattr(self, "_cache", None)
        if cache is None or cache[0] != key:
            weight, bias, pads = subpixel_form(self)
            cache = (key, (weight.contiguous(memory_format=torch.channels_last), bias, pads))
            self._cache = cache
        return cache[1]

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        """``(N, C_in, h, w)`` -> ``(N, C_out, h*s, w*s)``."""
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in self.parameters())
        )
        if needs_grad or output_size is not None or torch.compiler.is_compiling():
            return super().forward(x, output_size)
        weight, bias, pads = self._subpixel()
        return _run_subpixel(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype),
                             pads, self.stride[0])  # fmt: skip
