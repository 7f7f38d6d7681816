"""Hypothesis strategies for images of every kind srplug meets, valid or not.

Each strategy yields an :class:`Image`: the object to pass in, plus whether srplug promises to
accept it (``valid``) and the ``(H, W, C)`` it describes, so a property can check both that
valid images give a correct result and that the rest are refused with a srplug error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

try:
    from PIL import Image as PILImage
except ImportError:  # pragma: no cover - Pillow is a dependency
    PILImage = None

FLOAT32_MAX = float(np.finfo(np.float32).max)

NUMPY_DTYPES = [
    np.dtype(t)
    for t in (
        "u1",
        "<u2",
        ">u2",
        "<f4",
        ">f4",
        "f2",
        "f8",
        "i1",
        "i2",
        "i4",
        "i8",
        "u4",
        "?",
        "c8",
    )
]
NUMPY_VALID = ("uint8", "uint16", "float16", "float32", "float64")
TORCH_DTYPES = [
    torch.uint8,
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int8,
    torch.int32,
    torch.int64,
    torch.bool,
]
TORCH_VALID = (torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64)
PIL_MODES = ["L", "LA", "RGB", "RGBA", "I;16", "F", "P", "PA", "1", "I", "CMYK", "YCbCr", "HSV"]
PIL_VALID = ("L", "LA", "RGB", "RGBA", "I;16", "F", "P", "PA", "1")


@dataclass
class Image:
    """A generated input: ``obj`` to pass, ``valid`` if srplug must accept it, and the
    height, width, channel count and batch size it has when valid."""

    obj: Any
    valid: bool
    height: int = 0
    width: int = 0
    channels: int = 0
    batch: int = 1

    def __repr__(self) -> str:  # hypothesis prints failing examples with this
        desc = type(self.obj).__name__
        if isinstance(self.obj, (np.ndarray, torch.Tensor)):
            desc += f" shape={tuple(self.obj.shape)} dtype={self.obj.dtype}"
        elif PILImage is not None and isinstance(self.obj, PILImage.Image):
            desc += f" mode={self.obj.mode} size={self.obj.size}"
        return f"Image({desc}, valid={self.valid})"


side = st.integers(0, 9)
image_shapes = st.one_of(
    st.tuples(side, side),
    st.tuples(side, side, st.sampled_from([1, 3, 3, 4, 2])),
    st.tuples(side, side, st.integers(0, 6)),
    hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4),
)


def _elements(dtype: np.dtype) -> st.SearchStrategy[Any]:
    """Mostly in-range pixel values; sometimes anything the dtype holds (NaN, inf, huge)."""
    if dtype.kind == "f":
        width = 8 * dtype.itemsize
        tame = st.floats(-0.5, 1.5, width=width)
        return st.one_of(tame, tame, tame, hnp.from_dtype(dtype.newbyteorder("=")))
    return hnp.from_dtype(dtype.newbyteorder("="))


def _finite_float32(arr: np.ndarray) -> bool:
    if arr.dtype.kind != "f" or arr.size == 0:
        return True
    with np.errstate(all="ignore"):
        return bool(np.isfinite(arr.astype(np.float32)).all())


def _layout(shape: tuple[int, ...], batched: bool) -> tuple[bool, int, int, int, int]:
    """(shape ok, H, W, C, N) for numpy HxW[xC] or torch [N]xCxHxW shapes."""
    if batched is None:  # numpy
        if len(shape) == 2:
            h, w, c, n = shape[0], shape[1], 1, 1
        elif len(shape) == 3:
            h, w, c, n = shape[0], shape[1], shape[2], 1
        else:
            return False, 0, 0, 0, 0
    else:
        if len(shape) == 3:
            c, h, w, n = shape[0], shape[1], shape[2], 1
        elif len(shape) == 4:
            n, c, h, w = shape
        else:
            return False, 0, 0, 0, 0
    return (1 <= c <= 4 and h >= 1 and w >= 1 and n >= 1), h, w, c, n


@st.composite
def numpy_images(draw: st.DrawFn) -> Image:
    dtype = draw(st.one_of(st.sampled_from(NUMPY_DTYPES[:4]), st.sampled_from(NUMPY_DTYPES)))
    shape = draw(image_shapes)
    arr = draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))
    if draw(st.booleans()) and arr.ndim >= 2 and arr.shape[1] > 1:
        arr = arr[:, ::2]  # a non-contiguous view
    ok, h, w, c, n = _layout(arr.shape, None)
    valid = ok and arr.dtype.newbyteorder("=").name in NUMPY_VALID and _finite_float32(arr)
    return Image(arr, valid, h, w, c, n)


@st.composite
def torch_images(draw: st.DrawFn) -> Image:
    dtype = draw(st.one_of(st.sampled_from(TORCH_DTYPES[:3]), st.sampled_from(TORCH_DTYPES)))
    shape = draw(image_shapes)
    np_dtype = {
        torch.uint8: np.uint8,
        torch.int8: np.int8,
        torch.int32: np.int32,
        torch.int64: np.int64,
        torch.bool: np.bool_,
    }.get(dtype, np.float32)
    arr = draw(hnp.arrays(np.dtype(np_dtype), shape, elements=_elements(np.dtype(np_dtype))))
    x = torch.from_numpy(arr.copy())
    if dtype.is_floating_point:
        x = x.to(dtype)
    if draw(st.booleans()) and x.ndim >= 2:
        x = x.transpose(-1, -2)  # non-contiguous
    ok, h, w, c, n = _layout(tuple(x.shape), True)
    valid = ok and dtype in TORCH_VALID
    if valid and dtype.is_floating_point and x.numel():
        valid = bool(torch.isfinite(x.float()).all())
    return Image(x, valid, h, w, c, n)


_PIL_CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "I;16": 1, "F": 1, "1": 1}


@st.composite
def pil_images(draw: st.DrawFn) -> Image:
    mode = draw(st.sampled_from(PIL_MODES))
    w, h = draw(side), draw(side)
    rgba = draw(hnp.arrays(np.uint8, (h, w, 4)))
    base = PILImage.fromarray(rgba, "RGBA") if h and w else PILImage.new("RGBA", (w, h))
    if mode == "F":
        values = draw(hnp.arrays(np.float32, (h, w), elements=_elements(np.dtype("f4"))))
        img = PILImage.fromarray(values, "F") if h and w else PILImage.new("F", (w, h))
        valid = _finite_float32(values)
    elif mode == "I;16":
        img = base.convert("L").convert("I").convert("I;16")
        valid = True
    elif mode == "PA":
        img = base.convert("RGB").convert("P").convert("PA")
        valid = True
    else:
        img = base.convert(mode)
        valid = True
    if mode == "P" and draw(st.booleans()):
        img.info["transparency"] = 0
    channels = _PIL_CHANNELS.get(mode, 4 if mode == "PA" else 3)
    if mode == "P":
        channels = 4 if "transparency" in img.info else 3
    valid = valid and mode in PIL_VALID and h >= 1 and w >= 1
    return Image(img, valid, h, w, channels, 1)


def images() -> st.SearchStrategy[Image]:
    """Any image kind, or something that is not an image at all."""
    junk = st.sampled_from([None, 3, 2.5, "img.png", b"\x89PNG", [[0, 1], [2, 3]], {}]).map(
        lambda obj: Image(obj, False)
    )
    return st.one_of(numpy_images(), numpy_images(), torch_images(), pil_images(), junk)
