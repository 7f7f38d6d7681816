"""The adapters (OpenCV, Kornia, torchvision) over random images and arguments: a correct
result or a srplug error."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from srplug.adapters import torchvision as tv
from srplug.adapters.opencv import DnnSuperResImpl

from tests.reliability.conftest import fuzz, outcome
from tests.reliability.strategies import Image, images

kornia_adapter = pytest.importorskip(
    "srplug.adapters.kornia", reason="kornia is not installed (pip install 'srplug[kornia]')"
)


def batches() -> st.SearchStrategy[Image]:
    """Mostly float ``(B, C, H, W)`` batches; sometimes any image or junk."""
    shape = st.tuples(
        st.integers(0, 2), st.sampled_from([1, 3, 3, 2, 4]), st.integers(0, 7), st.integers(0, 7)
    )
    batch = st.builds(
        lambda arr, dtype: Image(torch.from_numpy(arr).to(dtype), True),
        hnp.arrays(np.float32, shape, elements=st.floats(-0.5, 1.5, width=32)),
        st.sampled_from([torch.float32, torch.float64, torch.bfloat16]),
    )
    # (one_of would flatten images()'s own branches and draw batches rarely)
    return st.sampled_from([batch, batch, batch, images()]).flatmap(lambda strategy: strategy)


@functools.cache
def opencv_sr(algo: str, scale: int) -> DnnSuperResImpl:
    sr = DnnSuperResImpl.create()
    sr.setModel(algo, scale)
    return sr


@fuzz(60)
@given(
    img=images(),
    model=st.sampled_from([("espcn", 4), ("fsrcnn", 2), ("bicubic", 2), ("bicubic", 3)]),
)
def test_opencv_upsample(img: Image, model: tuple[str, int]) -> None:
    sr = opencv_sr(*model)
    out, err = outcome("opencv.upsample", lambda: sr.upsample(img.obj))
    if err is not None:
        return
    src = img.obj
    assert isinstance(src, np.ndarray) and isinstance(out, np.ndarray)
    assert out.shape[:2] == (src.shape[0] * sr.getScale(), src.shape[1] * sr.getScale())


@fuzz(30)
@given(
    algo=st.sampled_from(["espcn", "fsrcnn", "lapsrn", "edsr", "bicubic", "esr-tm", "nope", ""]),
    scale=st.one_of(st.integers(-1, 9), st.sampled_from([2.0, "2", None, True])),
)
def test_opencv_set_model(algo: str, scale: Any) -> None:
    sr = DnnSuperResImpl.create()
    _, err = outcome("opencv.setModel", lambda: sr.setModel(algo, scale))
    if err is None:
        out = sr.upsample(np.zeros((3, 5, 3), np.uint8))
        assert out.shape == (3 * sr.getScale(), 5 * sr.getScale(), 3)


@functools.cache
def kornia_sr(name: str, scale: int) -> Any:
    return kornia_adapter.SuperResolution(name, scale, weights=None)


@fuzz(60)
@given(img=batches(), model=st.sampled_from([("bicubic", 2), ("esr-tr", 2), ("fsrcnn", 3)]))
def test_kornia_super_resolution(img: Image, model: tuple[str, int]) -> None:
    sr = kornia_sr(*model)
    out, err = outcome("kornia.SuperResolution", lambda: sr(img.obj))
    if err is not None:
        return
    x = img.obj
    assert tuple(out.shape) == (*x.shape[:2], x.shape[2] * sr.scale, x.shape[3] * sr.scale)
    assert out.dtype == x.dtype


_RANGES = st.one_of(
    st.floats(-1, 5),
    st.just(float("nan")),
    st.tuples(st.floats(-1, 5), st.floats(-1, 5)),
    st.sampled_from([(1.0,), (0.5, 1.0, 2.0), "x", None]),
)
_OP_TABLES = st.fixed_dictionaries(
    {"op": st.sampled_from(["blur", "aniso_blur", "noise", "jpeg", "downscale", "nope"])},
    optional={
        "sigma": _RANGES,
        "quality": st.one_of(_RANGES, st.tuples(st.floats(0, 120), st.floats(0, 120))),
        "kernel_size": st.one_of(st.integers(-2, 9), st.just(2.5)),
        "p": st.one_of(st.floats(-0.5, 1.5), st.just(float("nan"))),
        "scale": st.integers(-1, 5),
        "bogus": st.integers(),
    },
)


@fuzz(50)
@given(
    spec=st.one_of(
        st.sampled_from(["bicubic", "blur", "noise", "jpeg", "real", "nope", ""]),
        st.lists(_OP_TABLES, max_size=3),
        st.integers(),
    ),
    scale=st.integers(1, 4),
    hr=batches(),
    crop=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_kornia_degradations(spec: Any, scale: int, hr: Image, crop: bool, seed: int) -> None:
    x = hr.obj
    if crop and isinstance(x, torch.Tensor) and x.ndim == 4:  # HR sides multiples of the scale
        x = x[..., : x.shape[-2] - x.shape[-2] % scale, : x.shape[-1] - x.shape[-1] % scale]
    deg, err = outcome(
        "kornia.build_degradation", lambda: kornia_adapter.build_degradation(spec, scale)
    )
    if err is not None:
        return
    g = torch.Generator().manual_seed(seed)
    lr, err = outcome("kornia.Degradation", lambda: deg(x, generator=g))
    if err is None:
        assert isinstance(lr, torch.Tensor) and torch.isfinite(lr).all()
        assert lr.shape[-2:] == (x.shape[-2] // scale, x.shape[-1] // scale)


@fuzz(60)
@given(
    img=images(),
    scale=st.one_of(st.sampled_from([2, 3]), st.integers(-1, 5), st.sampled_from([2.0, "2"])),
    patch=st.one_of(st.none(), st.sampled_from([6, 12]), st.integers(-1, 12)),
    channels=st.sampled_from(["rgb", "y", "bgr"]),
    index=st.integers(0, 3),
)
def test_torchvision_pairs(img: Image, scale: Any, patch: Any, channels: str, index: int) -> None:
    dataset = [img.obj, (img.obj, 7), {"image": img.obj, "label": 1}]
    pairs, err = outcome(
        "torchvision.SRPairs",
        lambda: tv.SRPairs(dataset, scale, patch, channels=channels, seed=index),
    )
    if err is not None:
        return
    item, err = outcome("torchvision.SRPairs[i]", lambda: pairs[index % 3])
    if err is not None:
        return
    lr, hr = item
    c = 3 if channels == "rgb" else 1
    assert hr.shape[0] == c and lr.shape[0] == c
    assert hr.shape[1] == lr.shape[1] * scale and hr.shape[2] == lr.shape[2] * scale
    if patch is not None:
        assert hr.shape[1:] == (patch, patch)
    assert lr.dtype == hr.dtype == torch.float32
    assert float(lr.min()) >= 0 and float(hr.max()) <= 1


@fuzz(30)
@given(
    hr=hnp.arrays(np.float32, st.tuples(st.integers(0, 3), st.integers(0, 9), st.integers(0, 9))),
    scale=st.one_of(st.integers(-1, 4), st.sampled_from([2.0, True, "2", None])),
)
def test_torchvision_bicubic_lr(hr: np.ndarray, scale: Any) -> None:
    out, err = outcome("torchvision.bicubic_lr", lambda: tv.bicubic_lr(torch.from_numpy(hr), scale))
    if err is None:
        assert out.shape[0] == hr.shape[0]
        assert out.shape[1:] == (-(-hr.shape[1] // scale), -(-hr.shape[2] // scale))
        if np.isfinite(hr).all():
            assert float(out.min()) >= 0 and float(out.max()) <= 1
