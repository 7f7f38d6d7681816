"""3x3 convolutions by Winograd F(4x4, 3x3) on the CPU, bias, ReLU and residual add fused.

A 3x3 convolution (stride 1, zero padding 1) computed tile by tile: each 4x4 output tile
from a 6x6 input patch with 36 multiply-adds per input/output channel pair instead of 144,
so the matrix products (run by the BLAS) do a quarter of the arithmetic of a direct
convolution. The transforms of input and output are C++ kernels over channels_last memory;
the output transform adds the bias, applies the ReLU and adds a residual on the way out.

Rounding differs from a direct convolution: the transforms scale values by up to 2^6, so
expect relative errors around 1e-6 (float32) against ``F.conv2d`` instead of ~1e-7 (measured
in ``tests/ops/test_conv.py``).

- :func:`conv3x3`: functional form; :func:`winograd_filters`: the filter transform.
- :class:`Conv3x3`: an ``nn.Conv2d`` (same parameters and state-dict keys) that runs it, and
  caches the transformed filters while the weights do not change.

On CUDA tensors the reference (cuDNN, which picks its own Winograd or implicit-GEMM
algorithm) runs: there is no srplug CUDA kernel for this op.
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
from srplug.ops.modules import share_parameters, version_key

__all__ = ["CONV_ACTIVATIONS", "Conv3x3", "conv3x3", "winograd_filters"]

CONV_ACTIVATIONS = ("none", "relu")

# F(4x4, 3x3) with interpolation points 0, 1, -1, 2, -2 and infinity
_G = (
    (1 / 4, 0.0, 0.0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0.0, 0.0, 1.0),
)
_KERNEL_DTYPES = (torch.float32, torch.float64)


def winograd_filters(weight: torch.Tensor) -> torch.Tensor:
    """``(K, C, 3, 3)`` filters -> ``(36, C, K)``: ``G g G^T`` per filter, flattened 6x6.

    Computed in float64 and returned in the dtype of ``weight`` (float32 or float64; other
    dtypes in float32), detached.
    """
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (3, 3):
        raise InputError(f"weight must be (K, C, 3, 3), got shape {tuple(weight.shape)}")
    dtype = weight.dtype if weight.dtype in _KERNEL_DTYPES else torch.float32
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    u = torch.einsum("ia,kcab,jb->ijck", g, weight.detach().double(), g)  # (6, 6, C, K)
    return u.reshape(36, weight.shape[1], weight.shape[0]).to(dtype).contiguous()


def _check_chunk(chunk: int) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0:
        raise InputError(f"chunk must be an integer >= 0 (0: automatic), got {chunk!r}")
    return chunk


def conv3x3(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    activation: str = "none",
    residual: torch.Tensor | None = None,
    impl: str = "auto",
    filters: torch.Tensor | None = None,
    chunk: int = 0,
) -> torch.Tensor:
    """``act(conv3x3(x, weight) + bias) (+ residual)``, stride 1, zero padding 1.

    Args:
        x: ``(N, C, H, W)`` float, NCHW or channels_last (the kernel works in channels_last;
            the output keeps the format of ``x``).
        weight: ``(K, C, 3, 3)``; ``bias``: ``(K,)`` or None.
        activation: ``"none"`` or ``"relu"``.
        residual: ``(N, K, H, W)`` added after the activation (a residual block's skip).
        impl: ``"auto"``, ``"ref"`` (``F.conv2d``), ``"cpp"`` (the Winograd kernel); on CUDA
            tensors the reference runs for every ``impl`` but ``"cpp"``, which is refused.
        filters: ``winograd_filters(weight)`` when the caller caches it (must match).
        chunk: output tiles per pass (0: automatic); tuning only.

    Returns:
        ``(N, K, H, W)``, dtype and device of ``x``. bfloat16 and float16 are computed in
        float32. Gradients: exact, through the reference.
    """
    _check_float("x", x)
    _check_float("weight", weight, x.device)
    if x.dim() != 4:
        raise InputError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (3, 3) or weight.shape[1] != x.shape[1]:
        raise InputError(
            f"weight must be (K, {x.shape[1]}, 3, 3) for x with {x.shape[1]} channels, "
            f"got shape {tuple(weight.shape)}"
        )
    check_activation(activation, CONV_ACTIVATIONS)
    chunk = _check_chunk(chunk)
    out_channels = weight.shape[0]
    if bias is not None:
        _check_float("bias", bias, x.device)
        if bias.numel() != out_channels:
            raise InputError(
                f"bias must hold one value per filter ({out_channels}), has {bias.numel()}"
            )
        bias = bias.reshape(-1)
    if residual is not None:
        _check_float("residual", residual, x.device)
        expected = (x.shape[0], out_channels, x.shape[2], x.shape[3])
        if tuple(residual.shape) != expected:
            raise InputError(
                f"residual must have the output's shape {expected}, got {tuple(residual.shape)}"
            )
    compute = x.dtype if x.dtype in _KERNEL_DTYPES else torch.float32

    def ref(x_: torch.Tensor, w_: torch.Tensor, b_: Any, r_: Any) -> torch.Tensor:
        return reference.conv3x3(x_, w_, b_, activation, r_)

    if not cpu_kernel_runs(impl, x.device):
        w_ = weight.to(x.dtype)
        return ref(x, w_, None if bias is None else bias.to(x.dtype), residual)
    if filters is None:
        filters = winograd_filters(weight)
    if filters.shape != (36, x.shape[1], out_channels):
        raise InputError(
            f"filters must be winograd_filters(weight), shape {(36, x.shape[1], out_channels)}, "
            f"got {tuple(filters.shape)}"
        )
    u = filters.to(compute)
    act = CONV_ACTIVATIONS.index(activation)
    fmt = (
        torch.channels_last
        if x.is_contiguous(memory_format=torch.channels_last) or x.shape[1] == 1
        else torch.contiguous_format
    )

    def kernel(x_: torch.Tensor, _w: torch.Tensor, b_: Any, r_: Any) -> torch.Tensor:
        y = torch.ops.srplug_ops.winograd_conv3x3(
            x_.to(compute),
            u,
            None if b_ is None else b_.to(compute),
            act,
            None if r_ is None else r_.to(compute),
            chunk,
        )
        return y.to(x_.dtype).contiguous(memory_format=fmt)

    return _run(kernel, ref, x, weight.to(x.dtype), bias, residual)


class Conv3x3(nn.Conv2d):
    """``nn.Conv2d(C, K, 3, padding=1)`` computed by :func:`conv3x3`, activation fused.

    Same parameters and state-dict keys as the ``nn.Conv2d`` it replaces (it is one);
    ``forward(x, residual=None)`` returns ``act(conv(x)) (+ residual)``. The transformed
    filters are cached and recomputed when the weight changes (its version counter, storage,
    dtype or device).

    Args:
        in_channels, out_channels, bias: as ``nn.Conv2d``.
        activation: ``"none"`` or ``"relu"``.
        impl: ``"auto"``, ``"ref"`` or ``"cpp"`` (see :func:`conv3x3`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        activation: str = "none",
        impl: str = "auto",
        **factory: Any,
    ) -> None:
        super().__init__(in_channels, out_channels, 3, padding=1, bias=bias, **factory)
        self.activation = check_activation(activation, CONV_ACTIVATIONS)
        self.impl = check_impl(impl)
        self._filters: torch.Tensor | None = None
        self._filters_key: tuple[Any, ...] | None = None

    @staticmethod
    def eligible(conv: nn.Module) -> bool:
        """Whether ``conv`` is a plain 3x3 convolution this module can replace."""
        return (
            type(conv) is nn.Conv2d
            and conv.kernel_size == (3, 3)
            and conv.stride == (1, 1)
            and conv.padding == (1, 1)
            and conv.dilation == (1, 1)
            and conv.groups == 1
            and conv.padding_mode == "zeros"
        )

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, activation: str = "none", impl: str = "auto") -> Conv3x3:
        """A :class:`Conv3x3` sharing ``conv``'s parameters (no copy)."""
        if not cls.eligible(conv):
            raise InputError(
                f"only nn.Conv2d with kernel 3, stride 1, padding 1, dilation 1, groups 1 and "
                f"zero padding can become a Conv3x3, got {conv}"
            )
        new = cls(
            conv.in_channels,
            conv.out_channels,
            bias=conv.bias is not None,
            activation=activation,
            impl=impl,
            device="meta",
        )
        return share_parameters(new, conv)

    def winograd_filters(self) -> torch.Tensor:
        """The transformed filters, cached while the weight is unchanged."""
        key = version_key(self.weight)
        if self._filters is None or self._filters_key != key:
            self._filters = winograd_filters(self.weight)
            self._filters_key = key
        return self._filters

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, residual: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, K, H, W)``, dtype, device and format of ``x``."""
        use_kernel = cpu_kernel_runs(self.impl, x.device)
        return conv3x3(
            x,
            self.weight,
            self.bias,
            activation=self.activation,
            residual=residual,
            impl=self.impl,
            filters=self.winograd_filters() if use_kernel else None,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation!r}, impl={self.impl!r}"
