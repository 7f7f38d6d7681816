"""Fused kernels for super-resolution networks (C++ with OpenMP, CUDA), with references.

- :func:`esr_upscale`: edge-SR's conv -> pixel shuffle -> reduction over the candidates
  (max / template matching / transformer / eSR-CNN) without storing the feature maps.
- :func:`pixel_shuffle`: pixel shuffle fused with the preceding bias and an activation.
- :func:`channel_attention` and :class:`ChannelAttention`: RCAN's channel attention with
  the RCAB residual add, in two passes over the feature map.
- :func:`conv3x3` and :class:`Conv3x3`: 3x3 convolution by Winograd F(4x4, 3x3) on the CPU,
  bias, ReLU and residual add fused (:mod:`srplug.ops.conv`).
- :func:`conv2d_act` and :class:`Conv2dAct`: direct convolution for narrow layers (first
  layers, 1x1 layers) with bias and ReLU / PReLU fused (:mod:`srplug.ops.direct`).
- :class:`SubPixelConvTranspose2d`: a transposed convolution computed as convolution + pixel
  shuffle (:mod:`srplug.ops.subpixel`).
- :func:`fuse`: rewrites a network in place to use all of the above where they apply.

Each takes ``impl="auto" | "ref" | "cpp" | "cuda"``; the pure-PyTorch references are in
:mod:`srplug.ops.reference`. The extension is compiled on first use and cached
(:mod:`srplug.ops.loader`); ``srplug doctor`` says what runs and why, ``srplug doctor
--build`` (or ``python -m srplug.ops build``) compiles ahead of time.
"""

from __future__ import annotations

from srplug.ops.conv import Conv3x3, conv3x3, winograd_filters
from srplug.ops.direct import Conv2dAct, conv2d_act
from srplug.ops.functional import (
    IMPLS,
    OpsFallbackWarning,
    channel_attention,
    esr_upscale,
    pixel_shuffle,
    resolve_impl,
)
from srplug.ops.fuse import fuse
from srplug.ops.loader import BuildStatus, OpsBuildError, load, status
from srplug.ops.modules import ChannelAttention
from srplug.ops.subpixel import SubPixelConvTranspose2d

__all__ = [
    "IMPLS",
    "BuildStatus",
    "ChannelAttention",
    "Conv2dAct",
    "Conv3x3",
    "OpsBuildError",
    "OpsFallbackWarning",
    "SubPixelConvTranspose2d",
    "channel_attention",
    "conv2d_act",
    "conv3x3",
    "esr_upscale",
    "fuse",
    "load",
    "pixel_shuffle",
    "resolve_impl",
    "status",
    "winograd_filters",
]
