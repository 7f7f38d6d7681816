"""PSNR / SSIM per the evaluation protocol, checked against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srplug.errors import InputError
from srplug.metrics import psnr, psnr_tensor, ssim, ssim_tensor


def _rand(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def brute_force_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang 2004 SSIM with explicit loops over every 11x11 window (float64, 0..255)."""
    r = np.arange(-5, 6, dtype=np.float64)
    win = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    win /= win.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (win * pa).sum(), (win * pb).sum()
            va = (win * (pa - ma) ** 2).sum()
            vb = (win * (pb - mb) ** 2).sum()
            cov = (win * (pa - ma) * (pb - mb)).sum()
            values.append(
                ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(values))


def _y(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[..., c].astype(np.float64) / 255 for c in range(3))
    return 16 + 65.481 * r + 128.553 * g + 24.966 * b


def test_identical_images() -> None:
    img = _rand((20, 24, 3))
    assert psnr(img, img) == math.inf
    assert psnr(img, img, y_channel=False) == math.inf
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert ssim(img, img, y_channel=False) == pytest.approx(1.0, abs=1e-12)


def test_known_mse() -> None:
    hr = np.full((16, 16, 3), 100, np.uint8)
    sr = np.full((16, 16, 3), 110, np.uint8)
    assert psnr(sr, hr, y_channel=False) == pytest.approx(10 * math.log10(255**2 / 100))
    dy = 10 * (65.481 + 128.553 + 24.966) / 255  # gray shift of 10 moves Y by 10*219/255
    assert psnr(sr, hr) == pytest.approx(10 * math.log10(255**2 / dy**2), abs=1e-10)
    assert psnr(sr[..., 0], hr[..., 0]) == pytest.approx(10 * math.log10(255**2 / 100))


def test_shave_ignores_borders() -> None:
    hr = _rand((20, 20, 3), 1)
    sr = hr.copy()
    sr[:3] = 0
    sr[:, -3:] = 255
    assert psnr(sr, hr) < 30
    assert psnr(sr, hr, shave=3) == math.inf
    assert ssim(sr, hr, shave=3) == pytest.approx(1.0)


def test_psnr_uses_unrounded_y() -> None:
    hr, sr = _rand((12, 14, 3), 2), _rand((12, 14, 3), 3)
    mse = np.mean((_y(sr) - _y(hr)) ** 2)
    assert psnr(sr, hr) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-10)
    mse_rgb = np.mean((sr.astype(np.float64) - hr) ** 2)
    assert psnr(sr, hr, y_channel=False) == pytest.approx(10 * math.log10(255**2 / mse_rgb))


def test_ssim_matches_brute_force() -> None:
    hr = _rand((19, 23, 3), 4)
    noise = np.random.default_rng(5).normal(0, 20, hr.shape)
    sr = np.clip(hr + noise, 0, 255).round().astype(np.uint8)
    expected = brute_force_ssim(_y(sr), _y(hr))
    assert 0.2 < expected < 0.99
    assert ssim(sr, hr) == pytest.approx(expected, abs=1e-12)
    per_channel = [brute_force_ssim(sr[..., c] * 1.0, hr[..., c] * 1.0) for c in range(3)]
    assert ssim(sr, hr, y_channel=False) == pytest.approx(np.mean(per_channel), abs=1e-12)
    inner = brute_force_ssim(_y(sr)[2:-2, 2:-2], _y(hr)[2:-2, 2:-2])
    assert ssim(sr, hr, shave=2) == pytest.approx(inner, abs=1e-12)


def test_ssim_constant_images_closed_form() -> None:
    a, b = np.full((15, 15), 80, np.uint8), np.full((15, 15), 120, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 80 * 120 + c1) / (80**2 + 120**2 + c1), abs=1e-12)


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(InputError, match=r"\(10, 12, 3\).*\(10, 11, 3\)"):
        psnr(_rand((10, 12, 3)), _rand((10, 11, 3)))
    with pytest.raises(InputError, match="shapes differ"):
        ssim(_rand((16, 16, 3)), _rand((16, 17, 3)))


@pytest.mark.parametrize(
    ("sr", "hr", "kwargs", "match"),
    [
        (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.float32), {}, "uint8"),
        (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 4), np.uint8), {}, "H, W"),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), {"shave": 4}, "leaves nothing"),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), {"shave": -1}, "non-negative"),
    ],
)
def test_invalid_inputs(sr: np.ndarray, hr: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        psnr(sr, hr, **kwargs)


def test_ssim_too_small() -> None:
    with pytest.raises(InputError, match="11x11"):
        ssim(_rand((14, 14, 3)), _rand((14, 14, 3), 1), shave=2)


@pytest.mark.parametrize("y_channel", [True, False])
def test_tensor_versions_match_numpy(y_channel: bool) -> None:
    hr = np.stack([_rand((24, 20, 3), s) for s in (6, 7)])
    noise = np.random.default_rng(8).normal(0, 12, hr.shape)
    sr = np.clip(hr + noise, 0, 255).round().astype(np.uint8)

    def to_t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255

    p = psnr_tensor(to_t(sr), to_t(hr), shave=2, y_channel=y_channel)
    s = ssim_tensor(to_t(sr), to_t(hr), shave=2, y_channel=y_channel)
    assert p.shape == (2,) and s.shape == (2,) and p.dtype == torch.float64
    for i in range(2):
        assert p[i].item() == pytest.approx(psnr(sr[i], hr[i], shave=2, y_channel=y_channel))
        assert s[i].item() == pytest.approx(ssim(sr[i], hr[i], shave=2, y_channel=y_channel))


def test_psnr_tensor_identical_and_quantize() -> None:
    x = torch.rand(3, 3, 8, 8)
    assert torch.isinf(psnr_tensor(x, x)).all()
    nudged = (x + 1e-4).clamp(0, 1)
    assert psnr_tensor(nudged, x, quantize=False).isfinite().all()
    with pytest.raises(InputError, match="shapes differ"):
        psnr_tensor(x, x[:2])
    with pytest.raises(InputError, match=r"\(N, C, H, W\)"):
        psnr_tensor(x[0], x[0])
