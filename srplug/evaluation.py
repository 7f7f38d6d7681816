"""Run an upscaler over a benchmark data set and score it the way SR papers do."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from srplug.datasets import BenchmarkDataset
from srplug.errors import InputError
from srplug.metrics import psnr, ssim

__all__ = ["DatasetResult", "evaluate"]


@dataclass
class DatasetResult:
    """Scores of one upscaler on one data set at one scale (PSNR in dB and SSIM on Y)."""

    dataset: str
    scale: int
    psnr: float
    ssim: float
    images: int
    per_image: list[tuple[str, float, float]] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.dataset} x{self.scale}: PSNR {self.psnr:.2f} dB, SSIM {self.ssim:.4f} "
            f"({self.images} images)"
        )


def evaluate(
    upscale: Callable[[np.ndarray], np.ndarray],
    dataset: BenchmarkDataset,
    *,
    progress: bool = False,
) -> DatasetResult:
    """Score ``upscale`` on ``dataset``: PSNR and SSIM on Y, ``shave = scale``, averaged.

    ``upscale`` takes an LR uint8 RGB ``(h, w, 3)`` array and must return uint8
    ``(h*scale, w*scale, 3)``; anything else raises :class:`InputError` (an ``SrplugError``).
    """
    s = dataset.scale
    indices: Iterable[int] = range(len(dataset))
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc=f"{dataset.name} x{s}", unit="img")
    per_image: list[tuple[str, float, float]] = []
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
    return DatasetResult(
        dataset=dataset.name,
        scale=s,
        psnr=float(np.mean([p for _, p, _ in per_image])),
        ssim=float(np.mean([q for _, _, q in per_image])),
        images=len(per_image),
        per_image=per_image,
    )
