"""PSNR and SSIM exactly as SR papers measure them (see SPEC "Evaluation protocol").

The numpy functions take uint8 images and compute in float64: luma from unrounded BT.601
(:func:`srplug.color.rgb_to_y_255`), ``shave`` pixels dropped from every border, PSNR as
``10 log10(255^2 / MSE)``, SSIM after Wang et al. 2004 (11x11 Gaussian, sigma 1.5, K1 0.01,
K2 0.03, L 255, 'valid' filtering, mean of the map). The torch functions do the same for
batches of float tensors in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np
import torch

from srplug.color import rgb_to_y, rgb_to_y_255
from srplug.errors import InputError

__all__ = ["gaussian_window", "psnr", "psnr_tensor", "ssim", "ssim_tensor"]

_PEAK = 255.0
_WIN = 11
_SIGMA = 1.5
_C1 = (0.01 * _PEAK) ** 2
_C2 = (0.03 * _PEAK) ** 2


def gaussian_window(size: int = _WIN, sigma: float = _SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian (float64, sums to 1); its outer product with itself is
    MATLAB's ``fspecial('gaussian', size, sigma)``."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _prepare(
    sr: np.ndarray, hr: np.ndarray, shave: int, y_channel: bool, what: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Validated float64 ``(H, W)`` plane pairs (one, or one per channel) after shaving."""
    for name, img in (("sr", sr), ("hr", hr)):
        if not isinstance(img, np.ndarray):
            raise InputError(f"{what}: {name} must be a numpy array, got {type(img).__name__}")
        if img.dtype != np.uint8:
            raise InputError(f"{what}: {name} must be uint8, got {img.dtype}")
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)):
            raise InputError(f"{what}: {name} must be (H, W) or (H, W, 3), got {img.shape}")
    if sr.shape != hr.shape:
        raise InputError(f"{what}: shapes differ: sr {sr.shape} vs hr {hr.shape}")
    if isinstance(shave, bool) or not isinstance(shave, (int, np.integer)) or shave < 0:
        raise InputError(f"{what}: shave must be a non-negative integer, got {shave!r}")
    h, w = sr.shape[:2]
    if h <= 2 * shave or w <= 2 * shave:
        raise InputError(f"{what}: shave={shave} leaves nothing of a {h}x{w} image")
    if sr.ndim == 3 and sr.shape[2] == 3 and y_channel:
        planes = [(rgb_to_y_255(sr), rgb_to_y_255(hr))]
    elif sr.ndim == 2:
        planes = [(sr.astype(np.float64), hr.astype(np.float64))]
    else:
        planes = [
            (sr[..., c].astype(np.float64), hr[..., c].astype(np.float64))
            for c in range(sr.shape[2])
        ]
    if shave:
        planes = [(a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]) for a, b in planes]
    return planes


def psnr(sr: np.ndarray, hr: np.ndarray, *, shave: int = 0, y_channel: bool = True) -> float:
    """PSNR in dB of uint8 ``sr`` against uint8 ``hr`` (same shape, ``(H, W, 3)`` RGB or
    ``(H, W)``), in float64.

    ``y_channel=True`` compares BT.601 luma of RGB images; ``False`` (or a 2-D image) compares
    all channels' values directly. ``inf`` for identical images.
    """
    planes = _prepare(sr, hr, shave, y_channel, "psnr")
    mse = float(np.mean([np.mean((a - b) ** 2) for a, b in planes]))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(_PEAK * _PEAK / mse)


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of float64 ``(H, W)`` with ``outer(g, g)``."""
    k = g.size
    h, w = img.shape
    rows = sum(g[i] * img[i : i + h - k + 1, :] for i in range(k))
    return sum(g[j] * rows[:, j : j + w - k + 1] for j in range(k))


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two float64 ``(H, W)`` planes on the 0..255 scale."""
    if min(a.shape) < _WIN:
        raise InputError(f"ssim needs at least {_WIN}x{_WIN} pixels after shaving, got {a.shape}")
    g = gaussian_window()
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a * mu_a
    var_b = _filter_valid(b * b, g) - mu_b * mu_b
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2.0 * mu_a * mu_b + _C1) * (2.0 * cov + _C2)
    den = (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
    return float(np.mean(num / den))


def ssim(sr: np.ndarray, hr: np.ndarray, *, shave: int = 0, y_channel: bool = True) -> float:
    """Mean SSIM (Wang 2004) of uint8 ``sr`` against uint8 ``hr``, in float64.

    On BT.601 luma with ``y_channel=True``; otherwise the mean of the per-channel SSIMs.
    1.0 for identical images.
    """
    planes = _prepare(sr, hr, shave, y_channel, "ssim")
    return float(np.mean([_ssim_plane(a, b) for a, b in planes]))


def _prepare_tensor(
    sr: torch.Tensor, hr: torch.Tensor, shave: int, y_channel: bool, quantize: bool, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated float64 ``(N, C', H', W')`` tensors on the 0..255 scale, shaved."""
    for name, t in (("sr", sr), ("hr", hr)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim != 4:
            desc = f"{t.dtype} {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t)
            raise InputError(f"{what}: {name} must be a float (N, C, H, W) tensor, got {desc}")
    if sr.shape != hr.shape:
        raise InputError(f"{what}: shapes differ: sr {tuple(sr.shape)} vs hr {tuple(hr.shape)}")
    if isinstance(shave, bool) or not isinstance(shave, int) or shave < 0:
        raise InputError(f"{what}: shave must be a non-negative integer, got {shave!r}")
    if sr.shape[0] == 0 or sr.shape[1] == 0:
        raise InputError(f"{what}: empty batch of shape {tuple(sr.shape)}; give at least one image")
    h, w = sr.shape[-2:]
    if h <= 2 * shave or w <= 2 * shave:
        raise InputError(f"{what}: shave={shave} leaves nothing of a {h}x{w} image")
    out = []
    for t in (sr, hr):
        t = t.detach().to(torch.float64)
        if quantize:
            t = torch.round(t.clamp(0.0, 1.0) * _PEAK) / _PEAK
        if y_channel and t.shape[1] == 3:
            t = rgb_to_y(t)
        t = t * _PEAK
        if shave:
            t = t[..., shave:-shave, shave:-shave]
        out.append(t)
    return out[0], out[1]


def psnr_tensor(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    shave: int = 0,
    y_channel: bool = True,
    quantize: bool = True,
) -> torch.Tensor:
    """Per-image PSNR (dB) of float ``(N, C, H, W)`` tensors in [0, 1]; returns float64 ``(N,)``
    on the input device (``inf`` where identical).

    ``quantize`` clamps and rounds to 8-bit levels first, so the numbers match :func:`psnr` on
    the uint8 images. Luma is used when ``y_channel`` and C == 3.
    """
    a, b = _prepare_tensor(sr, hr, shave, y_channel, quantize, "psnr_tensor")
    mse = ((a - b) ** 2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(_PEAK * _PEAK / mse)


def ssim_tensor(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    shave: int = 0,
    y_channel: bool = True,
    quantize: bool = True,
) -> torch.Tensor:
    """Per-image mean SSIM of float ``(N, C, H, W)`` tensors in [0, 1]; float64 ``(N,)``.

    Same definition as :func:`ssim` (channels averaged when not on luma).
    """
    a, b = _prepare_tensor(sr, hr, shave, y_channel, quantize, "ssim_tensor")
    if min(a.shape[-2:]) < _WIN:
        raise InputError(f"ssim_tensor needs at least {_WIN}x{_WIN} pixels after shaving")
    n, c = a.shape[:2]
    g = torch.as_tensor(gaussian_window(), dtype=torch.float64, device=a.device)
    gv, gh = g.view(1, 1, _WIN, 1), g.view(1, 1, 1, _WIN)

    def filt(t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(n * c, 1, *t.shape[-2:])
        return torch.nn.functional.conv2d(torch.nn.functional.conv2d(t, gv), gh)

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a * mu_a
    var_b = filt(b * b) - mu_b * mu_b
    cov = filt(a * b) - mu_a * mu_b
    num = (2.0 * mu_a * mu_b + _C1) * (2.0 * cov + _C2)
    den = (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
    return (num / den).reshape(n, c, -1).mean(dim=2).mean(dim=1)
