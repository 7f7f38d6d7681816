"""Run an upscaler over a benchmark data set and score it the way SR papers do.

PSNR and SSIM always (on BT.601 Y, border shaved by the scale); LPIPS-VGG optionally
(:class:`srplug.perceptual.LPIPS`, on RGB with the same border shaved; lower is better).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from srplug.datasets import BenchmarkDataset
from srplug.errors import InputError
from srplug.metrics import psnr, ssim

if TYPE_CHECKING:
    from srplug.perceptual import LPIPS

__all__ = ["DatasetResult", "evaluate", "lpips_distance"]


@dataclass
class DatasetResult:
    """Scores of one upscaler on one data set at one scale (PSNR in dB and SSIM on Y;
    LPIPS-VGG on RGB when it was asked for, else None)."""

    dataset: str
    scale: int
    psnr: float
    ssim: float
    images: int
    per_image: list[tuple[str, float, float]] = field(default_factory=list)
    lpips: float | None = None
    per_image_lpips: list[tuple[str, float]] = field(default_factory=list)

    def __str__(self) -> str:
        extra = "" if self.lpips is None else f", LPIPS {self.lpips:.4f}"
        return (
            f"{self.dataset} x{self.scale}: PSNR {self.psnr:.2f} dB, SSIM {self.ssim:.4f}"
            f"{extra} ({self.images} images)"
        )


def lpips_distance(metric: LPIPS, sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> float:
    """LPIPS between two uint8 RGB ``(H, W, 3)`` images with ``shave`` border pixels cut,
    computed on the metric's device in float32."""
    import torch

    if shave:
        sr, hr = sr[shave:-shave, shave:-shave], hr[shave:-shave, shave:-shave]
    device = next(metric.parameters()).device

    def tensor(img: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(img)).to(device)
        return t.permute(2, 0, 1)[None].float().div_(255.0)

    with torch.no_grad():
        return float(metric(tensor(sr), tensor(hr)).item())


def evaluate(
    upscale: Callable[[np.ndarray], np.ndarray],
    dataset: BenchmarkDataset,
    *,
    progress: bool = False,
    lpips: LPIPS | None = None,
) -> DatasetResult:
    """Score ``upscale`` on ``dataset``: PSNR and SSIM on Y, ``shave = scale``, averaged;
    with ``lpips`` (an :class:`~srplug.perceptual.LPIPS`) also LPIPS on RGB, same shave.

    ``upscale`` takes an LR uint8 RGB ``(h, w, 3)`` array and must return uint8
    ``(h*scale, w*scale, 3)``; anything else raises :class:`InputError` (an ``SrplugError``).
    """
    s = dataset.scale
    indices: Iterable[int] = range(len(dataset))
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc=f"{dataset.name} x{s}", unit="img")
    per_image: list[tuple[str, float, float]] = []
    per_lpips: list[tuple[str, float]] = []
    for i in indices:
        item = dataset[i]
        sr = upscale(item.lr)
        if not isinstance(sr, np.ndarray):
            raise InputError(
                f"upscaler returned {type(sr).__name__} for {item.name!r}; expected a numpy array"
            )
        if sr.dtype != np.uint8 or sr.shape != item.hr.shape:
            raise InputError(
                f"upscaler returned {sr.dtype} {sr.shape} for {item.name!r} (LR {item.lr.shape}); "
                f"expected uint8 {item.hr.shape} (LR size x{s}), clamped and rounded"
            )
        per_image.append((item.name, psnr(sr, item.hr, shave=s), ssim(sr, item.hr, shave=s)))
        if lpips is not None:
            per_lpips.append((item.name, lpips_distance(lpips, sr, item.hr, shave=s)))
    return DatasetResult(
        dataset=dataset.name,
        scale=s,
        psnr=float(np.mean([p for _, p, _ in per_image])),
        ssim=float(np.mean([q for _, _, q in per_image])),
        images=len(per_image),
        per_image=per_image,
        lpips=float(np.mean([d for _, d in per_lpips])) if lpips is not None else None,
        per_image_lpips=per_lpips,
    )
