"""Upsampler behaviour beyond bicubic: Y-channel networks, gray into RGB nets, alpha, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import srplug
from srplug.color import rgb_to_ycbcr, ycbcr_to_rgb
from srplug.resize import imresize
from srplug.upsampler import ModuleUpsampler, resolve_device, resolve_dtype
from tests.helpers.models import Nearest


def test_y_model_runs_network_on_luma_and_bicubic_on_chroma():
    up = ModuleUpsampler(Nearest(2), name="nn-y", scale=2, channels="y")
    img = torch.rand(1, 3, 6, 5, dtype=torch.float64)
    out = up(img.float())
    ycbcr = rgb_to_ycbcr(img)
    y = nn.functional.interpolate(ycbcr[:, :1], scale_factor=2, mode="nearest")
    cbcr = imresize(ycbcr[:, 1:], 2.0)
    expected = ycbcr_to_rgb(torch.cat([y, cbcr], 1)).clamp(0, 1)
    assert (out.double() - expected).abs().max() < 1e-5


def test_y_model_sees_one_channel():
    seen = []

    class Spy(Nearest):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return super().forward(x)

    up = ModuleUpsampler(Spy(3), name="spy", scale=3, channels="y")
    up(np.zeros((4, 5, 3), np.uint8))
    up(np.zeros((4, 5), np.uint8))
    assert seen == [(1, 1, 4, 5), (1, 1, 4, 5)]


def test_gray_into_y_model_stays_gray_and_exact():
    up = ModuleUpsampler(Nearest(2), name="nn-y", scale=2, channels="y")
    gray = np.arange(30, dtype=np.uint8).reshape(5, 6) * 8
    out = up(gray)
    assert out.shape == (10, 12) and out.dtype == np.uint8
    assert (out == np.kron(gray, np.ones((2, 2), np.uint8))).all()


def test_gray_into_rgb_model_is_replicated():
    up = ModuleUpsampler(Nearest(2), name="nn", scale=2, channels="rgb")
    gray = np.arange(30, dtype=np.uint8).reshape(5, 6, 1) * 8
    out = up(gray)
    assert out.shape == (10, 12, 1)
    assert (out[:, :, 0] == np.kron(gray[:, :, 0], np.ones((2, 2), np.uint8))).all()


def test_alpha_is_enlarged_bicubically_and_not_fed_to_the_network():
    up = ModuleUpsampler(Nearest(2, offset=0.5), name="nn", scale=2, channels="rgb")
    rgba = np.zeros((6, 6, 4), np.float32)
    rgba[:, :, 3] = np.linspace(0, 1, 36, dtype=np.float32).reshape(6, 6)
    out = up(rgba)
    assert np.allclose(out[:, :, :3], 0.5)  # network offset shows on colour only
    alpha = imresize(torch.from_numpy(rgba[:, :, 3]).double(), 2.0).clamp(0, 1).numpy()
    assert np.abs(out[:, :, 3] - alpha).max() < 1e-6


def test_float_output_is_clamped():
    up = ModuleUpsampler(Nearest(2, offset=5.0), name="nn", scale=2)
    assert up(np.zeros((3, 3, 3), np.float32)).max() == 1.0


def test_wrong_output_shape_is_a_plugin_error():
    up = ModuleUpsampler(nn.Identity(), name="broken", scale=2)
    with pytest.raises(srplug.PluginError, match="broken.*expected"):
        up(np.zeros((3, 3, 3), np.uint8))


def test_model_attribute_and_dtype():
    module = Nearest(2)
    up = ModuleUpsampler(module, name="nn", scale=2, dtype="bfloat16")
    assert up.model is module
    assert up.dtype == torch.bfloat16 and module.offset.dtype == torch.bfloat16
    assert up(np.zeros((4, 4, 3), np.uint8)).shape == (8, 8, 3)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((2, 2, 2, 2), np.uint8), "dimensions"),
        (np.zeros((4, 4, 5), np.uint8), "channels"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.zeros((4, 4, 3), np.int32), "dtype"),
        (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
        (torch.zeros(4, 4), "dimensions"),
        (torch.zeros(0, 3, 4, 4), "batch size 0"),
        (torch.zeros(3, 4, 4, dtype=torch.int64), "dtype"),
        (torch.full((3, 4, 4), float("inf")), "NaN or infinite"),
        ([[1, 2], [3, 4]], "numpy array"),
        ("image.png", "numpy array"),
    ],
)
def test_bad_input_is_an_input_error(bad, match):
    up = srplug.get("bicubic", scale=2)
    with pytest.raises(srplug.InputError, match=match):
        up(bad)


def test_unsupported_pil_mode():
    from PIL import Image

    with pytest.raises(srplug.InputError, match="CMYK"):
        srplug.get("bicubic")(Image.new("CMYK", (4, 4)))


@pytest.mark.parametrize("device,match", [("gpu7", "not a torch device"), ("cuda", "CUDA")])
def test_bad_device(device, match):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present, so 'cuda' is valid here")
    with pytest.raises(srplug.InputError, match=match):
        resolve_device(device)


def test_dtype_names():
    assert resolve_dtype("bf16") is torch.bfloat16
    assert resolve_dtype(torch.float16) is torch.float16
    assert resolve_dtype(None) is torch.float32
    with pytest.raises(srplug.InputError, match="int8"):
        resolve_dtype("int8")
    with pytest.raises(srplug.InputError):
        resolve_dtype(torch.int32)
