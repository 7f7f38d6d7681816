"""Conversions between the image kinds srplug accepts and one tensor layout.

Everything an :class:`~srplug.protocols.Upsampler` is given goes through :func:`to_tensor`,
which returns a float32 ``(N, C, H, W)`` tensor in [0, 1] plus an :class:`ImageLayout`
describing the original; :func:`from_tensor` turns a result back into that kind, dtype and
channel count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from srplug.errors import InputError
from srplug.limits import check_pixels

try:  # Pillow is a dependency, but keep the module importable without it
    from PIL import Image as _PILImage
except ImportError:  # pragma: no cover - exercised only without Pillow
    _PILImage = None

__all__ = ["ImageLayout", "from_tensor", "is_pil_image", "to_tensor"]

Kind = Literal["numpy", "pil", "torch"]

_NUMPY_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_TORCH_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_PIL_MODES = {
    # mode: (numpy dtype of the pixel data, channels, mode the result is returned in)
    "L": (np.uint8, 1, "L"),
    "LA": (np.uint8, 2, "LA"),
    "RGB": (np.uint8, 3, "RGB"),
    "RGBA": (np.uint8, 4, "RGBA"),
    "I;16": (np.uint16, 1, "I;16"),
    "F": (np.float32, 1, "F"),
}


@dataclass(frozen=True)
class ImageLayout:
    """How an input image was laid out, so the result can be given back the same way."""

    kind: Kind
    channels: int
    """Channel count of the original: 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)."""
    squeeze_channel: bool = False
    """numpy ``HxW`` input (no channel axis)."""
    batched: bool = False
    """torch ``(N, C, H, W)`` input."""
    np_dtype: np.dtype | None = None
    torch_dtype: torch.dtype | None = None
    device: torch.device | None = None
    pil_mode: str | None = None

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)


def is_pil_image(obj: Any) -> bool:
    """True for a PIL image (without importing PIL when it is absent)."""
    return _PILImage is not None and isinstance(obj, _PILImage.Image)


def _check_channels(channels: int, shape: tuple[int, ...]) -> None:
    if channels not in (1, 2, 3, 4):
        raise InputError(
            f"image of shape {shape} has {channels} channels; srplug takes 1 (gray), "
            "2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels"
        )


def _check_size(height: int, width: int, shape: tuple[int, ...], batch: int = 1) -> None:
    if height < 1 or width < 1:
        raise InputError(f"image of shape {shape} is empty; give an image at least 1x1 pixels")
    check_pixels(height, width, batch=batch, what=f"image of shape {shape}")


def _check_finite(x: torch.Tensor) -> None:
    if not bool(torch.isfinite(x).all()):
        raise InputError(
            "image holds NaN or infinite values; replace them (e.g. with np.nan_to_num) first"
        )


def _numpy_to_tensor(img: np.ndarray) -> tuple[torch.Tensor, ImageLayout]:
    if img.ndim == 2:
        squeeze, arr = True, img[:, :, None]
    elif img.ndim == 3:
        squeeze, arr = False, img
    else:
        raise InputError(
            f"numpy image of shape {img.shape} has {img.ndim} dimensions; "
            "give HxW (gray) or HxWxC (C = 1, 3 or 4)"
        )
    _check_channels(arr.shape[2], img.shape)
    _check_size(arr.shape[0], arr.shape[1], img.shape)
    dtype = img.dtype.newbyteorder("=")  # big-endian '>u2' is uint16 all the same
    if dtype in _NUMPY_MAX:
        x = torch.from_numpy(np.ascontiguousarray(arr).astype(np.float32)) / _NUMPY_MAX[dtype]
    elif np.issubdtype(dtype, np.floating):
        with np.errstate(over="ignore", invalid="ignore"):  # too large for float32: inf
            x = torch.from_numpy(np.array(arr, dtype=np.float32))  # a writable copy
        _check_finite(x)
    else:
        raise InputError(
            f"numpy image of dtype {dtype} is not supported; "
            "give uint8, uint16 or float32 in [0, 1]"
        )
    x = x.permute(2, 0, 1).unsqueeze(0).contiguous()
    layout = ImageLayout("numpy", arr.shape[2], squeeze_channel=squeeze, np_dtype=dtype)
    return x, layout


def _pil_to_tensor(img: Any) -> tuple[torch.Tensor, ImageLayout]:
    width, height = img.size
    _check_size(height, width, (height, width))  # before any conversion allocates
    mode = img.mode
    if mode == "P":
        has_alpha = "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode == "1":
        img = img.convert("L")
    elif mode.startswith("I;16"):
        img = img.convert("I;16") if mode != "I;16" else img
    elif mode == "I":
        raise InputError(
            "PIL image of mode 'I' (32-bit integer) is not supported; convert it to 'I;16' "
            "or 'F' (float in [0, 1]) first"
        )
    if img.mode not in _PIL_MODES:
        raise InputError(
            f"PIL image of mode {mode!r} is not supported; convert it to 'RGB' (or 'RGBA', "
            "'L', 'LA', 'I;16', 'F') first with img.convert(...)"
        )
    np_dtype, channels, out_mode = _PIL_MODES[img.mode]
    arr = np.asarray(img, dtype=np_dtype)
    x, _ = _numpy_to_tensor(arr if arr.ndim == 3 else arr[:, :, None])
    return x, ImageLayout("pil", channels, np_dtype=np.dtype(np_dtype), pil_mode=out_mode)


def _torch_to_tensor(img: torch.Tensor) -> tuple[torch.Tensor, ImageLayout]:
    if img.ndim == 3:
        batched, x = False, img.unsqueeze(0)
    elif img.ndim == 4:
        batched, x = True, img
    else:
        raise InputError(
            f"tensor of shape {tuple(img.shape)} has {img.ndim} dimensions; "
            "give (C, H, W) or (N, C, H, W)"
        )
    _check_channels(x.shape[1], tuple(img.shape))
    _check_size(x.shape[2], x.shape[3], tuple(img.shape), batch=x.shape[0])
    if x.shape[0] < 1:
        raise InputError(f"tensor of shape {tuple(img.shape)} holds no image (batch size 0)")
    if img.dtype == torch.uint8:
        x = x.float() / 255.0
    elif img.dtype in _TORCH_FLOATS:
        x = x.float()
        _check_finite(x)
    else:
        raise InputError(
            f"tensor of dtype {img.dtype} is not supported; give a float tensor in [0, 1] "
            "(or uint8 in [0, 255])"
        )
    layout = ImageLayout(
        "torch", x.shape[1], batched=batched, torch_dtype=img.dtype, device=img.device
    )
    return x, layout


def to_tensor(img: Any) -> tuple[torch.Tensor, ImageLayout]:
    """Turn an image into a float32 ``(N, C, H, W)`` tensor in [0, 1] and its layout.

    ``N`` is 1 except for batched torch input; ``C`` is the image's own channel count
    (1 to 4). The tensor stays on the input's device (CPU for numpy and PIL).
    """
    if isinstance(img, np.ndarray):
        return _numpy_to_tensor(img)
    if isinstance(img, torch.Tensor):
        return _torch_to_tensor(img)
    if is_pil_image(img):
        return _pil_to_tensor(img)
    raise InputError(
        f"cannot upscale an object of type {type(img).__name__}; give a numpy array (HxW or "
        "HxWxC), a PIL image, or a torch tensor (C, H, W) / (N, C, H, W)"
    )


def _quantize(x: torch.Tensor, max_value: float) -> torch.Tensor:
    """[0, 1] float -> integers in [0, max_value] (round half up; x is already clamped)."""
    return torch.floor(x * max_value + 0.5)


def from_tensor(x: torch.Tensor, layout: ImageLayout) -> Any:
    """Turn a ``(N, C, H, W)`` float tensor in [0, 1] back into ``layout``'s kind.

    Values are clamped to [0, 1]; integer outputs are rounded to the nearest level.
    """
    x = x.clamp(0.0, 1.0)
    if layout.kind == "torch":
        if layout.torch_dtype == torch.uint8:
            x = _quantize(x, 255.0).to(torch.uint8)
        else:
            x = x.to(layout.torch_dtype)
        x = x.to(layout.device)
        return x if layout.batched else x[0]

    x = x[0].permute(1, 2, 0).detach().to("cpu", torch.float64)
    dtype = layout.np_dtype
    if dtype in _NUMPY_MAX:
        arr = _quantize(x, _NUMPY_MAX[dtype]).numpy().astype(dtype)
    else:
        arr = x.numpy().astype(dtype)
    if layout.kind == "pil":
        mode = layout.pil_mode
        if mode in ("L", "I;16", "F"):
            return _PILImage.fromarray(arr[:, :, 0])
        return _PILImage.fromarray(arr)
    return arr[:, :, 0] if layout.squeeze_channel else arr
