"""The bicubic plugin: every accepted image kind, dtype and channel count round-trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import srplug
from srplug.resize import imresize

H, W, S = 13, 10, 2


def _reference(img01: np.ndarray, scale: int = S) -> np.ndarray:
    """HxWxC float64 [0,1] -> enlarged with the float64 MATLAB resize, clamped."""
    x = torch.from_numpy(img01).permute(2, 0, 1)[None]
    return imresize(x, float(scale))[0].permute(1, 2, 0).clamp(0, 1).numpy()


def _random(channels: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random((H, W, channels))


@pytest.fixture(scope="module")
def up():
    return srplug.get("bicubic", scale=S)


def test_get_bicubic_properties(up):
    assert isinstance(up, srplug.Upsampler)
    assert up.name == "bicubic" and up.scale == S and up.channels == "rgb"
    assert up.model is None
    assert srplug.info("bicubic").network is False


@pytest.mark.parametrize("dtype,maxval", [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1)])
@pytest.mark.parametrize("channels", [0, 1, 3, 4])
def test_numpy_roundtrip(up, dtype, maxval, channels):
    rng = np.random.default_rng(channels)
    base = _random(max(channels, 1), rng)
    is_float = dtype == np.float32
    img = base.astype(np.float32) if is_float else np.round(base * maxval).astype(dtype)
    if channels == 0:
        img = img[:, :, 0]
    out = up(img)
    assert isinstance(out, np.ndarray)
    assert out.dtype == img.dtype
    assert out.shape == (H * S, W * S, *img.shape[2:])
    expected = _reference(img.reshape(H, W, -1).astype(np.float64) / maxval)
    got = out.reshape(H * S, W * S, -1).astype(np.float64) / maxval
    tolerance = 1.0 / maxval if dtype != np.float32 else 1e-5
    assert np.abs(got - expected).max() <= tolerance + 1e-6


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "I;16", "F"])
def test_pil_roundtrip(up, mode):
    rng = np.random.default_rng(7)
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "I;16": 1, "F": 1}[mode]
    base = _random(channels, rng)
    if mode == "I;16":
        arr = np.round(base[:, :, 0] * 65535).astype(np.uint16)
    elif mode == "F":
        arr = base[:, :, 0].astype(np.float32)
    else:
        arr = np.round(base * 255).astype(np.uint8)
        arr = arr[:, :, 0] if channels == 1 else arr
    img = Image.fromarray(arr)
    assert img.mode == mode
    out = up(img)
    assert isinstance(out, Image.Image)
    assert out.mode == mode and out.size == (W * S, H * S)
    maxval = {"I;16": 65535, "F": 1}.get(mode, 255)
    expected = _reference(np.asarray(img, dtype=np.float64).reshape(H, W, -1) / maxval)
    got = np.asarray(out, dtype=np.float64).reshape(H * S, W * S, -1) / maxval
    assert np.abs(got - expected).max() <= (1.0 / maxval if maxval > 1 else 1e-5) + 1e-6


def test_pil_palette_comes_back_rgb(up):
    img = Image.fromarray(np.zeros((H, W, 3), np.uint8)).convert("P")
    out = up(img)
    assert out.mode == "RGB" and out.size == (W * S, H * S)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.uint8])
@pytest.mark.parametrize("shape", [(3, H, W), (2, 3, H, W), (1, H, W), (4, H, W), (2, 4, H, W)])
def test_torch_roundtrip(up, dtype, shape):
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(shape, generator=gen, dtype=torch.float64)
    x = (base * 255).round().to(dtype) if dtype == torch.uint8 else base.to(dtype)
    out = up(x)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == dtype and out.device == x.device
    assert out.shape == (*shape[:-2], H * S, W * S)
    scale = 255.0 if dtype == torch.uint8 else 1.0
    flat = x.double().reshape(-1, shape[-3], H, W) / scale
    expected = torch.stack([torch.from_numpy(_reference(i.permute(1, 2, 0).numpy())) for i in flat])
    got = out.double().reshape(-1, shape[-3], H * S, W * S).permute(0, 2, 3, 1) / scale
    tolerance = {torch.uint8: 1 / 255, torch.float16: 1e-3}.get(dtype, 1e-5)
    assert (got - expected).abs().max().item() <= tolerance + 1e-6


def test_output_is_usable_with_autograd(up):
    out = up(torch.rand(3, 8, 8))
    assert not out.is_inference()
    (out * torch.ones_like(out, requires_grad=True)).sum().backward()


@pytest.mark.parametrize("scale", [1, 3, 4, 5])
def test_any_integer_scale(scale):
    out = srplug.get("bicubic", scale=scale)(np.zeros((7, 9, 3), np.uint8))
    assert out.shape == (7 * scale, 9 * scale, 3)


def test_constant_image_stays_constant(up):
    img = np.full((9, 11, 3), 77, np.uint8)
    assert (up(img) == 77).all()


def test_default_scale_is_two():
    assert srplug.get("bicubic").scale == 2
