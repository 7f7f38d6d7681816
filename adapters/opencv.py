"""A drop-in for OpenCV's ``cv2.dnn_superres``, running the networks with torch.

Existing OpenCV code works after changing one import line::

    # from cv2 import dnn_superres
    from srplug.adapters.opencv import dnn_superres

    sr = dnn_superres.DnnSuperResImpl_create()
    sr.readModel("ESPCN_x2.pb")
    sr.setModel("espcn", 2)
    result = sr.upsample(img)  # BGR uint8 (H, W, 3) in, (2H, 2W, 3) out

(``from srplug.adapters import opencv as dnn_superres`` works as well.)

What ``readModel`` takes:

- OpenCV dnn_superres's own frozen TensorFlow graphs: ``ESPCN_x{2,3,4}.pb``,
  ``FSRCNN_x*.pb``, ``FSRCNN-small_x*.pb`` (srplug's ``espcn`` / ``fsrcnn`` /
  ``fsrcnn-small`` models load them exactly) and ``LapSRN_x{2,4,8}.pb`` (built here as
  :class:`LapSRN`). The family and the scale are read from the graph. OpenCV 5's own dnn
  engine cannot run these files; srplug can.
- srplug weight files (safetensors or torch files): ``setModel(name, scale)`` then names the
  srplug model (OpenCV's ``"espcn"``, ``"fsrcnn"``, ``"edsr"`` or any registered name).
- A registered srplug model name (``readModel("bicubic")``): built with its default weights.

Two pre/post-processing pipelines (``pipeline=`` of :class:`DnnSuperResImpl`):

- ``"opencv"`` (the default for OpenCV's ``.pb`` graphs) reproduces dnn_superres 4.x exactly:
  ``cvtColor(BGR2YCrCb)`` (full range), Y / 255 in float32 through the network, the output
  times 255 rounded and saturated to uint8, Cr / Cb enlarged with ``cv2.resize``
  (``INTER_LINEAR``) on the float planes, then ``cvtColor(YCrCb2BGR)``. Outputs match
  OpenCV 4.x within one grey level (``benchmarks/opencv_parity.py`` measures it). The luma
  network runs straight to uint8 (:func:`luma_network`; dedicated paths for ESPCN and FSRCNN).
- ``"srplug"`` (the default for srplug models) is srplug's own: BT.601 studio-range Y with
  MATLAB-bicubic chroma for Y networks, RGB for RGB networks, alpha kept; the conventions
  srplug's models are trained with.

Devices: ``setPreferableTarget`` maps OpenCV's targets to torch devices
(:data:`TARGET_DEVICES`). A CUDA / OpenCL target on a machine where torch sees no GPU falls
back to the CPU with a ``RuntimeWarning``, as OpenCV itself falls back when its CUDA backend
is missing. The FP16 targets run float16 on the GPU; ``DNN_TARGET_CPU_FP16`` runs float32.
"""

from __future__ import annotations

import copy
import importlib
import math
import os
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import srplug
from srplug.errors import InputError, UnknownModelError, WeightsError
from srplug.ops.conv import conv3x3, winograd_filters
from srplug.ops.direct import conv2d_act
from srplug.ops.subpixel import SubPixelConv, deconv_to_subpixel
from srplug.upsampler import ModuleUpsampler, TensorUpsampler

__all__ = [
    "DNN_BACKEND_CUDA",
    "DNN_BACKEND_DEFAULT",
    "DNN_BACKEND_OPENCV",
    "DNN_TARGET_CPU",
    "DNN_TARGET_CPU_FP16",
    "DNN_TARGET_CUDA",
    "DNN_TARGET_CUDA_FP16",
    "DNN_TARGET_OPENCL",
    "DNN_TARGET_OPENCL_FP16",
    "OPENCV_ALGORITHMS",
    "TARGET_DEVICES",
    "DnnSuperResImpl",
    "DnnSuperResImpl_create",
    "LapSRN",
    "deconv_to_subpixel",
    "dnn_superres",
    "inference_module",
    "luma_network",
    "opencv_preprocess",
    "opencv_reconstruct",
    "read_opencv_graph",
]

Pipeline = Literal["auto", "opencv", "srplug"]

# cv2.dnn.Backend / cv2.dnn.Target values (identical in OpenCV 4.x and 5.x).
DNN_BACKEND_DEFAULT = 0
DNN_BACKEND_HALIDE = 1
DNN_BACKEND_INFERENCE_ENGINE = 2
DNN_BACKEND_OPENCV = 3
DNN_BACKEND_VKCOM = 4
DNN_BACKEND_CUDA = 5
DNN_BACKEND_WEBNN = 6
DNN_BACKEND_TIMVX = 7
DNN_BACKEND_CANN = 8
DNN_TARGET_CPU = 0
DNN_TARGET_OPENCL = 1
DNN_TARGET_OPENCL_FP16 = 2
DNN_TARGET_MYRIAD = 3
DNN_TARGET_VULKAN = 4
DNN_TARGET_FPGA = 5
DNN_TARGET_CUDA = 6
DNN_TARGET_CUDA_FP16 = 7
DNN_TARGET_HDDL = 8
DNN_TARGET_NPU = 9
DNN_TARGET_CPU_FP16 = 10

_BACKENDS = frozenset(range(0, 9))

TARGET_DEVICES: dict[int, tuple[str, torch.dtype]] = {
    DNN_TARGET_CPU: ("cpu", torch.float32),
    DNN_TARGET_CPU_FP16: ("cpu", torch.float32),
    DNN_TARGET_OPENCL: ("gpu", torch.float32),
    DNN_TARGET_OPENCL_FP16: ("gpu", torch.float16),
    DNN_TARGET_CUDA: ("cuda", torch.float32),
    DNN_TARGET_CUDA_FP16: ("cuda", torch.float16),
}
"""OpenCV target -> (torch device kind, dtype). ``"gpu"`` is CUDA, else Apple MPS. Other
targets (MYRIAD, VULKAN, FPGA, HDDL, NPU) run on the CPU with a warning."""

OPENCV_ALGORITHMS = ("espcn", "fsrcnn", "lapsrn", "edsr")
"""The algorithm names OpenCV's ``setModel`` knows."""

# OpenCV algorithm name -> srplug model names it may stand for.
_ALGO_MODELS: dict[str, tuple[str, ...]] = {
    "espcn": ("espcn",),
    "fsrcnn": ("fsrcnn", "fsrcnn-small"),
    "lapsrn": ("lapsrn",),
    "edsr": ("edsr",),
}


# ------------------------------------------------------------------------------- the pipelines


def opencv_preprocess(img: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """OpenCV dnn_superres's ``preprocess_YCrCb`` and Y split.

    Args:
        img: ``(H, W, 3)`` BGR or ``(H, W)`` / ``(H, W, 1)`` gray; uint8 (0..255) or float32
            (OpenCV's 0..255 convention).

    Returns:
        ``(y, planes)``: ``y`` the network input, float32 ``(H, W)`` in [0, 1] (full-range
        luma of ``cv2.COLOR_BGR2YCrCb`` / 255 for colour, the gray value / 255 for gray), and
        ``planes`` the float32 ``(H, W, 3)`` Y, Cr, Cb planes / 255 for colour input (``None``
        for gray), which :func:`opencv_reconstruct` needs.
    """
    img = _check_opencv_image(img)
    inv = np.float32(1.0 / 255.0)
    if img.ndim == 2:
        return img.astype(np.float32) * inv, None
    if img.dtype == np.uint8:
        planes = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb).astype(np.float32) * inv
    else:
        planes = cv2.cvtColor(img * inv, cv2.COLOR_BGR2YCrCb)
    return np.ascontiguousarray(planes[:, :, 0]), planes


def _split_ycrcb(img: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """:func:`opencv_preprocess` for a checked image without the ``(H, W, 3)`` float copy:
    ``(y, (cr, cb))``, each a contiguous float32 ``(H, W)`` plane / 255 (same values)."""
    inv = np.float32(1.0 / 255.0)
    if img.ndim == 2:
        return np.multiply(img, inv, dtype=np.float32), None
    if img.dtype == np.uint8:
        ycrcb = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
        y, cr, cb = (np.multiply(ycrcb[:, :, i], inv, dtype=np.float32) for i in range(3))
        return y, (cr, cb)
    y, cr, cb = cv2.split(cv2.cvtColor(img * inv, cv2.COLOR_BGR2YCrCb))
    return y, (cr, cb)


def opencv_reconstruct(y: np.ndarray, planes: np.ndarray | None, scale: int) -> np.ndarray:
    """OpenCV dnn_superres's ``reconstruct_YCrCb``.

    Args:
        y: float32 ``(H*s, W*s)`` network output (in [0, 1] up to the network's overshoot).
        planes: the ``planes`` of :func:`opencv_preprocess` (``None`` for gray input).
        scale: the factor ``s`` the chroma planes are enlarged by.

    Returns:
        uint8 ``(H*s, W*s, 3)`` BGR (``(H*s, W*s)`` for gray): ``y * 255`` and the bilinear
        (``cv2.INTER_LINEAR``) Cr, Cb planes * 255, rounded half to even and saturated as
        OpenCV's ``convertTo(CV_8U, 255)``, then ``cv2.COLOR_YCrCb2BGR``.
    """
    y8 = _to_uint8(np.asarray(y, dtype=np.float32))
    if planes is None:
        return y8
    chroma = (np.ascontiguousarray(planes[:, :, 1]), np.ascontiguousarray(planes[:, :, 2]))
    return _merge_ycrcb(y8, chroma, scale)


def _merge_ycrcb(y8: np.ndarray, chroma: tuple[np.ndarray, np.ndarray], scale: int) -> np.ndarray:
    """uint8 ``(H*s, W*s)`` luma + the float32 ``(H, W)`` Cr, Cb planes / 255 -> BGR uint8.

    Each chroma plane is enlarged alone (a two-channel ``cv2.resize`` rounds differently),
    then ``convertScaleAbs(alpha=255)``: OpenCV's ``convertTo(CV_8U, 255)`` for the
    non-negative bilinear values (float32 product, rounded half to even, saturated).
    """
    up = [cv2.resize(c, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) for c in chroma]
    if up[0].shape != y8.shape:
        raise InputError(
            f"the network gave a {y8.shape[1]}x{y8.shape[0]} luma plane but the chroma planes "
            f"enlarged x{scale} are {up[0].shape[1]}x{up[0].shape[0]}: the scale passed to "
            "setModel does not match the model"
        )
    merged = cv2.merge([y8, *(cv2.convertScaleAbs(c, alpha=255.0) for c in up)])
    return cv2.cvtColor(merged, cv2.COLOR_YCrCb2BGR)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """OpenCV's ``convertTo(CV_8U, 255.0)`` of float32 ``x``: ``x * 255`` in float32, rounded
    half to even, saturated to [0, 255]."""
    scaled = x * np.float32(255.0)
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def _check_opencv_image(img: Any) -> np.ndarray:
    """The image as OpenCV dnn_superres accepts it: uint8 / float32, gray or BGR."""
    if not isinstance(img, np.ndarray):
        raise InputError(
            f"upsample expects a numpy image as cv2.imread returns it, got {type(img).__name__}"
        )
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.dtype not in (np.uint8, np.float32):
        raise InputError(
            f"OpenCV's pipeline takes uint8 or float32 (0..255) images, got {img.dtype}; "
            "convert with img.astype(np.float32) or use pipeline='srplug'"
        )
    if img.ndim == 3 and img.shape[2] == 4:
        raise InputError(
            "OpenCV's pipeline takes gray or BGR images, not BGRA; drop the alpha with "
            "cv2.cvtColor(img, cv2.COLOR_BGRA2BGR) or use pipeline='srplug', which keeps it"
        )
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise InputError(f"expected an (H, W) gray or (H, W, 3) BGR image, got shape {img.shape}")
    if img.size == 0:
        raise InputError(f"cannot upsample an empty image of shape {img.shape}")
    return img


# ------------------------------------------------------------------------- faster inference


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last)


class _PointwiseConv(nn.Module):
    """A 1x1 convolution as a matrix product over the channels of an NHWC tensor."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach().flatten(1), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), False)
        self.conv_weight = conv.weight.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C_out, H, W)`` (channels_last in, channels_last out)."""
        if not _is_channels_last(x):
            return F.conv2d(x, self.conv_weight, self.bias)
        return F.linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(0, 3, 1, 2)


class _ChannelsLastPReLU(nn.Module):
    """``PReLU`` computed on the ``(N*H*W, C)`` view of a channels_last tensor, where torch's
    per-channel kernel is several times faster than on the 4-d strided tensor."""

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        self.weight = nn.Parameter(prelu.weight.detach(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same shape and memory format as ``x``."""
        if not _is_channels_last(x) or self.weight.numel() == 1:
            return F.prelu(x, self.weight)
        n, c, h, w = x.shape
        flat = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
        return F.prelu(flat, self.weight).view(n, h, w, c).permute(0, 3, 1, 2)


def _rewrite(child: nn.Module) -> nn.Module | None:
    """A faster, equivalent module for ``child``, or ``None`` to keep it."""
    if isinstance(child, nn.ConvTranspose2d):
        return deconv_to_subpixel(child)
    if isinstance(child, nn.ReLU):
        child.inplace = True  # the convolution output it overwrites is used nowhere else
        return None
    if isinstance(child, nn.PReLU):
        return _ChannelsLastPReLU(child)
    if (
        type(child) is nn.Conv2d
        and child.kernel_size == (1, 1)
        and child.stride == (1, 1)
        and child.padding in ((0, 0), "valid")
        and child.dilation == (1, 1)
        and child.groups == 1
    ):
        return _PointwiseConv(child)
    return None


def inference_module(module: nn.Module) -> nn.Module:
    """A frozen, eval-mode copy of ``module`` for inference, faster on CPU and equal up to
    float rounding; ``module`` itself is not changed.

    Rewrites: transposed convolutions to sub-pixel convolutions (:func:`deconv_to_subpixel`),
    1x1 convolutions to matrix products over channels, ``PReLU`` on channels_last tensors via
    a 2-d view, ``ReLU`` in place. Run it under ``torch.inference_mode()`` (in-place ReLU would
    break autograd).
    """
    fast = copy.deepcopy(module).eval()
    for parent in list(fast.modules()):
        for name, child in list(parent.named_children()):
            replacement = _rewrite(child)
            if replacement is not None:
                setattr(parent, name, replacement)
    for param in fast.parameters():
        param.requires_grad_(False)
    return fast


# ---------------------------------------------------------------- luma networks to uint8


def _uint8_(t: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``convertTo(CV_8U, 255.0)`` of a float tensor ``t`` that may be overwritten:
    times 255 in float32, rounded half to even, saturated; uint8, same shape."""
    t = t.float() if t.dtype != torch.float32 else t
    return t.mul_(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)


class _LumaNet(nn.Module):
    """A Y network for OpenCV's pipeline: ``(1, 1, h, w)`` float luma in [0, 1] -> the uint8
    ``(h*s, w*s)`` plane of :func:`_uint8_` applied to the network output."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(1, 1, h, w)`` -> uint8 ``(h*s, w*s)``."""
        return _uint8_(self.net(x)[0, 0])


def _frozen(t: torch.Tensor, fmt: torch.memory_format = torch.contiguous_format) -> nn.Parameter:
    return nn.Parameter(t.detach().clone().contiguous(memory_format=fmt), requires_grad=False)


def _act_inplace(act: nn.Module) -> str:
    """``"relu"``, ``"tanh"`` or ``"none"`` for an activation module, ``""`` for another."""
    if isinstance(act, nn.ReLU):
        return "relu"
    if isinstance(act, nn.Tanh):
        return "tanh"
    return "none" if isinstance(act, nn.Identity) else ""


def _apply_(x: torch.Tensor, act: str) -> torch.Tensor:
    if act == "relu":
        return x.relu_()
    return x.tanh_() if act == "tanh" else x


class _FastESPCN(nn.Module):
    """ESPCN (``conv1 -> act -> conv2 -> act -> conv3 -> shuffle -> out_act``) for
    :class:`_LumaNet`'s contract, equal up to float rounding.

    With ReLU (OpenCV's graphs) the first layer runs srplug's direct kernel and the 3x3
    middle layer the Winograd kernel, the ReLU fused into both (:mod:`srplug.ops`). The
    output activation and the uint8 conversion run before the pixel shuffle (they are
    elementwise), the shuffle moves bytes. At scale 2 the last convolution (to only 4
    channels, which oneDNN pads to 16) computes each 2x2 block of LR pixels at once: a
    stride-2 convolution one tap larger to 16 channels, then a pixel shuffle by 4.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        convs = [model.conv1, model.conv2, model.conv3]
        self.scale = int(model.scale)
        self.act, self.out_act = _act_inplace(model.act), _act_inplace(model.out_act)
        self.pads = [int(c.padding[0]) for c in convs]
        self.w1, self.b1 = _frozen(convs[0].weight), _frozen(convs[0].bias)
        self.w2, self.b2 = _frozen(convs[1].weight), _frozen(convs[1].bias)
        # the 3x3 middle layer by Winograd (ReLU fused) where it applies
        self.winograd = (
            self.act in ("relu", "none") and self.pads[1] == 1 and convs[1].kernel_size == (3, 3)
        )
        self.u2 = winograd_filters(self.w2) if self.winograd else None
        w3, b3 = convs[2].weight.detach(), convs[2].bias.detach()
        self.packed = self.scale == 2
        if self.packed:
            w3, b3 = _pack_2x2(w3, b3, self.scale)
        self.w3, self.b3 = _frozen(w3, torch.channels_last), _frozen(b3)

    def _conv_act(
        self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, pad: int
    ) -> torch.Tensor:
        """A hidden layer: ``act(conv(x))``, ReLU fused into srplug's direct kernel."""
        if self.act in ("relu", "none"):
            return conv2d_act(x, w, b, padding=pad, activation=self.act)
        return _apply_(F.conv2d(x, w, b, padding=pad), self.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(1, 1, h, w)`` -> uint8 ``(h*s, w*s)``."""
        h, w = x.shape[-2:]
        p1, p2, p3 = self.pads
        a = self._conv_act(x, self.w1, self.b1, p1)
        if self.winograd:
            a = conv3x3(a, self.w2, self.b2, activation=self.act, filters=self.u2)
        else:
            a = self._conv_act(a, self.w2, self.b2, p2)
        s = self.scale
        if not self.packed:
            a = F.conv2d(a, self.w3, self.b3, padding=p3)
            return F.pixel_shuffle(_uint8_(_apply_(a, self.out_act)), s)[0, 0]
        if h % 2 or w % 2:  # one more zero row / column: whole 2x2 blocks
            a = F.conv2d(F.pad(a, (p3, p3 + w % 2, p3, p3 + h % 2)), self.w3, self.b3, stride=2)
        else:
            a = F.conv2d(a, self.w3, self.b3, stride=2, padding=p3)
        out = F.pixel_shuffle(_uint8_(_apply_(a, self.out_act)), 2 * s)[0, 0]
        return out[: h * s, : w * s]


def _pack_2x2(
    weight: torch.Tensor, bias: torch.Tensor, s: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``k x k`` convolution to ``s*s`` sub-pixel channels (padding ``k // 2``) as a stride-2
    ``(k+1) x (k+1)`` one to ``4*s*s`` channels, ordered for ``pixel_shuffle(2*s)``: LR pixel
    ``(2I + di, 2J + dj)``, sub-pixel ``c`` lands on channel
    ``(s*di + c // s) * 2*s + s*dj + c % s``."""
    c_out, c_in, k, _ = weight.shape
    packed = weight.new_zeros(4 * c_out, c_in, k + 1, k + 1)
    packed_bias = bias.new_zeros(4 * c_out)
    for di in range(2):
        for dj in range(2):
            for c in range(c_out):
                idx = (s * di + c // s) * 2 * s + s * dj + c % s
                packed[idx, :, di : di + k, dj : dj + k] = weight[c]
                packed_bias[idx] = bias[c]
    return packed, packed_bias


class _FastFSRCNN(nn.Module):
    """FSRCNN (a PReLU after every convolution, then a transposed convolution) for
    :class:`_LumaNet`'s contract, equal up to float rounding.

    Features stay channels_last. The first (5x5 from the Y plane) and the 1x1 layers run
    srplug's direct kernel with the PReLU fused (:func:`srplug.ops.conv2d_act`), the 3x3
    mapping layers oneDNN (faster at 12 channels) and the PReLU on the ``(h*w, C)`` matrix.
    The transposed convolution is its sub-pixel form (:func:`deconv_to_subpixel`); OpenCV's
    graphs reduce it to a 1x1 convolution to ``s*s`` channels, a matrix product, and the
    pixel shuffle moves uint8 bytes.
    """

    def __init__(self, model: nn.Module, subpixel: SubPixelConv) -> None:
        super().__init__()
        cl = torch.channels_last
        self.scale = int(model.scale)
        layers = [model.extract, model.shrink, *model.mapping, model.expand]
        self.direct: list[bool] = []  # per layer: srplug's direct kernel, else oneDNN
        self.pads: list[int] = []
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.alphas = nn.ParameterList()
        for layer in layers:
            conv = layer.conv
            self.direct.append(conv.kernel_size == (1, 1) or conv.in_channels == 1)
            self.pads.append(int(conv.padding[0]))
            self.weights.append(_frozen(conv.weight, cl))
            self.biases.append(_frozen(conv.bias))
            self.alphas.append(_frozen(layer.act.weight))
        self.last_mm = subpixel.weight.shape[-2:] == (1, 1) and not any(subpixel.pads)
        self.last_pads = tuple(subpixel.pads)
        w = subpixel.weight.detach()
        self.last_w = _frozen(w.flatten(1).T) if self.last_mm else _frozen(w, cl)
        self.last_b = _frozen(subpixel.bias if subpixel.bias is not None else w.new_zeros(len(w)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(1, 1, h, w)`` -> uint8 ``(h*s, w*s)``."""
        h, w = x.shape[-2:]
        s = self.scale
        for direct, pad, wt, b, alpha in zip(
            self.direct, self.pads, self.weights, self.biases, self.alphas, strict=True
        ):
            if direct:
                x = conv2d_act(x, wt, b, padding=pad, activation="prelu", prelu_weight=alpha)
            else:
                y = F.conv2d(x, wt, b, padding=pad)  # channels_last: (h*w, C) in memory
                m = F.prelu(y.permute(0, 2, 3, 1).reshape(h * w, -1), alpha)
                x = m.view(1, h, w, -1).permute(0, 3, 1, 2)
        if self.last_mm:
            m = x.permute(0, 2, 3, 1).reshape(h * w, -1)
            y = _uint8_(torch.addmm(self.last_b, m, self.last_w))  # (h*w, s*s)
            return y.view(h, w, s, s).permute(0, 2, 1, 3).reshape(h * s, w * s)
        if any(self.last_pads):
            x = F.pad(x, self.last_pads)
        y = _uint8_(F.conv2d(x, self.last_w, self.last_b))
        return F.pixel_shuffle(y, s)[0, 0]


def luma_network(model: nn.Module) -> nn.Module:
    """The network for OpenCV's pipeline: ``(1, 1, h, w)`` float luma in [0, 1] -> uint8
    ``(h*s, w*s)``, OpenCV's ``convertTo(CV_8U, 255)`` of ``model``'s output (equal up to
    float rounding, so a rare rounding tie may land one grey level apart).

    srplug's ESPCN and FSRCNN get dedicated fast paths (:class:`_FastESPCN`,
    :class:`_FastFSRCNN`); other models run :func:`inference_module` (LapSRN as it is).
    Run it under ``torch.inference_mode()``.
    """
    fast = _fast_luma(model)
    if fast is not None:
        return fast.eval()
    net = model if isinstance(model, LapSRN) else inference_module(model)
    return _LumaNet(net).eval()


def _plugin_class(module: str, name: str) -> type | None:
    """``module.name``, or ``None`` when that plugin is not installed."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return None


def _fast_luma(model: nn.Module) -> nn.Module | None:
    """The dedicated fast path for ``model``, or ``None`` when there is none."""
    espcn = _plugin_class("srplug_espcn.model", "ESPCN")
    if espcn is not None and type(model) is espcn:
        acts = (_act_inplace(model.act), _act_inplace(model.out_act))
        return _FastESPCN(model) if "" not in acts else None
    fsrcnn = _plugin_class("srplug_fsrcnn.model", "FSRCNN")
    if fsrcnn is not None and type(model) is fsrcnn:
        sub = deconv_to_subpixel(model.deconv)
        layers = [model.extract, model.shrink, *model.mapping, model.expand]
        if isinstance(sub, SubPixelConv) and all(isinstance(m.act, nn.PReLU) for m in layers):
            return _FastFSRCNN(model, sub)
    return None


# ------------------------------------------------------------------------------------- LapSRN


def _numbered(base: str, index: int) -> str:
    """TensorFlow's unique node names: ``base``, ``base_1``, ``base_2`` ..."""
    return base if index == 0 else f"{base}_{index}"


def _same_pad(k: int) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding (before, after) of a stride-1 kernel of size ``k``."""
    return (k - 1) // 2, k // 2


class LapSRN(nn.Module):
    """LapSRN as in OpenCV dnn_superres's ``LapSRN_x{2,4,8}.pb`` (fannymonori/TF-LapSRN).

    Each of ``levels`` pyramid levels doubles the size. Level ``l`` runs a feature branch
    (a 3x3 conv from 1 to ``features`` channels, then ``depth - 1`` 3x3 convs, each followed
    by LeakyReLU(``slope``)) on the previous level's residual (the LR image at level 0), a
    4x4 conv to 4 channels + depth-to-space + LeakyReLU giving the residual, and an image
    branch (4x4 conv 1 -> 4 + depth-to-space) on the previous output; the level's output is
    LeakyReLU(image + residual). Convolutions use TensorFlow ``SAME`` zero padding (the 4x4
    ones pad 1 before and 2 after).

    ``forward`` maps a luma ``(N, 1, h, w)`` float in [0, 1] (OpenCV: full-range Y / 255) to
    ``(N, 1, h*2**levels, w*2**levels)``; :meth:`pyramid` returns every level's output.
    """

    def __init__(self, levels: int, features: int = 64, depth: int = 10, slope: float = 0.2):
        super().__init__()
        if levels < 1 or depth < 1 or features < 1:
            raise InputError("LapSRN needs levels, features and depth >= 1")
        self.levels = levels
        self.scale = 2**levels
        self.slope = float(slope)
        self.features = nn.ModuleList()
        self.residual = nn.ModuleList()
        self.image = nn.ModuleList()
        for _ in range(levels):
            convs = [nn.Conv2d(1, features, 3)]
            convs += [nn.Conv2d(features, features, 3) for _ in range(depth - 1)]
            self.features.append(nn.ModuleList(convs))
            self.residual.append(nn.Conv2d(features, 4, 4, bias=False))
            self.image.append(nn.Conv2d(1, 4, 4, bias=False))

    def _conv(self, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
        assert isinstance(conv, nn.Conv2d)
        kh, kw = conv.kernel_size
        (t, b), (left, r) = _same_pad(kh), _same_pad(kw)
        if (t, b, left, r) == (1, 1, 1, 1):
            return F.conv2d(x, conv.weight, conv.bias, padding=1)
        return conv(F.pad(x, (left, r, t, b)))

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        # in place: x is always a fresh result, and autograd supports an in-place
        # LeakyReLU with a positive slope
        return F.leaky_relu(x, self.slope, inplace=self.slope > 0)

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs ``[x2, x4, ...]`` of every level for ``(N, 1, h, w)`` input."""
        outputs = []
        feat_in, image = x, x
        for feats, res_conv, img_conv in zip(self.features, self.residual, self.image, strict=True):
            f = feat_in
            for conv in feats:
                f = self._act(self._conv(conv, f))
            residual = self._act(F.pixel_shuffle(self._conv(res_conv, f), 2))
            up = F.pixel_shuffle(self._conv(img_conv, image), 2)
            image = self._act(up.add_(residual))
            outputs.append(image)
            feat_in = residual
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, h, w)`` -> ``(N, 1, h * scale, w * scale)``."""
        return self.pyramid(x)[-1]

    def extra_repr(self) -> str:
        return f"levels={self.levels}, scale={self.scale}, slope={self.slope}"

    @classmethod
    def from_graph(cls, path: str | os.PathLike[str]) -> LapSRN:
        """Build and load the network of OpenCV's ``LapSRN_x*.pb`` at ``path``.

        Raises :class:`~srplug.errors.WeightsError` when the graph is not such a LapSRN.
        """
        from srplug.formats.tensorflow_pb import read_graph

        nodes = read_graph(path)
        const = {
            n.name: n.attrs["value"]
            for n in nodes
            if n.op == "Const" and isinstance(n.attrs.get("value"), np.ndarray)
        }
        levels = sum(1 for n in nodes if n.op == "DepthToSpace") // 2
        slopes = {float(v) for k, v in const.items() if k.startswith("mul_") and v.size == 1}
        slopes.discard(-1.0)
        if levels < 1 or len(slopes) != 1:
            raise WeightsError(
                f"{path}: not an OpenCV dnn_superres LapSRN graph ({levels} pyramid levels, "
                f"LeakyReLU slopes {sorted(slopes)})"
            )
        depth = 1 + sum(1 for k in const if k.startswith("Variable")) // levels
        first = const.get("0_0f")
        if first is None or first.ndim != 4:
            raise WeightsError(f"{path}: LapSRN graph without its first kernel 0_0f")
        net = cls(levels, features=int(first.shape[-1]), depth=depth, slope=slopes.pop())
        state: dict[str, torch.Tensor] = {}

        def kernel(name: str) -> torch.Tensor:
            if name not in const:
                raise WeightsError(f"{path}: LapSRN graph without constant {name!r}")
            return torch.from_numpy(np.array(const[name], dtype=np.float32)).permute(3, 2, 0, 1)

        features = int(first.shape[-1])
        for level in range(levels):
            for i in range(depth):
                index = level * (depth - 1) + i - 1  # Variable, Variable_1 ... across levels
                name = f"0_{level}f" if i == 0 else _numbered("Variable", index)
                bias = const.get(f"{i}_{level}bias")
                if bias is None:
                    raise WeightsError(f"{path}: LapSRN graph without constant '{i}_{level}bias'")
                state[f"features.{level}.{i}.weight"] = kernel(name)
                flat = np.array(bias, dtype=np.float32).reshape(-1)
                state[f"features.{level}.{i}.bias"] = torch.from_numpy(
                    np.broadcast_to(flat, (features,)).copy()
                )
            deconv = "reconstruction_2_deconv_f"
            state[f"residual.{level}.weight"] = kernel(_numbered(deconv, 2 * level))
            state[f"image.{level}.weight"] = kernel(_numbered(deconv, 2 * level + 1))
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(
                f"{path}: LapSRN graph tensors do not fit: {str(exc).splitlines()[0]}"
            ) from exc
        return net


# ------------------------------------------------------------------------------ .pb graphs


@dataclass(frozen=True)
class GraphInfo:
    """What :func:`read_opencv_graph` found in an OpenCV dnn_superres ``.pb`` file."""

    family: Literal["espcn", "fsrcnn", "fsrcnn-small", "lapsrn"]
    """srplug model name (``"lapsrn"``: built by this module)."""
    algorithm: str
    """OpenCV's ``setModel`` name for it (``"fsrcnn"`` for FSRCNN-small too)."""
    scale: int
    outputs: tuple[tuple[str, int], ...] = ()
    """LapSRN's output nodes and their scales (``("NCHW_output_2x", 2)`` ...)."""


def read_opencv_graph(path: str | os.PathLike[str]) -> GraphInfo:
    """Which of OpenCV dnn_superres's networks the frozen graph at ``path`` holds.

    Raises :class:`~srplug.errors.WeightsError` for other graphs (EDSR's among them).
    """
    from srplug.formats.tensorflow_pb import read_graph

    nodes = read_graph(path)
    ops = Counter(n.op for n in nodes)
    d2s = [n for n in nodes if n.op == "DepthToSpace"]
    const = {n.name: n.attrs.get("value") for n in nodes if n.op == "Const"}
    if ops["Abs"] and len(d2s) == 1:
        f1, f2 = const.get("f1"), const.get("f2")
        n_conv = ops["Conv2D"]
        small = (
            isinstance(f1, np.ndarray)
            and isinstance(f2, np.ndarray)
            and (f1.shape[-1], f2.shape[-1], n_conv - 4) == (32, 5, 1)
        )
        scale = int(d2s[0].attrs.get("block_size", 0))
        return GraphInfo("fsrcnn-small" if small else "fsrcnn", "fsrcnn", scale)
    if ops["Tanh"] and len(d2s) == 1:
        return GraphInfo("espcn", "espcn", int(d2s[0].attrs.get("block_size", 0)))
    if len(d2s) >= 2 and len(d2s) % 2 == 0 and not ops["Tanh"] and not ops["Abs"]:
        levels = len(d2s) // 2
        outputs = []  # NCHW_output_<k>x is x<k>; NCHW_output is the last level
        for n in nodes:
            tail = n.name.rsplit("_", 1)[-1]
            if n.op == "Transpose" and tail.endswith("x") and tail[:-1].isdigit():
                outputs.append((n.name, int(tail[:-1])))
            elif n.op == "Transpose":
                outputs.append((n.name, 2**levels))
        return GraphInfo("lapsrn", "lapsrn", 2**levels, tuple(outputs))
    raise WeightsError(
        f"{path} is not one of OpenCV dnn_superres's ESPCN, FSRCNN or LapSRN graphs (EDSR "
        "graphs are not supported: use a srplug model, e.g. readModel('edsr') when installed)"
    )


# ---------------------------------------------------------------------------- the drop-in


def _same_model(a: str, b: str) -> bool:
    """Whether names ``a`` and ``b`` (or aliases) are the same registered model."""
    try:
        return srplug.info(a).name == srplug.info(b).name
    except UnknownModelError:
        return False


def _resolve_target(target: int) -> tuple[torch.device, torch.dtype]:
    """The torch device and dtype for an OpenCV ``DNN_TARGET_*`` value (see module doc)."""
    if target not in TARGET_DEVICES:
        warnings.warn(
            f"OpenCV target {target} has no torch counterpart; running on the CPU",
            RuntimeWarning,
            stacklevel=3,
        )
        return torch.device("cpu"), torch.float32
    kind, dtype = TARGET_DEVICES[target]
    if kind == "cpu":
        return torch.device("cpu"), dtype
    if torch.cuda.is_available():
        return torch.device("cuda"), dtype
    if kind == "gpu" and torch.backends.mps.is_available():
        return torch.device("mps"), dtype
    warnings.warn(
        f"OpenCV target {target} asks for a GPU but torch sees none here; running on the CPU "
        "in float32 (install a CUDA build of torch to use the GPU)",
        RuntimeWarning,
        stacklevel=3,
    )
    return torch.device("cpu"), torch.float32


class DnnSuperResImpl:
    """OpenCV's ``cv2.dnn_superres.DnnSuperResImpl`` API on srplug models.

    Args:
        algo, scale: as :meth:`setModel` (OpenCV's second constructor); may be given later.
        pipeline: ``"opencv"`` (OpenCV's YCrCb pre/post-processing, see the module doc),
            ``"srplug"`` (srplug's own) or ``"auto"``: ``"opencv"`` for OpenCV's ``.pb``
            graphs, ``"srplug"`` for srplug models.
    """

    def __init__(self, algo: str = "", scale: int = 0, *, pipeline: Pipeline = "auto") -> None:
        if pipeline not in ("auto", "opencv", "srplug"):
            raise InputError(f"pipeline must be 'auto', 'opencv' or 'srplug', got {pipeline!r}")
        self._pipeline: Pipeline = pipeline
        self._algo = ""
        self._scale = 0
        self._source: Path | str | None = None
        self._graph: GraphInfo | None = None
        self._device = torch.device("cpu")
        self._dtype = torch.float32
        self._backend = DNN_BACKEND_DEFAULT
        self._target = DNN_TARGET_CPU
        self._upsampler: TensorUpsampler | None = None
        self._net: nn.Module | None = None
        self._luma: nn.Module | None = None  # luma_network of a Y model (OpenCV pipeline)
        if algo or scale:  # OpenCV's DnnSuperResImpl(algo, scale) records them only
            self._algo, self._scale = self._checked_choice(algo, scale)

    @staticmethod
    def create() -> DnnSuperResImpl:
        """A new, empty instance (OpenCV's ``DnnSuperResImpl.create()``)."""
        return DnnSuperResImpl()

    def __repr__(self) -> str:
        return (
            f"DnnSuperResImpl(algo={self._algo!r}, scale={self._scale}, "
            f"model={self.model_name!r}, pipeline={self.pipeline!r}, device={str(self._device)!r})"
        )

    # --------------------------------------------------------------------------- OpenCV API

    def readModel(self, path: str | os.PathLike[str], definition: str = "") -> None:
        """Read a model: an OpenCV dnn_superres ``.pb`` graph, a srplug weights file, or a
        registered srplug model name (see the module doc).

        ``.pb`` graphs are read and checked at once (family and scale come from the graph);
        weight files and names are built when :meth:`setModel` says which model and scale.
        """
        if definition:
            raise InputError(
                "readModel(weights, definition): srplug reads the frozen .pb graph alone; "
                "call readModel(path) without a definition file"
            )
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise InputError(f"readModel needs a file path or a model name, got {path!r}")
        file = Path(path).expanduser()
        self._upsampler = self._net = self._luma = None
        self._graph = None
        if file.is_file():
            self._source = file
            if file.suffix.lower() == ".pb":
                self._graph = read_opencv_graph(file)
                if self._algo:
                    self._check_graph_choice()
                self._build()
            return
        name = str(path).strip().lower()
        try:
            srplug.info(name)
        except UnknownModelError as exc:
            raise InputError(
                f"model file {str(path)!r} does not exist and is not a registered srplug model "
                f"name ({exc}); pass the path of a .pb / weights file or a name from `srplug list`"
            ) from None
        self._source = name

    def setModel(self, algo: str, scale: int) -> None:
        """Choose the algorithm and scale: OpenCV's ``"espcn"``, ``"fsrcnn"``, ``"lapsrn"``,
        ``"edsr"``, or any registered srplug model name.

        With a ``.pb`` graph read, ``algo`` must name its family and ``scale`` its scale.
        Without :meth:`readModel`, a srplug model name is built with its default weights.
        """
        self._algo, self._scale = self._checked_choice(algo, scale)
        if self._graph is not None:
            self._check_graph_choice()
            if self._upsampler is not None:
                return  # the graph's network is built already
        self._upsampler = self._net = self._luma = None
        self._build()

    def upsample(self, img: np.ndarray) -> np.ndarray:
        """Upscale ``img`` by :meth:`getScale`.

        Args:
            img: ``(H, W, 3)`` BGR or ``(H, W)`` gray, uint8 (or float32 on OpenCV's 0..255
                scale); ``(H, W, 4)`` BGRA and uint16 only with the srplug pipeline.

        Returns:
            ``(H*s, W*s, 3)`` BGR or ``(H*s, W*s)`` gray, uint8 (OpenCV pipeline, as OpenCV
            returns it for uint8 and float32 input) or the input's dtype (srplug pipeline).
        """
        up = self._require_model()
        if self.pipeline == "srplug":
            return self._upsample_srplug(up, img)
        return self._upsample_opencv(img)

    def upsampleMultioutput(
        self,
        img: np.ndarray,
        imgs_new: list[np.ndarray] | None,
        scale_factors: Sequence[int],
        node_names: Sequence[str],
    ) -> list[np.ndarray]:
        """LapSRN's intermediate outputs: ``node_names[i]`` (``"NCHW_output_2x"``,
        ``"NCHW_output_4x"``, ``"NCHW_output"`` ...) enlarged by ``scale_factors[i]``.

        The images are appended to ``imgs_new`` (a list, as in OpenCV's C++ API; OpenCV's
        Python binding leaves it empty) and also returned. Only LapSRN has several outputs;
        other models raise :class:`~srplug.errors.InputError`.
        """
        self._require_model()
        if len(scale_factors) != len(node_names) or not node_names:
            raise InputError(
                "upsampleMultioutput needs as many scale_factors as node_names, at least one"
            )
        if not isinstance(self._net, LapSRN) or self._graph is None:
            raise InputError(
                f"only LapSRN has several outputs, not {self.model_name!r}; call upsample(img)"
            )
        known = dict(self._graph.outputs)
        levels = []
        for name, factor in zip(node_names, scale_factors, strict=True):
            if name not in known:
                raise InputError(
                    f"LapSRN graph has no output node {name!r}; its outputs are "
                    + ", ".join(f"{n} (x{s})" for n, s in self._graph.outputs)
                )
            if int(factor) != known[name]:
                raise InputError(
                    f"output {name!r} is x{known[name]}, but scale factor {factor} was given"
                )
            levels.append(int(math.log2(known[name])) - 1)
        y, planes = opencv_preprocess(img)
        with torch.inference_mode():
            x = torch.from_numpy(y)[None, None].to(self._device, self._dtype)
            pyramid = self._net.pyramid(x)
            outs = [pyramid[level][0, 0].float().cpu().numpy() for level in levels]
        results = [
            opencv_reconstruct(out, planes, int(f))
            for out, f in zip(outs, scale_factors, strict=True)
        ]
        if imgs_new is not None:
            imgs_new.extend(results)
        return results

    def getScale(self) -> int:
        """The scale given to :meth:`setModel` (0 before)."""
        return self._scale

    def getAlgorithm(self) -> str:
        """The algorithm name given to :meth:`setModel` (``""`` before)."""
        return self._algo

    def setPreferableBackend(self, backend_id: int) -> None:
        """Accept an OpenCV ``DNN_BACKEND_*`` value; torch chooses its own kernels, so only
        the target (:meth:`setPreferableTarget`) decides where the network runs."""
        self._require_read("setting the backend")
        if isinstance(backend_id, bool) or int(backend_id) not in _BACKENDS:
            raise InputError(f"unknown OpenCV backend {backend_id!r}; use cv2.dnn.DNN_BACKEND_*")
        self._backend = int(backend_id)

    def setPreferableTarget(self, target_id: int) -> None:
        """Run on the torch device for an OpenCV ``DNN_TARGET_*`` value (``TARGET_DEVICES``;
        GPU targets fall back to the CPU with a ``RuntimeWarning`` when torch sees no GPU)."""
        self._require_read("setting the target")
        if isinstance(target_id, bool) or not isinstance(target_id, (int, np.integer)):
            raise InputError(f"unknown OpenCV target {target_id!r}; use cv2.dnn.DNN_TARGET_*")
        device, dtype = _resolve_target(int(target_id))
        self._target = int(target_id)
        if (device, dtype) != (self._device, self._dtype):
            self._device, self._dtype = device, dtype
            self._upsampler = self._net = self._luma = None
            if self._graph is not None or self._algo:
                self._build()

    # ------------------------------------------------------------------------------ extras

    @property
    def pipeline(self) -> Literal["opencv", "srplug"]:
        """The pre/post-processing in use (``"auto"`` resolved)."""
        if self._pipeline != "auto":
            return self._pipeline
        return "opencv" if self._graph is not None else "srplug"

    @property
    def device(self) -> torch.device:
        """Where the network runs."""
        return self._device

    @property
    def upsampler(self) -> TensorUpsampler | None:
        """The srplug upsampler behind this object (``None`` before a model is set)."""
        return self._upsampler

    @property
    def model_name(self) -> str | None:
        """The srplug model name in use (``"lapsrn"`` for OpenCV's LapSRN graphs)."""
        return None if self._upsampler is None else self._upsampler.name

    # ---------------------------------------------------------------------------- internals

    def _require_read(self, what: str) -> None:
        if self._source is None and self._upsampler is None:
            raise InputError(f"no model is read; call readModel(path) before {what}")

    def _require_model(self) -> TensorUpsampler:
        if self._upsampler is None:
            if self._source is None:
                raise InputError(
                    "model not specified: call readModel(path) and setModel(algo, scale) first"
                )
            if self._graph is None and not self._algo:
                raise InputError("call setModel(algo, scale) after readModel to choose the model")
            self._build()
        assert self._upsampler is not None
        return self._upsampler

    @staticmethod
    def _checked_choice(algo: object, scale: object) -> tuple[str, int]:
        if not isinstance(algo, str) or not algo.strip():
            raise InputError(f"setModel needs an algorithm name, got {algo!r}")
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
            raise InputError(f"setModel needs a positive integer scale, got {scale!r}")
        return algo.strip().lower(), int(scale)

    def _check_graph_choice(self) -> None:
        graph = self._graph
        assert graph is not None
        allowed = {graph.algorithm, graph.family}
        if self._algo not in allowed:
            raise InputError(
                f"the graph read holds {graph.family.upper()} x{graph.scale}, but setModel "
                f"asked for {self._algo!r}; call setModel({graph.algorithm!r}, {graph.scale})"
            )
        if self._scale != graph.scale:
            raise InputError(
                f"the graph read is for x{graph.scale}, not x{self._scale}; call "
                f"setModel({graph.algorithm!r}, {graph.scale}) or read the x{self._scale} file"
            )

    def _build(self) -> None:
        """Build the upsampler (and the inference network) for the current choice."""
        graph, source = self._graph, self._source
        if graph is not None:
            assert isinstance(source, Path)
            if graph.family == "lapsrn":
                net = LapSRN.from_graph(source)
                up: TensorUpsampler = ModuleUpsampler(
                    net,
                    name="lapsrn",
                    scale=net.scale,
                    channels="y",
                    device=self._device,
                    dtype=self._dtype,
                )
            else:
                up = srplug.get(
                    graph.family, weights=source, device=self._device, dtype=self._dtype
                )
        else:
            if not self._algo:
                return
            up = self._build_srplug(source)
        self._upsampler = up
        self._luma = None
        if isinstance(up.model, LapSRN):
            self._net = up.model
        else:
            self._net = None if up.model is None else inference_module(up.model)
        if up.model is not None and up.channels == "y":
            self._luma = luma_network(up.model)

    def _build_srplug(self, source: Path | str | None) -> TensorUpsampler:
        algo, scale = self._algo, self._scale
        if algo == "lapsrn":
            raise InputError(
                "LapSRN runs from OpenCV's LapSRN_x*.pb graphs only: readModel('LapSRN_x4.pb')"
            )
        if isinstance(source, str):  # a model name given to readModel
            name = source
            if algo not in OPENCV_ALGORITHMS and not _same_model(algo, name):
                raise InputError(
                    f"readModel named model {name!r} but setModel asked for {algo!r}; pass "
                    f"setModel({name!r}, scale)"
                )
            return self._get(name, scale, "default")
        candidates = _ALGO_MODELS.get(algo, (algo,))
        weights = "default" if source is None else source
        first: Exception | None = None
        for name in candidates:
            try:
                return self._get(name, scale, weights)
            except (WeightsError, UnknownModelError) as exc:
                first = first or exc
        assert first is not None
        if source is None and isinstance(first, WeightsError):
            raise WeightsError(
                f"{first}. Call readModel(path) with a weights file (e.g. OpenCV's "
                f"{algo.upper()}_x{scale}.pb) before setModel"
            ) from first
        raise first

    def _get(self, name: str, scale: int, weights: Any) -> TensorUpsampler:
        return srplug.get(
            name, scale=scale, weights=weights, device=self._device, dtype=self._dtype
        )

    def _run_y(self, y: np.ndarray) -> np.ndarray:
        """The network on a float32 ``(H, W)`` luma in [0, 1]: its uint8 ``(H*s, W*s)``
        output (OpenCV's ``convertTo(CV_8U, 255)``)."""
        up = self._upsampler
        assert up is not None
        with torch.inference_mode():
            x = torch.from_numpy(y)[None, None].to(self._device)
            if self._luma is not None:
                return self._luma(x.to(self._dtype)).cpu().numpy()
            out = up.upscale_tensor(x)[0, 0].float().cpu().numpy()
        return _to_uint8(out)

    def _run_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """The network on float32 ``(H, W, 3)`` RGB in [0, 1]: float32 ``(H*s, W*s, 3)``."""
        up = self._upsampler
        assert up is not None
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
            x = x.to(self._device)
            if self._net is not None:
                fmt = torch.channels_last if self._device.type == "cpu" else torch.preserve_format
                out = self._net(x.to(self._dtype).contiguous(memory_format=fmt))
            else:
                out = up.upscale_tensor(x)
            return out[0].permute(1, 2, 0).float().cpu().numpy()

    def _upsample_opencv(self, img: np.ndarray) -> np.ndarray:
        up = self._upsampler
        assert up is not None
        img = _check_opencv_image(img)
        if up.channels == "y":
            y, chroma = _split_ycrcb(img)
            y8 = self._run_y(y)
            return y8 if chroma is None else _merge_ycrcb(y8, chroma, up.scale)
        # an RGB network (OpenCV's "edsr" path: colour in, colour out, no chroma split)
        inv = np.float32(1.0 / 255.0)
        if img.ndim == 2:
            rgb = np.repeat((img.astype(np.float32) * inv)[:, :, None], 3, axis=2)
            out = self._run_rgb(rgb)
            return _to_uint8(out @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
        rgb = img[:, :, ::-1].astype(np.float32) * inv
        return np.ascontiguousarray(_to_uint8(self._run_rgb(rgb))[:, :, ::-1])

    def _upsample_srplug(self, up: TensorUpsampler, img: np.ndarray) -> np.ndarray:
        if not isinstance(img, np.ndarray):
            raise InputError(f"upsample expects a numpy image, got {type(img).__name__}")
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        as_float = img.dtype == np.float32  # OpenCV's float convention: 0..255, uint8 out
        if as_float:
            img = np.clip(img * np.float32(1.0 / 255.0), 0.0, 1.0)
        if img.ndim == 3 and img.shape[2] in (3, 4):
            # BGR(A) <-> RGB(A) by indexing: unlike cv2.cvtColor it takes any dtype and empty
            # images, so the upsampler, not OpenCV, decides what it refuses.
            order = [2, 1, 0, 3][: img.shape[2]]
            out = np.ascontiguousarray(up(np.ascontiguousarray(img[:, :, order]))[:, :, order])
        else:
            out = up(img)
        return _to_uint8(out) if as_float else out


def DnnSuperResImpl_create() -> DnnSuperResImpl:
    """A new, empty :class:`DnnSuperResImpl` (OpenCV's ``DnnSuperResImpl_create()``)."""
    return DnnSuperResImpl()


dnn_superres = sys.modules[__name__]
"""This module under OpenCV's name: ``from srplug.adapters.opencv import dnn_superres``
replaces ``from cv2 import dnn_superres``."""
