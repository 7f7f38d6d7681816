"""BT.601 studio-range conversions (MATLAB rgb2ycbcr / ycbcr2rgb)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srplug.color import rgb_to_y, rgb_to_y_255, rgb_to_ycbcr, ycbcr_to_rgb
from srplug.errors import InputError


def _pixel(r: float, g: float, b: float) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=torch.float64).view(3, 1, 1)


@pytest.mark.parametrize(
    ("rgb", "ycbcr_255"),
    [
        ((0.0, 0.0, 0.0), (16.0, 128.0, 128.0)),
        ((1.0, 1.0, 1.0), (235.0, 128.0, 128.0)),
        ((1.0, 0.0, 0.0), (16 + 65.481, 128 - 37.797, 128 + 112.0)),
        ((0.0, 1.0, 0.0), (16 + 128.553, 128 - 74.203, 128 - 93.786)),
        ((0.0, 0.0, 1.0), (16 + 24.966, 128 + 112.0, 128 - 18.214)),
    ],
)
def test_known_values(rgb: tuple[float, float, float], ycbcr_255: tuple[float, ...]) -> None:
    got = rgb_to_ycbcr(_pixel(*rgb)).flatten() * 255
    torch.testing.assert_close(got, torch.tensor(ycbcr_255, dtype=torch.float64))


def test_round_trip_float64() -> None:
    x = torch.rand(2, 4, 3, 9, 7, dtype=torch.float64)
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, rtol=0, atol=1e-13)
    y = rgb_to_ycbcr(x)
    torch.testing.assert_close(rgb_to_ycbcr(ycbcr_to_rgb(y)), y, rtol=0, atol=1e-13)


def test_float32_keeps_dtype() -> None:
    x = torch.rand(3, 5, 5)
    y = rgb_to_ycbcr(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    torch.testing.assert_close(ycbcr_to_rgb(y), x, rtol=0, atol=1e-5)


def test_rgb_to_y_is_the_first_channel() -> None:
    x = torch.rand(2, 3, 6, 8, dtype=torch.float64)
    y = rgb_to_y(x)
    assert y.shape == (2, 1, 6, 8)
    torch.testing.assert_close(y, rgb_to_ycbcr(x)[:, :1], rtol=0, atol=1e-15)
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    torch.testing.assert_close(y, (16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255)


def test_rgb_to_y_255_matches_torch() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    y = rgb_to_y_255(img)
    assert y.dtype == np.float64 and y.shape == (5, 6)
    t = torch.from_numpy(img).permute(2, 0, 1).double() / 255
    np.testing.assert_allclose(y, rgb_to_y(t)[0].numpy() * 255, rtol=0, atol=1e-12)
    assert rgb_to_y_255(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y_255(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)


def test_opencv_full_range_differs() -> None:
    import cv2

    white = np.full((1, 1, 3), 255, np.uint8)
    assert cv2.cvtColor(white, cv2.COLOR_RGB2YCrCb)[0, 0, 0] == 255  # full range
    assert rgb_to_y_255(white)[0, 0] == pytest.approx(235.0)  # studio range


@pytest.mark.parametrize(
    "bad",
    [torch.rand(4, 5, 5), torch.rand(5, 5), torch.zeros(3, 5, 5, dtype=torch.uint8)],
)
def test_invalid_tensors(bad: torch.Tensor) -> None:
    for fn in (rgb_to_ycbcr, ycbcr_to_rgb, rgb_to_y):
        with pytest.raises(InputError):
            fn(bad)


def test_invalid_arrays() -> None:
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        rgb_to_y_255(np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="uint8"):
        rgb_to_y_255(np.zeros((4, 4, 3), np.float32))
