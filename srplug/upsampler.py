"""Upsampler implementations: image-kind handling around a tensor-to-tensor core.

:class:`TensorUpsampler` does what every model needs (accepting numpy / PIL / torch images,
gray, RGB and alpha, integer and float pixels, giving them back alike); subclasses supply
:meth:`TensorUpsampler.upscale_tensor`. :class:`ModuleUpsampler` runs a ``torch.nn.Module``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from srplug.color import rgb_to_ycbcr, ycbcr_to_rgb
from srplug.errors import InputError, PluginError
from srplug.image import from_tensor, to_tensor
from srplug.protocols import Channels
from srplug.resize import imresize

__all__ = [
    "ModuleUpsampler",
    "TensorUpsampler",
    "resolve_device",
    "resolve_dtype",
    "upscale_color",
]

_DTYPE_NAMES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, as PIL's convert("L")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Parse ``device`` (default CPU) and check that torch can use it."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"device {device!r} is not a torch device name ('cpu', 'cuda:0' ...)"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device {str(dev)!r} was requested but torch sees no CUDA GPU here; use device='cpu'"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(
            f"device {str(dev)!r} does not exist: torch sees {torch.cuda.device_count()} GPU(s)"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device 'mps' was requested but it is not available; use device='cpu'")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """Parse ``dtype`` (default ``torch.float32``); floating dtypes only."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        key = dtype.lower().removeprefix("torch.")
        if key not in _DTYPE_NAMES:
            raise InputError(
                f"dtype {dtype!r} is not supported; use 'float32', 'bfloat16' or 'float16'"
            )
        return _DTYPE_NAMES[key]
    if isinstance(dtype, torch.dtype) and dtype in (torch.float32, torch.bfloat16, torch.float16):
        return dtype
    raise InputError(f"dtype {dtype!r} is not supported; use float32, bfloat16 or float16")


def upscale_color(
    color: torch.Tensor,
    network: Callable[[torch.Tensor], torch.Tensor],
    *,
    channels: Channels,
    scale: int,
) -> torch.Tensor:
    """Enlarge gray or RGB with a network that sees RGB or Y only (differentiable).

    ``color`` is ``(N, 1 | 3, h, w)`` float in [0, 1]; ``network`` maps ``(N, C, h, w)`` to
    ``(N, C, h*scale, w*scale)`` with C = 3 for ``channels="rgb"`` and 1 for ``"y"``. A ``"y"``
    network gets BT.601 luma while Cb/Cr are enlarged with MATLAB bicubic; gray goes to an RGB
    network replicated and comes back as luma. Returns ``(N, 1 | 3, h*scale, w*scale)``.
    """
    if color.shape[1] == 1 and channels == "y":  # gray is pure luma: no chroma to enlarge
        y = network((16.0 + 219.0 * color) / 255.0)
        return (y * 255.0 - 16.0) / 219.0
    rgb = color if color.shape[1] == 3 else color.expand(-1, 3, -1, -1)
    if channels == "rgb":
        out = network(rgb)
    else:
        ycbcr = rgb_to_ycbcr(rgb)
        y = network(ycbcr[:, :1])
        cbcr = imresize(ycbcr[:, 1:], float(scale))
        out = ycbcr_to_rgb(torch.cat([y, cbcr], dim=1))
    if color.shape[1] == 3:
        return out
    luma = torch.tensor(_LUMA, dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
    return (out * luma).sum(dim=1, keepdim=True)


class TensorUpsampler:
    """Base class: converts any accepted image to tensors and back.

    Subclasses implement :meth:`upscale_tensor` on ``(N, C, h, w)`` float32 tensors in
    [0, 1] on :attr:`device`, with C = 3 for ``channels="rgb"`` and 1 for ``"y"``.
    """

    model: torch.nn.Module | None = None

    def __init__(
        self,
        *,
        name: str,
        scale: int,
        channels: Channels = "rgb",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ) -> None:
        if channels not in ("rgb", "y"):
            raise InputError(f"channels must be 'rgb' or 'y', got {channels!r}")
        self.name = name
        self.scale = int(scale)
        self.channels: Channels = channels
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, scale={self.scale}, "
            f"channels={self.channels!r}, device={str(self.device)!r}, dtype={self.dtype})"
        )

    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` float32 in [0, 1] on :attr:`device` -> ``(N, C, h*s, w*s)``."""
        raise NotImplementedError

    def _checked_upscale(self, x: torch.Tensor) -> torch.Tensor:
        out = self.upscale_tensor(x)
        n, c, h, w = x.shape
        expected = (n, c, h * self.scale, w * self.scale)
        if tuple(out.shape) != expected:
            raise PluginError(
                f"model {self.name!r} returned a tensor of shape {tuple(out.shape)} for input "
                f"{tuple(x.shape)}; expected {expected}"
            )
        return out.float()

    def __call__(self, img: Any) -> Any:
        """Upscale ``img`` (numpy, PIL or torch; see :class:`~srplug.protocols.Upsampler`)."""
        x, layout = to_tensor(img)
        with torch.inference_mode():
            x = x.to(self.device)
            n_color = 3 if layout.channels >= 3 else 1
            color = upscale_color(
                x[:, :n_color], self._checked_upscale, channels=self.channels, scale=self.scale
            )
            if layout.has_alpha:
                alpha = imresize(x[:, n_color:], float(self.scale)).clamp(0.0, 1.0)
                color = torch.cat([color, alpha], dim=1)
        if layout.kind == "torch":
            color = color.clone()  # a normal tensor, usable outside inference mode
        return from_tensor(color, layout)


class ModuleUpsampler(TensorUpsampler):
    """Runs a ``torch.nn.Module`` mapping ``(N, C, h, w)`` to ``(N, C, h*s, w*s)`` in [0, 1].

    The module is put in eval mode on :attr:`device` in :attr:`dtype`; on CPU it runs in
    ``channels_last`` memory format, which is several times faster for convolutions.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        name: str,
        scale: int,
        channels: Channels = "rgb",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        network: bool = True,
    ) -> None:
        super().__init__(name=name, scale=scale, channels=channels, device=device, dtype=dtype)
        self._module = module.eval().to(device=self.device, dtype=self.dtype)
        self._memory_format = (
            torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        )
        if network:
            self._module = self._module.to(memory_format=self._memory_format)
        self.model = self._module if network else None

    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(dtype=self.dtype).contiguous(memory_format=self._memory_format)
        return self._module(x).float().contiguous()
