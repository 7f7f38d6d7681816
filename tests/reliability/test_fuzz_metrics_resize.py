"""Metrics and MATLAB resize over random arrays and arguments: a correct result or a srplug
error."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from srplug import metrics, resize
from tests.reliability.conftest import fuzz, outcome

_SHAPES = st.one_of(
    st.tuples(st.integers(0, 24), st.integers(0, 24)),
    st.tuples(st.integers(0, 24), st.integers(0, 24), st.sampled_from([1, 3, 3, 4])),
    hnp.array_shapes(min_dims=0, max_dims=4, max_side=5),
)
_DTYPES = st.sampled_from([np.uint8, np.uint8, np.uint16, np.float32, np.int64, np.bool_])
_SHAVE = st.one_of(
    st.integers(0, 2), st.integers(0, 2), st.integers(-1, 12), st.sampled_from([True, 2.0, "1"])
)
_GOOD_SHAPES = st.one_of(
    st.tuples(st.integers(1, 24), st.integers(1, 24)),
    st.tuples(st.integers(1, 24), st.integers(1, 24), st.just(3)),
)


@st.composite
def image_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    if draw(st.integers(0, 3)):  # mostly what the metrics take: uint8 pairs of one shape
        shape = draw(_GOOD_SHAPES)
        return draw(hnp.arrays(np.uint8, shape)), draw(hnp.arrays(np.uint8, shape))
    dtype = draw(_DTYPES)
    shape = draw(_SHAPES)
    sr = draw(hnp.arrays(dtype, shape))
    if draw(st.booleans()):
        hr = draw(hnp.arrays(dtype, shape))
    else:
        hr = draw(hnp.arrays(draw(_DTYPES), draw(_SHAPES)))
    return sr, hr


@fuzz(100)
@given(pair=image_pairs(), shave=_SHAVE, y=st.booleans(), which=st.sampled_from(["psnr", "ssim"]))
def test_metrics(pair: tuple[np.ndarray, np.ndarray], shave: Any, y: bool, which: str) -> None:
    sr, hr = pair
    fn = metrics.psnr if which == "psnr" else metrics.ssim
    value, err = outcome(f"metrics.{which}", lambda: fn(sr, hr, shave=shave, y_channel=y))
    if err is not None:
        return
    assert isinstance(value, float) and not math.isnan(value)
    if which == "ssim":
        assert -1.0 <= value <= 1.0 + 1e-9
    else:
        assert value >= 0  # 0 dB: every pixel off by the full range


@fuzz(60)
@given(
    shape=st.tuples(
        st.integers(0, 2), st.sampled_from([1, 3, 3, 2]), st.integers(0, 24), st.integers(0, 24)
    ),
    other=st.one_of(st.none(), st.none(), st.tuples(st.integers(0, 2), st.integers(1, 3))),
    dtype=st.sampled_from([torch.float32, torch.float32, torch.float64, torch.uint8]),
    shave=_SHAVE,
    which=st.sampled_from(["psnr_tensor", "ssim_tensor"]),
    seed=st.integers(0, 1000),
)
def test_tensor_metrics(
    shape: tuple[int, ...], other: Any, dtype: torch.dtype, shave: Any, which: str, seed: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    sr = torch.rand(shape, generator=g).to(dtype)
    hr_shape = shape if other is None else (other[0], other[1], *shape[2:])
    hr = torch.rand(hr_shape, generator=g).to(dtype)
    fn = getattr(metrics, which)
    value, err = outcome(f"metrics.{which}", lambda: fn(sr, hr, shave=shave))
    if err is None:
        assert value.shape == (shape[0],) and not torch.isnan(value).any()


_SCALES = st.one_of(
    st.floats(0.05, 4.0),
    st.floats(0.05, 4.0),
    st.sampled_from([0.5, 1, 2, 3, 0, -1, float("nan"), float("inf"), 1e-9, 1e12, True, "2"]),
    st.none(),
)
_SIZES = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.tuples(st.integers(-1, 20), st.integers(-1, 20)),
    st.sampled_from([(3,), (2, 2, 2), "ab", (2.0, 3), (10**7, 10**7)]),
)


@fuzz(100)
@given(
    x=hnp.arrays(
        st.sampled_from([np.float32, np.float32, np.float64, np.float16, np.uint8, np.int32]),
        st.one_of(
            hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=7),
            hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7),
        ),
    ),
    scale=_SCALES,
    size=_SIZES,
    antialias=st.booleans(),
)
def test_imresize(x: np.ndarray, scale: Any, size: Any, antialias: bool) -> None:
    t = torch.from_numpy(x)
    out, err = outcome(
        "resize.imresize", lambda: resize.imresize(t, scale, size=size, antialias=antialias)
    )
    if err is not None:
        return
    assert out.dtype == t.dtype and out.shape[:-2] == t.shape[:-2]
    if size is not None:
        assert tuple(out.shape[-2:]) == tuple(size)


@fuzz(60)
@given(
    img=hnp.arrays(
        st.sampled_from([np.uint8, np.uint8, np.float32]),
        st.one_of(
            st.tuples(st.integers(1, 9), st.integers(1, 9)),
            st.tuples(st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 3])),
            hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9),
        ),
    ),
    scale=_SCALES,
    mod=st.one_of(st.integers(1, 4), st.integers(-1, 5), st.sampled_from([2.0, True])),
)
def test_imresize_uint8_and_modcrop(img: np.ndarray, scale: Any, mod: Any) -> None:
    out, err = outcome("resize.imresize_uint8", lambda: resize.imresize_uint8(img, scale))
    if err is None:
        assert out.dtype == np.uint8 and out.shape[2:] == img.shape[2:]
    out, err = outcome("resize.modcrop", lambda: resize.modcrop(img, mod))
    if err is None:
        assert out.shape[0] % mod == 0 and out.shape[1] % mod == 0 and out.shape[0] > 0
