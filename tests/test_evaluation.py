"""evaluate(): bicubic must reproduce the published benchmark rows (SPEC, protocol step 8)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from srplug.datasets import BenchmarkDataset
from srplug.errors import InputError, SrplugError
from srplug.evaluation import DatasetResult, evaluate
from srplug.resize import imresize_uint8

# Published bicubic rows: (PSNR dB, SSIM or None) per (set, scale).
PUBLISHED = {
    ("Set5", 2): (33.66, 0.9299),
    ("Set5", 3): (30.39, 0.8682),
    ("Set5", 4): (28.42, 0.8104),
    ("B100", 2): (29.56, None),
    ("B100", 3): (27.21, None),
    ("B100", 4): (25.96, None),
}


def _bicubic(scale: int):
    return lambda lr: imresize_uint8(lr, scale)


@pytest.mark.data
@pytest.mark.parametrize(("name", "scale"), list(PUBLISHED))
def test_bicubic_reproduces_published(data_root: Path, name: str, scale: int) -> None:
    start = time.perf_counter()
    result = evaluate(_bicubic(scale), BenchmarkDataset(name, scale, data_root=data_root))
    print(f"{result} in {time.perf_counter() - start:.1f}s")
    want_psnr, want_ssim = PUBLISHED[(name, scale)]
    assert result.dataset == name and result.scale == scale
    assert result.images == len(result.per_image) == {"Set5": 5, "B100": 100}[name]
    assert result.psnr == pytest.approx(want_psnr, abs=0.03)
    if want_ssim is not None:
        assert result.ssim == pytest.approx(want_ssim, abs=0.002)
    assert result.psnr == pytest.approx(np.mean([p for _, p, _ in result.per_image]))


@pytest.fixture
def tiny(tmp_path: Path) -> BenchmarkDataset:
    rng = np.random.default_rng(0)
    for i in range(2):
        assert cv2.imwrite(
            str(tmp_path / f"img{i}.png"), rng.integers(0, 256, (30, 33, 3), np.uint8)
        )
    return BenchmarkDataset(tmp_path, 2)


def test_oracle_upscaler_is_perfect(tiny: BenchmarkDataset) -> None:
    hr = {tiny[i].lr.tobytes(): tiny[i].hr for i in range(len(tiny))}
    result = evaluate(lambda lr: hr[lr.tobytes()], tiny, progress=True)
    assert isinstance(result, DatasetResult)
    assert result.images == 2 and [n for n, _, _ in result.per_image] == ["img0", "img1"]
    assert result.psnr == math.inf and result.ssim == pytest.approx(1.0)
    assert "x2" in str(result)


@pytest.mark.parametrize(
    ("upscale", "match"),
    [
        (lambda lr: lr, r"expected uint8 \(30, 32, 3\)"),
        (lambda lr: imresize_uint8(lr, 2).astype(np.float32), "float32"),
        (lambda lr: imresize_uint8(lr, 2).tolist(), "numpy array"),
    ],
)
def test_bad_upscaler_output(tiny: BenchmarkDataset, upscale, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        evaluate(upscale, tiny)
    assert isinstance(info.value, SrplugError)
