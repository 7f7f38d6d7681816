"""The fused ops: argument checks, implementation choice and autograd.

Every op takes ``impl``:

- ``"auto"`` (default): the compiled kernel for the tensors' device when the extension is
  available (built just in time on first use, see :mod:`srplug.ops.loader`), else the
  PyTorch reference, with one warning saying why.
- ``"ref"``: the pure-PyTorch reference (:mod:`srplug.ops.reference`).
- ``"cpp"``: the CPU kernel (CPU tensors); ``"cuda"``: the CUDA kernel (CUDA tensors).
  Both raise :class:`~srplug.ops.loader.OpsBuildError` when the extension is unavailable.

Kernels compute the forward; the backward recomputes the reference from the saved inputs
and differentiates it (exact gradients of the same function, at the reference's cost).
Under ``torch.autocast`` every op runs its reference, so autocast picks the dtypes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from srplug.errors import InputError
from srplug.ops import loader, reference

__all__ = [
    "IMPLS",
    "Impl",
    "OpsFallbackWarning",
    "channel_attention",
    "check_activation",
    "check_impl",
    "cpu_kernel_runs",
    "esr_upscale",
    "pixel_shuffle",
    "resolve_impl",
]

Impl = Literal["auto", "ref", "cpp", "cuda"]
IMPLS: tuple[str, ...] = ("auto", "ref", "cpp", "cuda")

_MODES = {"max": 0, "tm": 1, "tr": 2, "cnn": 3}
_ACTS = {name: i for i, name in enumerate(reference.ACTIVATIONS)}
_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


class OpsFallbackWarning(UserWarning):
    """``impl="auto"`` runs the PyTorch reference because the extension is unavailable."""


_warned = False


def _warn_fallback(st: loader.BuildStatus) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"srplug.ops: using the PyTorch reference implementation (slower): {st.reason}; "
            f"{loader.fix_hint(st.state)}",
            OpsFallbackWarning,
            stacklevel=4,
        )


def check_impl(impl: object) -> str:
    """``impl`` if it is one of :data:`IMPLS`, else :class:`InputError` listing them."""
    if impl not in IMPLS:
        raise InputError(f"impl must be one of {', '.join(map(repr, IMPLS))}, got {impl!r}")
    assert isinstance(impl, str)
    return impl


def check_activation(activation: object, choices: Sequence[str]) -> str:
    """``activation`` if it is one of ``choices``, else :class:`InputError` listing them."""
    if activation not in choices:
        raise InputError(
            f"activation must be one of {', '.join(map(repr, choices))}, got {activation!r}"
        )
    assert isinstance(activation, str)
    return activation


def cpu_kernel_runs(impl: str, device: torch.device) -> bool:
    """Whether a CPU-only op (one without a CUDA kernel) runs its C++ kernel for ``impl`` on
    ``device``: on other devices every ``impl`` but ``"cpp"``, which is refused, runs the
    reference."""
    check_impl(impl)
    if device.type != "cpu" and impl != "cpp":
        return False
    return resolve_impl(impl, device) == "ext"


def resolve_impl(impl: str, device: torch.device) -> Literal["ref", "ext"]:
    """``"ext"`` when the compiled kernel runs for ``impl`` on ``device``, else ``"ref"``.

    Raises :class:`InputError` for an unknown ``impl`` or one that does not fit the device,
    :class:`~srplug.ops.loader.OpsBuildError` when ``"cpp"``/``"cuda"`` cannot be loaded.
    """
    check_impl(impl)
    if impl == "ref" or torch.compiler.is_compiling():
        # torch.compile / torch.export / ONNX export trace the reference: it is made of
        # standard ops they know, the kernels are opaque to them
        return "ref"
    if impl == "cpp" and device.type != "cpu":
        raise InputError(
            f"impl='cpp' runs on CPU tensors, these are on {device}; use impl='cuda' or 'auto'"
        )
    if impl == "cuda" and device.type != "cuda":
        raise InputError(
            f"impl='cuda' runs on CUDA tensors, these are on {device}; use impl='cpp' or 'auto'"
        )
    if impl in ("cpp", "cuda"):
        st = loader.status()
        if not st.loaded or (device.type == "cuda" and not st.with_cuda):
            loader.require(device)
        return "ext"
    if device.type not in ("cpu", "cuda"):
        return "ref"
    st = loader.status()
    if not st.loaded:
        st = loader.load()
    if st.loaded and (device.type == "cpu" or st.with_cuda):
        return "ext"
    if st.loaded:  # built without CUDA: the reference on the GPU is the right thing, quietly
        return "ref"
    _warn_fallback(st)
    return "ref"


def _check_float(name: str, t: torch.Tensor, device: torch.device | None = None) -> None:
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in _DTYPES:
        raise InputError(
            f"{name} must be float32, bfloat16, float16 or float64, got {t.dtype}; "
            f"convert it with .float()"
        )
    if device is not None and t.device != device:
        raise InputError(f"{name} is on {t.device} but the input is on {device}; move it")


def _needs_grad(tensors: Sequence[torch.Tensor | None]) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class _RefBackward(torch.autograd.Function):
    """Kernel forward, reference backward: ``run(kernel, ref, *tensors)``."""

    @staticmethod
    def forward(ctx: Any, kernel: Callable, ref: Callable, *tensors: torch.Tensor | None) -> Any:
        ctx.ref = ref
        ctx.save_for_backward(*tensors)
        return kernel(*tensors)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        saved = ctx.saved_tensors
        needs = ctx.needs_input_grad[2:]
        with torch.enable_grad():
            inputs = [
                None if t is None else t.detach().requires_grad_(need)
                for t, need in zip(saved, needs, strict=True)
            ]
            out = ctx.ref(*inputs)
            wanted = [t for t, need in zip(inputs, needs, strict=True) if need and t is not None]
            grads = iter(torch.autograd.grad(out, wanted, grad, allow_unused=True))
        result = [
            next(grads) if need and t is not None else None
            for t, need in zip(inputs, needs, strict=True)
        ]
        return (None, None, *result)


def _run(kernel: Callable, ref: Callable, *tensors: torch.Tensor | None) -> torch.Tensor:
    first = next(t for t in tensors if t is not None)
    if torch.is_autocast_enabled(first.device.type):
        # autocast picks each op's dtype; the reference is made of ops it knows
        return ref(*tensors)
    if _needs_grad(tensors):
        return _RefBackward.apply(kernel, ref, *tensors)
    return kernel(*tensors)


# ------------------------------------------------------------------------------------- edge-SR


def esr_upscale(
    x: torch.Tensor,
    weight: torch.Tensor,
    scale: int,
    reduction: str,
    *,
    impl: str = "auto",
) -> torch.Tensor:
    """edge-SR head fused: ``k x k`` conv -> pixel shuffle -> reduction over ``C``.

    The kernels compute, for every output pixel, only the ``G*C`` dot products of its phase
    straight from ``x`` and reduce them in registers: the ``(N, G*C*s*s, h, w)`` feature maps
    and their shuffled copy are never stored.

    Args:
        x: ``(N, Cin, h, w)`` float (``Cin`` = 1: the Y plane of eSR-MAX/TM/TR; eSR-CNN's
            hidden maps), any memory format.
        weight: ``(G*C*s*s, Cin, k, k)``, odd ``k``; ``G`` = 1 (max), 2 (tm, cnn), 3 (tr).
        scale: ``s``.
        reduction: ``"max"``, ``"tm"``, ``"tr"`` or ``"cnn"`` (see
            :func:`srplug.ops.reference.esr_upscale`).
        impl: ``"auto"``, ``"ref"``, ``"cpp"`` or ``"cuda"``.

    Returns:
        ``(N, 1, h*s, w*s)``, dtype and device of ``x`` (not clamped).
    """
    _check_float("x", x)
    _check_float("weight", weight, x.device)
    if reduction not in _MODES:
        raise InputError(
            f"reduction must be one of {', '.join(map(repr, _MODES))}, got {reduction!r}"
        )
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise InputError(f"scale must be an integer >= 1, got {scale!r}")
    if x.dim() != 4:
        raise InputError(f"x must be (N, Cin, h, w), got shape {tuple(x.shape)}")
    if weight.dim() != 4 or weight.shape[2] != weight.shape[3] or weight.shape[2] % 2 == 0:
        raise InputError(
            f"weight must be (G*C*s*s, Cin, k, k) with an odd k, got shape {tuple(weight.shape)}"
        )
    if weight.shape[1] != x.shape[1]:
        raise InputError(
            f"weight has {weight.shape[1]} input channels but x has {x.shape[1]} "
            f"(x {tuple(x.shape)}, weight {tuple(weight.shape)})"
        )
    per = reference.REDUCTIONS[reduction] * scale * scale
    if weight.shape[0] == 0 or weight.shape[0] % per:
        raise InputError(
            f"reduction {reduction!r} at scale {scale} needs a multiple of "
            f"{reference.REDUCTIONS[reduction]}*{scale}*{scale} = {per} filters, "
            f"weight has {weight.shape[0]}; check scale and reduction"
        )
    weight = weight.to(x.dtype)

    def ref(x_: torch.Tensor, w_: torch.Tensor) -> torch.Tensor:
        return reference.esr_upscale(x_, w_, scale, reduction)

    if resolve_impl(impl, x.device) == "ref":
        return ref(x, weight)

    def kernel(x_: torch.Tensor, w_: torch.Tensor) -> torch.Tensor:
        return torch.ops.srplug_ops.esr_upscale(x_, w_, scale, _MODES[reduction])

    return _run(kernel, ref, x, weight)


# -------------------------------------------------------------------------------- pixel shuffle


def pixel_shuffle(
    x: torch.Tensor,
    scale: int,
    bias: torch.Tensor | None = None,
    activation: str = "none",
    *,
    negative_slope: float = 0.01,
    prelu_weight: torch.Tensor | None = None,
    impl: str = "auto",
) -> torch.Tensor:
    """``act(pixel_shuffle(x + bias, scale))`` in one pass over ``x``.

    Args:
        x: ``(N, C*s*s, H, W)`` float, NCHW or channels_last (the output keeps the format).
        scale: ``s``.
        bias: ``(C*s*s,)``: the bias of the convolution before the shuffle, or None.
        activation: ``"none"``, ``"relu"``, ``"leaky_relu"`` (``negative_slope``),
            ``"tanh"``, ``"sigmoid"`` or ``"prelu"`` (``prelu_weight``: 1 or ``C`` values).
        impl: ``"auto"``, ``"ref"``, ``"cpp"`` or ``"cuda"``.

    Returns:
        ``(N, C, H*s, W*s)``, dtype and device of ``x``.
    """
    _check_float("x", x)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise InputError(f"scale must be an integer >= 1, got {scale!r}")
    if x.dim() != 4 or x.shape[1] % (scale * scale):
        raise InputError(
            f"x must be (N, C*{scale}*{scale}, H, W) for scale {scale}, got shape {tuple(x.shape)}"
        )
    if activation not in _ACTS:
        raise InputError(
            f"activation must be one of {', '.join(map(repr, _ACTS))}, got {activation!r}"
        )
    channels = x.shape[1] // (scale * scale)
    if bias is not None:
        _check_float("bias", bias, x.device)
        if bias.numel() != x.shape[1]:
            raise InputError(
                f"bias must hold one value per input channel ({x.shape[1]}), has {bias.numel()}"
            )
        bias = bias.to(x.dtype).reshape(-1)
    if activation == "prelu":
        if prelu_weight is None:
            raise InputError("activation='prelu' needs prelu_weight (1 or C values)")
        _check_float("prelu_weight", prelu_weight, x.device)
        if prelu_weight.numel() not in (1, channels):
            raise InputError(
                f"prelu_weight must hold 1 or {channels} values, has {prelu_weight.numel()}"
            )
        prelu_weight = prelu_weight.to(x.dtype).reshape(-1)
    else:
        prelu_weight = None
    slope = float(negative_slope)

    def ref(x_: torch.Tensor, b_: torch.Tensor | None, p_: torch.Tensor | None) -> torch.Tensor:
        return reference.pixel_shuffle(x_, scale, b_, activation, slope, p_)

    if resolve_impl(impl, x.device) == "ref":
        return ref(x, bias, prelu_weight)

    def kernel(x_: torch.Tensor, b_: torch.Tensor | None, p_: torch.Tensor | None) -> torch.Tensor:
        return torch.ops.srplug_ops.pixel_shuffle_act(x_, scale, b_, _ACTS[activation], slope, p_)

    return _run(kernel, ref, x, bias, prelu_weight)


# ---------------------------------------------------------------------------- channel attention


def channel_attention(
    x: torch.Tensor,
    w_down: torch.Tensor,
    b_down: torch.Tensor,
    w_up: torch.Tensor,
    b_up: torch.Tensor,
    residual: torch.Tensor | None = None,
    *,
    impl: str = "auto",
) -> torch.Tensor:
    """RCAN channel attention and the RCAB skip, fused: two passes over ``x``.

    ``x * sigmoid(w_up @ relu(w_down @ mean_hw(x) + b_down) + b_up) (+ residual)``: pass 1
    pools, the tiny MLP runs once per image, pass 2 scales and adds the residual.

    Args:
        x: ``(N, C, H, W)`` float, NCHW or channels_last (the output keeps the format).
        w_down: ``(C//r, C)`` or ``(C//r, C, 1, 1)`` (RCAN's ``conv_du.0.weight``);
            ``b_down``: ``(C//r,)``.
        w_up: ``(C, C//r)`` or ``(C, C//r, 1, 1)`` (``conv_du.2.weight``); ``b_up``: ``(C,)``.
        residual: ``(N, C, H, W)`` added to the result (RCAB: the block's input), or None.
        impl: ``"auto"``, ``"ref"``, ``"cpp"`` or ``"cuda"``.

    Returns:
        ``(N, C, H, W)``, dtype and device of ``x``.
    """
    _check_float("x", x)
    if x.dim() != 4:
        raise InputError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
    channels = x.shape[1]
    for name, t in (("w_down", w_down), ("b_down", b_down), ("w_up", w_up), ("b_up", b_up)):
        _check_float(name, t, x.device)
    wd = w_down.reshape(w_down.shape[0], -1) if w_down.dim() in (2, 4) else w_down
    wu = w_up.reshape(w_up.shape[0], -1) if w_up.dim() in (2, 4) else w_up
    if wd.dim() != 2 or wd.shape[1] != channels:
        raise InputError(
            f"w_down must be (C//r, {channels}) or (C//r, {channels}, 1, 1) for x with "
            f"{channels} channels, got shape {tuple(w_down.shape)}"
        )
    hidden = wd.shape[0]
    if wu.dim() != 2 or tuple(wu.shape) != (channels, hidden):
        raise InputError(
            f"w_up must be ({channels}, {hidden}) or ({channels}, {hidden}, 1, 1), "
            f"got shape {tuple(w_up.shape)}"
        )
    if b_down.numel() != hidden or b_up.numel() != channels:
        raise InputError(
            f"b_down must hold {hidden} values and b_up {channels}, "
            f"got {b_down.numel()} and {b_up.numel()}"
        )
    if residual is not None:
        _check_float("residual", residual, x.device)
        if residual.shape != x.shape:
            raise InputError(
                f"residual must have the shape of x {tuple(x.shape)}, got {tuple(residual.shape)}"
            )
        if residual.dtype != x.dtype:
            residual = residual.to(x.dtype)
    params = [
        t if t.dtype == x.dtype else t.to(x.dtype)
        for t in (wd, b_down.reshape(-1), wu, b_up.reshape(-1))
    ]

    if resolve_impl(impl, x.device) == "ref":
        return reference.channel_attention(x, *params, residual)

    def kernel(*args: torch.Tensor | None) -> torch.Tensor:
        return torch.ops.srplug_ops.channel_attention(*args)

    return _run(kernel, reference.channel_attention, x, *params, residual)
