"""``srplug.get(...)(img)`` over random images and arguments: a correct result or a srplug
error, never a raw exception from inside numpy, torch or a model."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import srplug
from srplug.image import is_pil_image
from srplug.upsampler import TensorUpsampler
from tests.reliability.conftest import fuzz, outcome
from tests.reliability.strategies import Image, images

# Fast models; (name, scale, weights): shipped weights where there are some.
MODELS = [
    ("bicubic", 2, "default"),
    ("bicubic", 3, "default"),
    ("espcn", 4, "default"),
    ("fsrcnn", 2, "default"),
    ("fsrcnn-small", 3, None),
    ("esr-max", 2, None),
    ("esr-tm", 3, None),
    ("esr-tr", 4, None),
    ("esr-cnn", 2, None),
]


@functools.cache
def upsampler(name: str, scale: int, weights: str | None) -> TensorUpsampler:
    torch.manual_seed(0)
    return srplug.get(name, scale, weights)


def check_result(img: Image, out: Any, scale: int) -> None:
    """``out`` is ``img`` enlarged by ``scale``: same kind, dtype and channels, sane values."""
    h, w = img.height * scale, img.width * scale
    src = img.obj
    if isinstance(src, np.ndarray):
        assert isinstance(out, np.ndarray)
        assert out.dtype == src.dtype.newbyteorder("=")
        assert out.shape == (h, w, *src.shape[2:])
        if out.dtype.kind == "f":
            assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    elif isinstance(src, torch.Tensor):
        assert isinstance(out, torch.Tensor)
        assert out.dtype == src.dtype and out.device == src.device
        assert tuple(out.shape) == (*src.shape[:-2], h, w)
        if out.is_floating_point():
            assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    else:
        assert is_pil_image(out)
        assert out.size == (w, h)
        assert len(out.getbands()) == img.channels


@fuzz(100)
@given(img=images(), model=st.sampled_from(MODELS))
def test_upscale_any_image(img: Image, model: tuple[str, int, str | None]) -> None:
    up = upsampler(*model)
    out, err = outcome("upscale", lambda: up(img.obj))
    if img.valid:
        assert err is None, f"a valid image was refused: {err}"
        check_result(img, out, up.scale)
    else:
        assert err is not None, "an invalid image was accepted"


def _mostly(usual: list[Any], odd: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(usual), st.sampled_from(usual), st.sampled_from(odd))


_SCALES = _mostly([None, 2, 3, 4], [-1, 0, 1, 5, 9, 2.0, "2", True, 1e9])
_WEIGHTS = _mostly(
    ["default", None], ["x2", "x4", "nope", "/nonexistent/w.pth", "w.safetensors", 3, b"x2"]
)
_DEVICES = _mostly([None, "cpu"], ["cpu:0", "cuda", "cuda:7", "mps", "bogus", "", 3])
_DTYPES = _mostly(
    [None, "float32", "bf16", torch.float16],
    ["half", "int8", "float64", torch.float64, torch.int32, 5, ""],
)
_OPTION_VALUES = st.one_of(
    st.integers(-3, 70), st.none(), st.text(max_size=3), st.floats(allow_nan=True)
)
_OPTIONS = st.one_of(
    st.just({}),
    st.dictionaries(
        st.sampled_from(["n1", "f1", "act", "d", "s", "m", "k", "C", "D", "S", "bogus"]),
        _OPTION_VALUES,
        max_size=2,
    ),
)


@fuzz(50)
@given(
    name=st.sampled_from(
        ["bicubic", "espcn", "fsrcnn", "fsrcnn-small", "esr-max", "esr-tr", "ESPCN ", "nope", ""]
    ),
    scale=_SCALES,
    weights=_WEIGHTS,
    device=_DEVICES,
    dtype=_DTYPES,
    options=_OPTIONS,
)
def test_get_with_any_arguments(
    name: str, scale: Any, weights: Any, device: Any, dtype: Any, options: dict[str, Any]
) -> None:
    up, err = outcome(
        "get", lambda: srplug.get(name, scale, weights, device=device, dtype=dtype, **options)
    )
    if err is not None:
        return
    assert isinstance(up, TensorUpsampler)
    img = np.full((3, 4, 3), 128, np.uint8)
    out, err = outcome("get+upscale", lambda: up(img))
    assert err is None, f"an upsampler srplug.get built cannot upscale a 3x4 image: {err}"
    assert out.shape == (3 * up.scale, 4 * up.scale, 3) and out.dtype == np.uint8
