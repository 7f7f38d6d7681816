"""Rewrite a network to run srplug's fused kernels: :func:`fuse`.

Generic rewrites, for any ``nn.Module``:

- every plain 3x3 convolution (stride 1, padding 1, no groups or dilation) with at least
  :data:`MIN_CHANNELS` input and output channels becomes a :class:`~srplug.ops.Conv3x3`
  (Winograd on the CPU), sharing its parameters;
- every convolution the direct kernel runs clearly faster than oneDNN (a first layer from
  the Y plane to many channels; :meth:`~srplug.ops.Conv2dAct.worth_it`) becomes a
  :class:`~srplug.ops.Conv2dAct`, sharing its parameters;
- every transposed convolution whose output is exactly ``stride`` times its input (FSRCNN's
  9x9 deconvolution) becomes a :class:`~srplug.ops.SubPixelConvTranspose2d`, computed as a
  convolution + pixel shuffle, sharing its parameters;
- inside an ``nn.Sequential``, such a convolution directly followed by an ``nn.ReLU`` takes
  the activation into its kernel; the ReLU becomes an ``nn.Identity`` (same indices, so the
  state-dict keys do not change).

Model-specific rewrites come from the models: before the generic pass, every submodule that
defines ``fuse_ops(impl: str) -> None`` is called (outermost first) and may swap its own
layers, e.g. RCAN's residual blocks fuse their channel attention with the skip add.
"""

from __future__ import annotations

from torch import nn

from srplug.ops.conv import Conv3x3
from srplug.ops.direct import Conv2dAct
from srplug.ops.functional import check_impl
from srplug.ops.subpixel import SubPixelConvTranspose2d

__all__ = ["MIN_CHANNELS", "fuse"]

MIN_CHANNELS = 16
"""Narrower convolutions stay direct: their matrix products are too small to pay for the
Winograd transforms (and they cost little anyway: a network's first and last layers)."""


def _worth_it(conv: nn.Module) -> bool:
    return (
        Conv3x3.eligible(conv)
        and conv.in_channels >= MIN_CHANNELS
        and conv.out_channels >= MIN_CHANNELS
    )


def fuse(module: nn.Module, impl: str = "auto") -> nn.Module:
    """Rewrite ``module`` in place to use the fused kernels; returns it.

    Parameters are shared, not copied: the state dict keeps its keys and values, and loading
    weights afterwards still works. Outputs equal the original's up to float rounding (the
    Winograd convolution: ~1e-6 relative in float32).

    Args:
        module: any network (eval mode expected; training still works, with exact gradients
            through the reference implementations).
        impl: passed to every fused layer: ``"auto"``, ``"ref"``, ``"cpp"`` or ``"cuda"``.
    """
    check_impl(impl)
    for sub in list(module.modules()):
        hook = getattr(sub, "fuse_ops", None)
        if callable(hook):
            hook(impl)
    for parent in list(module.modules()):
        names = list(parent._modules)
        for i, name in enumerate(names):
            child = parent._modules[name]
            if child is None:
                continue
            if SubPixelConvTranspose2d.eligible(child):
                parent._modules[name] = SubPixelConvTranspose2d.from_deconv(child)  # type: ignore[arg-type]
                continue
            winograd = _worth_it(child)
            if not winograd and not Conv2dAct.worth_it(child):
                continue
            relu = None
            if isinstance(parent, nn.Sequential) and i + 1 < len(names):
                following = parent._modules[names[i + 1]]
                if type(following) is nn.ReLU:
                    relu = following
                    parent._modules[names[i + 1]] = nn.Identity()
            if winograd:
                activation = "none" if relu is None else "relu"
                parent._modules[name] = Conv3x3.from_conv(child, activation, impl)  # type: ignore[arg-type]
            else:
                parent._modules[name] = Conv2dAct.from_conv(child, relu, impl)  # type: ignore[arg-type]
    return module
