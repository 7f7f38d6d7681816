"""BT.601 studio-range colour conversions, as MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb``.

For R, G, B in [0, 1]::

    Y  = (16  +  65.481 R + 128.553 G +  24.966 B) / 255
    Cb = (128 -  37.797 R -  74.203 G + 112.000 B) / 255
    Cr = (128 + 112.000 R -  93.786 G -  18.214 B) / 255

so Y lies in [16/255, 235/255] and Cb, Cr in [16/255, 240/255]. OpenCV's ``COLOR_RGB2YCrCb``
is full-range and gives different numbers.
"""

from __future__ import annotations

import numpy as np
import torch

from srplug.errors import InputError

__all__ = ["rgb_to_y", "rgb_to_y_255", "rgb_to_ycbcr", "ycbcr_to_rgb"]

_MATRIX = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=np.float64,
)
_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)
_INVERSE = np.linalg.inv(_MATRIX)


def _check_rgb(x: torch.Tensor, what: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{what} expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputError(f"{what} expects a floating-point tensor in [0, 1], got {x.dtype}")
    if x.ndim < 3 or x.shape[-3] != 3:
        raise InputError(f"{what} expects a tensor (..., 3, H, W), got shape {tuple(x.shape)}")


def _apply(x: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
    """Per-pixel ``matrix @ x[..., :, h, w]`` over channel dim -3, in x's dtype."""
    m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """RGB ``(..., 3, H, W)`` float in [0, 1] to YCbCr ``(..., 3, H, W)`` in [0, 1] (studio
    range, see module docstring); same dtype and device."""
    _check_rgb(x, "rgb_to_ycbcr")
    off = torch.as_tensor(_OFFSET, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (_apply(x, _MATRIX) + off) / 255.0


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Studio-range YCbCr ``(..., 3, H, W)`` in [0, 1] back to RGB in [0, 1] (not clamped);
    the exact inverse of :func:`rgb_to_ycbcr`. Same dtype and device."""
    _check_rgb(x, "ycbcr_to_rgb")
    off = torch.as_tensor(_OFFSET, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return _apply(x * 255.0 - off, _INVERSE)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Luma of RGB ``(..., 3, H, W)`` float in [0, 1]: ``(..., 1, H, W)`` in
    [16/255, 235/255], same dtype and device."""
    _check_rgb(x, "rgb_to_y")
    w = torch.as_tensor(_MATRIX[0], dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (16.0 + (x * w).sum(dim=-3, keepdim=True)) / 255.0


def rgb_to_y_255(img: np.ndarray) -> np.ndarray:
    """Unrounded float64 luma ``(H, W)`` on the 0..255 scale (range [16, 235]) of a uint8
    ``(H, W, 3)`` RGB image: ``16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B = img/255."""
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
        shape = getattr(img, "shape", None)
        raise InputError(f"rgb_to_y_255 expects an (H, W, 3) RGB array, got shape {shape}")
    if img.dtype != np.uint8:
        raise InputError(f"rgb_to_y_255 expects a uint8 array, got {img.dtype}")
    rgb = img.astype(np.float64) / 255.0
    return rgb @ _MATRIX[0] + 16.0
