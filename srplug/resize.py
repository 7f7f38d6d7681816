"""MATLAB-exact bicubic ``imresize`` for torch tensors and uint8 numpy images.

Reproduces MATLAB's ``imresize(x, scale, 'bicubic')``: Keys cubic kernel with a = -0.5, the
kernel widened by ``1/scale`` and rescaled when shrinking (antialiasing), weights normalised per
output sample, symmetric (mirror) borders, and the dimension with the smaller scale factor
resized first. Each dimension is resized by a dense ``(out, in)`` weight matrix applied as a
matrix product; the matrices are built in float64 and cached.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from srplug.errors import InputError
from srplug.limits import check_pixels

__all__ = ["Imresize", "imresize", "imresize_uint8", "modcrop", "output_size", "resize_weights"]

_KERNEL_WIDTH = 4.0  # support of the cubic kernel, in input samples
_MAX_TAPS_PER_PIXEL = 64  # kernel taps allowed per input pixel (at least 64 pixels counted)
# Default for imresize_uint8: MATLAB's mex returns the input class after each pass, so uint8
# images are rounded between the two passes. This reproduces Set5_LR_bicubic more closely
# (see tests/test_resize.py::test_matches_matlab_lr_set5).
_ROUND_BETWEEN_PASSES = True


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), float64."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def resize_weights(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """Dense float64 ``(out_len, in_len)`` matrix M with ``out = M @ in`` along one dimension.

    Follows MATLAB's ``contributions``: output sample x (1-based) maps to input coordinate
    ``u = x/scale + 0.5*(1 - 1/scale)``; indices outside ``1..in_len`` are folded back by the
    mirror sequence ``[1..n, n..1]``. Rows sum to 1.
    """
    width = _KERNEL_WIDTH
    if scale < 1 and antialias:
        width = _KERNEL_WIDTH / scale

        def kernel(t: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * t)
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])  # 0-based
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    rows = np.broadcast_to(np.arange(out_len)[:, None], cols.shape)
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(mat, (rows, cols), w)
    return mat


@lru_cache(maxsize=32)
def _weight_tensor(
    in_len: int,
    out_len: int,
    scale: float,
    antialias: bool,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Cached :func:`resize_weights` as a tensor of ``dtype`` on ``device`` (do not modify)."""
    mat = torch.from_numpy(resize_weights(in_len, out_len, scale, antialias))
    return mat.to(device=device, dtype=dtype)


def _scaled_length(length: int, scale: float) -> int:
    """``ceil(length * scale)``, robust to float error (``255 * (1/3)`` gives 85)."""
    value = length * scale
    nearest = round(value)
    if abs(value - nearest) <= 1e-9 * max(1.0, abs(value)):
        return int(nearest)
    return math.ceil(value)


def _check_shrink(in_size: tuple[int, int], scales: tuple[float, float]) -> None:
    """Refuse shrinks so extreme that the antialiasing kernel (``4 / scale`` taps wide) would
    dwarf the image, e.g. ``scale=1e-9`` (billions of taps for a 1x1 result)."""
    for length, s in zip(in_size, scales, strict=True):
        taps = _KERNEL_WIDTH / s
        if s < 1 and taps > _MAX_TAPS_PER_PIXEL * max(length, _MAX_TAPS_PER_PIXEL):
            raise InputError(
                f"scale {s:g} shrinks a {in_size[0]}x{in_size[1]} image by far more than to one "
                f"pixel (a {taps:.3g}-tap kernel); use a scale of at least "
                f"{_KERNEL_WIDTH / (_MAX_TAPS_PER_PIXEL * max(length, _MAX_TAPS_PER_PIXEL)):.3g}"
                ", or size=(1, 1)"
            )


def output_size(
    in_size: tuple[int, int], scale: float | None = None, size: tuple[int, int] | None = None
) -> tuple[tuple[int, int], tuple[float, float]]:
    """Validated output ``(H, W)`` and per-dimension scale factors for an ``(H, W)`` input."""
    if (scale is None) == (size is None):
        raise InputError("imresize needs exactly one of `scale` and `size`")
    h, w = in_size
    if h < 1 or w < 1:
        raise InputError(f"cannot resize an empty image of size {h}x{w} (HxW)")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
            raise InputError(f"scale must be a positive number, got {scale!r}")
        if not math.isfinite(scale) or scale <= 0:
            raise InputError(f"scale must be a positive finite number, got {scale!r}")
        out = (_scaled_length(h, scale), _scaled_length(w, scale))
        if min(out) < 1:
            raise InputError(f"scale {scale} turns a {h}x{w} image into an empty one")
        check_pixels(*out, what=f"the x{scale} resize of a {h}x{w} image")
        _check_shrink((h, w), (float(scale), float(scale)))
        return out, (float(scale), float(scale))
    assert size is not None
    if (
        len(size) != 2
        or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in size)
        or min(size) < 1
    ):
        raise InputError(f"size must be two positive integers (H, W), got {size!r}")
    oh, ow = int(size[0]), int(size[1])
    check_pixels(oh, ow, what=f"a resize to {oh}x{ow}")
    _check_shrink((h, w), (oh / h, ow / w))
    return (oh, ow), (oh / h, ow / w)


def _resize_dims(
    x: torch.Tensor,
    out_hw: tuple[int, int],
    scales: tuple[float, float],
    antialias: bool,
    round_between: bool = False,
) -> torch.Tensor:
    """Resize the last two dims of float ``x`` in MATLAB order; optionally round to uint8
    range between the passes (``round_between``)."""
    in_hw = (x.shape[-2], x.shape[-1])
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for step, dim in enumerate(order):
        mat = _weight_tensor(in_hw[dim], out_hw[dim], scales[dim], antialias, x.dtype, x.device)
        x = torch.matmul(mat, x) if dim == 0 else torch.matmul(x, mat.T)
        if round_between and step == 0:
            x = _round_uint8(x)
    return x


def _round_uint8(x: torch.Tensor) -> torch.Tensor:
    """Saturate to [0, 255] and round half away from zero, as MATLAB's uint8 cast; float."""
    return torch.floor(x.clamp(0.0, 255.0) + 0.5)


def imresize(
    x: torch.Tensor,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """MATLAB ``imresize(x, scale, 'bicubic')`` on the last two dims of a float tensor.

    Args:
        x: float tensor ``(..., H, W)``, any leading dims, any value range, CPU or CUDA.
        scale: factor for both dims; output is ``(ceil(H*scale), ceil(W*scale))``.
        size: explicit output ``(H_out, W_out)`` instead of ``scale``.
        antialias: widen the kernel when shrinking, as MATLAB does by default.

    Returns:
        Tensor ``(..., H_out, W_out)`` of ``x``'s dtype and device, not clamped. Computed in
        float64 for float64 input, float32 otherwise.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"imresize expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputError(
            f"imresize expects a floating-point tensor, got {x.dtype}; convert with .float() "
            "or use imresize_uint8 for uint8 numpy images"
        )
    if x.ndim < 2:
        raise InputError(f"imresize expects a tensor (..., H, W), got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise InputError(f"cannot resize an empty tensor of shape {tuple(x.shape)}")
    out_hw, scales = output_size((x.shape[-2], x.shape[-1]), scale, size)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = _resize_dims(x.to(work), out_hw, scales, antialias)
    return y.to(x.dtype)


class Imresize(torch.nn.Module):
    """Module form of :func:`imresize`: float ``(..., H, W)`` in, resized float out."""

    def __init__(
        self,
        scale: float | None = None,
        *,
        size: tuple[int, int] | None = None,
        antialias: bool = True,
    ) -> None:
        super().__init__()
        if (scale is None) == (size is None):
            raise InputError("Imresize needs exactly one of `scale` and `size`")
        output_size((1, 1), scale, size)  # validate early
        self.scale = scale
        self.size = size
        self.antialias = antialias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, self.scale, size=self.size, antialias=self.antialias)

    def extra_repr(self) -> str:
        what = f"scale={self.scale}" if self.size is None else f"size={self.size}"
        return f"{what}, antialias={self.antialias}"


def imresize_uint8(
    img: np.ndarray,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
    round_between_passes: bool = _ROUND_BETWEEN_PASSES,
) -> np.ndarray:
    """MATLAB ``imresize`` of a uint8 image, with MATLAB's uint8 rounding.

    Args:
        img: uint8 array ``(H, W)`` or ``(H, W, C)``.
        scale, size, antialias: as in :func:`imresize`.
        round_between_passes: round to uint8 after the first dimension's pass as well as at
            the end (MATLAB's mex returns the input class after each pass).

    Returns:
        uint8 array ``(H_out, W_out)`` or ``(H_out, W_out, C)``; values rounded half away
        from zero and saturated to [0, 255]. Computed in float64.
    """
    if not isinstance(img, np.ndarray):
        raise InputError(f"imresize_uint8 expects a numpy array, got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise InputError(f"imresize_uint8 expects a uint8 array, got {img.dtype}")
    if img.ndim not in (2, 3):
        raise InputError(f"imresize_uint8 expects (H, W) or (H, W, C), got shape {img.shape}")
    if img.size == 0:
        raise InputError(f"cannot resize an empty image of shape {img.shape}")
    out_hw, scales = output_size((img.shape[0], img.shape[1]), scale, size)
    t = torch.from_numpy(np.ascontiguousarray(img)).to(torch.float64)
    if img.ndim == 3:
        t = t.permute(2, 0, 1)
    y = _round_uint8(_resize_dims(t, out_hw, scales, antialias, round_between_passes))
    if img.ndim == 3:
        y = y.permute(1, 2, 0)
    return np.ascontiguousarray(y.numpy().astype(np.uint8))


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop ``(H, W[, C])`` down to H and W multiples of ``scale``, keeping the top-left."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise InputError(f"modcrop scale must be a positive integer, got {scale!r}")
    if img.ndim not in (2, 3):
        raise InputError(f"modcrop expects (H, W) or (H, W, C), got shape {img.shape}")
    h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
    if h == 0 or w == 0:
        raise InputError(f"image of shape {img.shape} is smaller than the scale {scale}")
    return img[:h, :w]
