"""Direct convolution for narrow layers on the CPU, bias and ReLU / PReLU fused.

The small super-resolution networks (ESPCN, FSRCNN, SRCNN) are made of convolutions with
one to 64 channels: a 5x5 layer from the single Y plane, 1x1 layers to 12 or 56 channels,
3x3 layers between 12 channels. oneDNN and im2col + GEMM run such layers at a fraction of
the speed they reach on wide ones (ESPCN's 5x5 1->64 layer: ~22 ms on a 256x256 plane with
``F.conv2d``, 3 ms in this kernel, one core). The C++ kernel keeps a block of output pixels
x up to 64 output channels in registers and adds the bias and the activation before storing.

- :func:`conv2d_act`: functional form, any kernel size, stride and zero padding.
- :class:`Conv2dAct`: an ``nn.Conv2d`` (same parameters and state-dict keys) that runs it,
  optionally sharing an ``nn.PReLU``'s slopes.

float32 CPU tensors run the kernel, bfloat16 and float16 ones are computed in float32 by it;
float64, CUDA tensors and ``impl="ref"`` run the reference
(:func:`srplug.ops.reference.conv2d_act`). Gradients are exact, through the reference.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from srplug.errors import InputError
from srplug.ops import reference
from srplug.ops.functional import (
    _check_float,
    _run,
    check_activation,
    check_impl,
    cpu_kernel_runs,
)
from srplug.ops.modules import share_parameters

__all__ = ["DIRECT_ACTIVATIONS", "Conv2dAct", "conv2d_act"]

DIRECT_ACTIVATIONS = ("none", "relu", "prelu")
_ACT_CODES = {"none": 0, "relu": 1, "prelu": 5}  # the kernel's codes (csrc/common.h)


def _check_padding(padding: object) -> tuple[int, int, int, int]:
    def ok(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if ok(padding):
        p = int(padding)  # type: ignore[call-overload]
        return (p, p, p, p)
    if isinstance(padding, (tuple, list)) and len(padding) in (2, 4) and all(map(ok, padding)):
        if len(padding) == 2:  # (rows, columns), as nn.Conv2d
            return (padding[0], padding[0], padding[1], padding[1])
        return (padding[0], padding[1], padding[2], padding[3])
    raise InputError(
        f"padding must be an integer >= 0, (rows, columns) or (top, bottom, left, right), "
        f"got {padding!r}"
    )


def conv2d_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    stride: int = 1,
    padding: int | tuple[int, ...] = 0,
    activation: str = "none",
    prelu_weight: torch.Tensor | None = None,
    impl: str = "auto",
) -> torch.Tensor:
    """``act(conv2d(pad(x), weight) + bias)``, zero padding.

    Args:
        x: ``(N, C, H, W)`` float, any memory format.
        weight: ``(K, C, kh, kw)``; ``bias``: ``(K,)`` or None.
        stride: stride of both axes, >= 1.
        padding: zeros around ``x``: one integer, ``(rows, columns)`` as ``nn.Conv2d``, or
            ``(top, bottom, left, right)``.
        activation: ``"none"``, ``"relu"`` or ``"prelu"`` (with ``prelu_weight``, 1 or ``K``
            slopes, as ``nn.PReLU``).
        impl: ``"auto"``, ``"ref"`` or ``"cpp"``; CUDA tensors run the reference (cuDNN) for
            every ``impl`` but ``"cpp"``, which is refused.

    Returns:
        ``(N, K, Ho, Wo)``, dtype and device of ``x``, channels_last when the kernel ran;
        ``Ho = (H + top + bottom - kh) // stride + 1``. bfloat16 and float16 are computed in
        float32, float64 by the reference.
    """
    _check_float("x", x)
    _check_float("weight", weight, x.device)
    if x.dim() != 4:
        raise InputError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.dim() != 4 or weight.shape[1] != x.shape[1]:
        raise InputError(
            f"weight must be (K, {x.shape[1]}, kh, kw) for x with {x.shape[1]} channels, "
            f"got shape {tuple(weight.shape)}"
        )
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise InputError(f"stride must be an integer >= 1, got {stride!r}")
    pads = _check_padding(padding)
    k = weight.shape[0]
    if x.shape[2] + pads[0] + pads[1] < weight.shape[2] or (
        x.shape[3] + pads[2] + pads[3] < weight.shape[3]
    ):
        raise InputError(
            f"the padded input ({x.shape[2] + pads[0] + pads[1]}x{x.shape[3] + pads[2] + pads[3]})"
            f" is smaller than the {weight.shape[2]}x{weight.shape[3]} filter; pad it more"
        )
    check_activation(activation, DIRECT_ACTIVATIONS)
    if bias is not None:
        _check_float("bias", bias, x.device)
        if bias.numel() != k:
            raise InputError(f"bias must hold one value per filter ({k}), has {bias.numel()}")
        bias = bias.reshape(-1)
    if activation == "prelu":
        if prelu_weight is None:
            raise InputError("activation='prelu' needs prelu_weight (1 or K slopes)")
        _check_float("prelu_weight", prelu_weight, x.device)
        if prelu_weight.numel() not in (1, k):
            raise InputError(f"prelu_weight must hold 1 or {k} slopes, has {prelu_weight.numel()}")
        prelu_weight = prelu_weight.reshape(-1)
    else:
        prelu_weight = None

    def ref(x_: torch.Tensor, w_: torch.Tensor, b_: Any, a_: Any) -> torch.Tensor:
        return reference.conv2d_act(x_, w_, b_, stride, pads, activation, a_)

    # no float64 kernel: the reference keeps its precision
    if not cpu_kernel_runs(impl, x.device) or x.dtype == torch.float64:
        cast = [None if t is None else t.to(x.dtype) for t in (bias, prelu_weight)]
        return ref(x, weight.to(x.dtype), *cast)
    act = _ACT_CODES[activation]

    def kernel(x_: torch.Tensor, w_: torch.Tensor, b_: Any, a_: Any) -> torch.Tensor:
        f32 = [None if t is None else t.float() for t in (b_, a_)]
        y = torch.ops.srplug_ops.direct_conv2d(
            x_.float(), w_.float(), f32[0], stride, *pads, act, f32[1]
        )
        return y.to(x_.dtype)

    return _run(kernel, ref, x, weight, bias, prelu_weight)


class Conv2dAct(nn.Conv2d):
    """``nn.Conv2d`` with zero padding, the activation fused, computed by :func:`conv2d_act`.

    Same parameters and state-dict keys as the ``nn.Conv2d`` it replaces. With
    ``activation="prelu"`` the slopes are read at every call from the ``nn.PReLU`` given,
    which is not registered here: it stays where it is in the network (its state-dict key
    does not move), and the caller stops applying it.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, bias: as ``nn.Conv2d``
            (integer or pair padding; no dilation, groups or other padding modes).
        activation: ``"none"``, ``"relu"`` or ``"prelu"``.
        prelu: the ``nn.PReLU`` whose slopes apply (``activation="prelu"`` only).
        impl: ``"auto"``, ``"ref"`` or ``"cpp"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        activation: str = "none",
        prelu: nn.PReLU | None = None,
        impl: str = "auto",
        **factory: Any,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, bias=bias, **factory
        )
        self.activation = check_activation(activation, DIRECT_ACTIVATIONS)
        if (activation == "prelu") != (prelu is not None):
            raise InputError("give an nn.PReLU exactly when activation='prelu'")
        self.__dict__["prelu"] = prelu  # a reference, not a submodule (see the class doc)
        self.impl = check_impl(impl)

    prelu: nn.PReLU | None

    @staticmethod
    def eligible(conv: nn.Module) -> bool:
        """Whether ``conv`` is a plain convolution this module can replace."""
        return (
            type(conv) is nn.Conv2d
            and conv.stride[0] == conv.stride[1]
            and isinstance(conv.padding, tuple)
            and conv.dilation == (1, 1)
            and conv.groups == 1
            and conv.padding_mode == "zeros"
        )

    @classmethod
    def worth_it(cls, conv: nn.Module) -> bool:
        """Whether the direct kernel clearly beats oneDNN on the CPU for ``conv``: a first
        layer from one channel (the Y plane) to 48 or more (ESPCN's 5x5 and SRCNN's 9x9
        1->64: 2.5x to 4x faster, FSRCNN's 5x5 1->56: ~1.4x; ``benchmarks/ops_bench.py``).
        Elsewhere oneDNN is as fast within the noise of a shared machine, or faster
        (3-channel input, narrow 3x3 layers, widening 1x1 layers)."""
        if not cls.eligible(conv):
            return False
        return conv.in_channels == 1 and conv.out_channels >= 48

    @classmethod
    def from_conv(
        cls, conv: nn.Conv2d, activation: nn.Module | None = None, impl: str = "auto"
    ) -> Conv2dAct:
        """A :class:`Conv2dAct` sharing ``conv``'s parameters (no copy), with ``activation``
        (``None``, ``nn.ReLU`` or ``nn.PReLU``) fused."""
        if not cls.eligible(conv):
            raise InputError(
                f"only nn.Conv2d with equal strides, integer padding, dilation 1, groups 1 and "
                f"zero padding can become a Conv2dAct, got {conv}"
            )
        if activation is None:
            act, prelu = "none", None
        elif isinstance(activation, nn.PReLU):
            act, prelu = "prelu", activation
        elif type(activation) is nn.ReLU:
            act, prelu = "relu", None
        else:
            raise InputError(f"only nn.ReLU or nn.PReLU can be fused, got {activation}")
        new = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,  # type: ignore[arg-type]
            conv.stride[0],
            conv.padding,  # type: ignore[arg-type]
            bias=conv.bias is not None,
            activation=act,
            prelu=prelu,
            impl=impl,
            device="meta",
        )
        return share_parameters(new, conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``act(conv(x))``."""
        return conv2d_act(
            x,
            self.weight,
            self.bias,
            stride=self.stride[0],
            padding=self.padding,  # type: ignore[arg-type]
            activation=self.activation,
            prelu_weight=None if self.prelu is None else self.prelu.weight,
            impl=self.impl,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation!r}"
