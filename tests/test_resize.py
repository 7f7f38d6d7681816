"""MATLAB-exact imresize: hand-computed cases, an independent loop reference, Set5_LR_bicubic."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from srplug.errors import InputError
from srplug.resize import Imresize, imresize, imresize_uint8, modcrop, resize_weights

SET5 = ("baby", "bird", "butterfly", "head", "woman")


def _keys(t: float) -> float:
    t = abs(t)
    if t <= 1:
        return 1.5 * t**3 - 2.5 * t**2 + 1
    if t <= 2:
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0


def loop_resize_1d(
    v: list[float], out_len: int, scale: float, antialias: bool = True
) -> list[float]:
    """MATLAB's imresize along one dimension, written out with plain loops (1-based)."""
    n = len(v)
    shrink = scale < 1 and antialias
    width = 4 / scale if shrink else 4
    out = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + j for j in range(math.ceil(width) + 2)]
        ws = [scale * _keys(scale * (u - i)) if shrink else _keys(u - i) for i in taps]
        total = sum(ws)
        acc = 0.0
        for i, w in zip(taps, ws, strict=True):
            k = (i - 1) % (2 * n)  # mirror sequence [1..n, n..1]
            src = k if k < n else 2 * n - 1 - k
            acc += w / total * v[src]
        out.append(acc)
    return out


def test_hand_computed_upscale_x2_first_sample() -> None:
    # u = 0.75 at x=1: weights 1.09375 on sample 1 and -0.09375 on sample 2 after mirroring.
    x = torch.tensor([[10.0, 42.0, 7.0, 3.0]], dtype=torch.float64)
    y = imresize(x, 2)
    assert y.shape == (2, 8)
    assert y[0, 0].item() == pytest.approx(35 / 32 * 10 - 3 / 32 * 42, abs=1e-12)
    assert torch.equal(y[0], y[1])  # a size-1 dimension stays constant


@pytest.mark.parametrize(
    ("n", "out_len", "scale", "antialias"),
    [
        (7, 14, 2.0, True),
        (5, 15, 3.0, True),
        (12, 4, 1 / 3, True),
        (10, 5, 0.5, True),
        (16, 4, 0.25, True),
        (16, 4, 0.25, False),
        (9, 6, 6 / 9, True),
        (6, 9, 9 / 6, True),
    ],
)
def test_matches_loop_reference(n: int, out_len: int, scale: float, antialias: bool) -> None:
    rng = np.random.default_rng(n * 31 + out_len)
    v = rng.uniform(0, 255, size=n).tolist()
    expected = torch.tensor(loop_resize_1d(v, out_len, scale, antialias), dtype=torch.float64)
    col = torch.tensor(v, dtype=torch.float64).view(n, 1)
    if math.isclose(out_len, n * scale):
        got_h = imresize(col, scale, antialias=antialias)[:, 0]
    else:
        got_h = imresize(col, size=(out_len, 1), antialias=antialias)[:, 0]
    got_w = imresize(col.T.contiguous(), size=(1, out_len), antialias=antialias)[0]
    torch.testing.assert_close(got_h, expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(got_w, expected, rtol=0, atol=1e-10)


def test_weights_rows_sum_to_one_and_antialias_widens() -> None:
    w = resize_weights(24, 8, 1 / 3)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    assert (np.abs(w) > 0).sum(axis=1).max() > 4  # widened kernel: more than 4 taps
    plain = resize_weights(24, 8, 1 / 3, antialias=False)
    assert (np.abs(plain) > 0).sum(axis=1).max() <= 4


@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3, 1 / 4])
def test_output_shapes(scale: float) -> None:
    x = torch.rand(2, 3, 24, 36)
    y = imresize(x, scale)
    assert y.shape == (2, 3, math.ceil(24 * scale - 1e-9), math.ceil(36 * scale - 1e-9))


def test_size_rounding_is_robust() -> None:
    assert imresize(torch.rand(255, 6), 1 / 3).shape == (85, 2)
    assert imresize(torch.rand(85, 7), 3.0).shape == (255, 21)
    assert imresize(torch.rand(10, 10), 0.55).shape == (6, 6)  # ceil(5.5)
    assert imresize(torch.rand(5, 7), size=(9, 4)).shape == (9, 4)


def test_batched_equals_per_image() -> None:
    x = torch.rand(2, 3, 17, 23, dtype=torch.float64)
    y = imresize(x, 1 / 3)
    for i in range(2):
        for c in range(3):
            torch.testing.assert_close(y[i, c], imresize(x[i, c], 1 / 3), rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [2.0, 1 / 4])
def test_float32_agrees_with_float64(scale: float) -> None:
    x = torch.rand(3, 20, 28, dtype=torch.float64)
    y64 = imresize(x, scale)
    y32 = imresize(x.float(), scale)
    assert y32.dtype == torch.float32 and y64.dtype == torch.float64
    torch.testing.assert_close(y32.double(), y64, rtol=0, atol=1e-5)
    y16 = imresize(x.to(torch.bfloat16), scale)
    assert y16.dtype == torch.bfloat16


@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3])
def test_constant_image_is_invariant(scale: float) -> None:
    x = torch.full((1, 3, 12, 18), 0.37, dtype=torch.float64)
    y = imresize(x, scale)
    torch.testing.assert_close(y, torch.full_like(y, 0.37), rtol=0, atol=1e-12)
    u = imresize_uint8(np.full((12, 18, 3), 201, np.uint8), scale)
    assert (u == 201).all()


def test_module_matches_function() -> None:
    x = torch.rand(1, 3, 16, 16)
    m = Imresize(1 / 2)
    torch.testing.assert_close(m(x), imresize(x, 1 / 2))
    assert "scale=0.5" in repr(m)
    assert Imresize(size=(5, 7))(x).shape == (1, 3, 5, 7)


def test_weight_matrices_are_cached() -> None:
    from srplug.resize import _weight_tensor

    _weight_tensor.cache_clear()
    imresize(torch.rand(2, 16, 16), 2)
    imresize(torch.rand(5, 16, 16), 2)
    info = _weight_tensor.cache_info()
    assert info.misses == 1 and info.hits == 3  # one matrix, reused for both dims twice


def test_uint8_rounds_half_away_and_saturates() -> None:
    img = np.zeros((8, 8), np.uint8)
    img[:, 4:] = 255  # a step edge overshoots below 0 and above 255 when upscaled
    out = imresize_uint8(img, 2)
    ref = imresize(torch.from_numpy(img).double(), 2)
    expected = np.floor(np.clip(ref.numpy(), 0, 255) + 0.5)
    assert out.dtype == np.uint8 and out.shape == (16, 16)
    assert ref.min() < 0 and ref.max() > 255
    np.testing.assert_array_equal(out, expected.astype(np.uint8))
    # x2 interior weights are -3/128, 29/128, 111/128, -9/128: a lone 64 gives exact halves.
    row = np.zeros((1, 8), np.uint8)
    row[0, 4] = 64
    exact = imresize(torch.from_numpy(row).double(), 2)[0].numpy()
    halves = np.isin(exact, [14.5, 55.5])
    assert halves.sum() == 4
    out_row = imresize_uint8(row, 2)[0]
    assert set(out_row[halves].tolist()) == {15, 56}  # not 14 (round half to even)
    assert out_row.min() == 0


def test_uint8_rounding_between_passes_follows_matlab_order() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)
    # size (6, 5): height scale 1/2 > width scale 1/4, so MATLAB resizes the width first.
    out = imresize_uint8(img, size=(6, 5))
    ww, wh = resize_weights(20, 5, 5 / 20), resize_weights(12, 6, 6 / 12)
    x = img.astype(np.float64)
    first = np.floor(np.clip(np.einsum("ow,hwc->hoc", ww, x), 0, 255) + 0.5)
    second = np.floor(np.clip(np.einsum("oh,hwc->owc", wh, first), 0, 255) + 0.5)
    np.testing.assert_array_equal(out, second.astype(np.uint8))
    plain = imresize_uint8(img, size=(6, 5), round_between_passes=False)
    exact = np.einsum("oh,hwc,pw->opc", wh, x, ww)
    np.testing.assert_array_equal(plain, np.floor(np.clip(exact, 0, 255) + 0.5).astype(np.uint8))
    gray = imresize_uint8(img[..., 0], size=(6, 5))
    np.testing.assert_array_equal(gray, out[..., 0])


def test_modcrop() -> None:
    img = np.arange(13 * 10 * 3, dtype=np.uint8).reshape(13, 10, 3)
    out = modcrop(img, 3)
    assert out.shape == (12, 9, 3)
    np.testing.assert_array_equal(out, img[:12, :9])
    assert modcrop(img[..., 0], 2).shape == (12, 10)
    with pytest.raises(InputError, match="positive integer"):
        modcrop(img, 0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: imresize(torch.zeros(4, 4, dtype=torch.uint8), 2), "floating-point"),
        (lambda: imresize(np.zeros((4, 4)), 2), "torch.Tensor"),
        (lambda: imresize(torch.rand(4, 4), 0), "positive"),
        (lambda: imresize(torch.rand(4, 4), -2.0), "positive"),
        (lambda: imresize(torch.rand(4, 4), float("nan")), "positive"),
        (lambda: imresize(torch.rand(4, 4)), "exactly one"),
        (lambda: imresize(torch.rand(4, 4), 2, size=(8, 8)), "exactly one"),
        (lambda: imresize(torch.rand(4, 4), size=(0, 8)), "positive integers"),
        (lambda: imresize(torch.rand(0, 4), 2), "empty"),
        (lambda: imresize(torch.rand(4), 2), r"\(\.\.\., H, W\)"),
        (lambda: imresize_uint8(np.zeros((4, 4), np.float32), 2), "uint8"),
        (lambda: imresize_uint8(np.zeros((4, 4, 3, 1), np.uint8), 2), "shape"),
        (lambda: Imresize(), "exactly one"),
    ],
)
def test_invalid_input(call: Callable[[], object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    x = torch.rand(2, 3, 30, 40, dtype=torch.float64)
    torch.testing.assert_close(imresize(x.cuda(), 1 / 3).cpu(), imresize(x, 1 / 3))


def _rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return np.ascontiguousarray(img[..., ::-1])


# Measured against Set5_LR_bicubic (IMDN's MATLAB-made LR): (max abs diff, differing fraction).
MEASURED = {
    (2, True): (0, 0.0),
    (3, True): (0, 0.0),
    (4, True): (0, 0.0),
    (2, False): (2, 0.1443),
    (3, False): (2, 0.1173),
    (4, False): (2, 0.1032),
}


@pytest.mark.data
@pytest.mark.parametrize("round_between", [True, False])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_matches_matlab_lr_set5(data_root: Path, scale: int, round_between: bool) -> None:
    worst, differing, total = 0, 0, 0
    for name in SET5:
        hr = modcrop(_rgb(data_root / "Set5" / f"{name}.png"), scale)
        ref = _rgb(data_root / "Set5_LR_bicubic" / f"x{scale}" / f"{name}x{scale}.png")
        lr = imresize_uint8(hr, 1 / scale, round_between_passes=round_between)
        assert lr.shape == ref.shape
        diff = np.abs(lr.astype(np.int16) - ref.astype(np.int16))
        worst = max(worst, int(diff.max()))
        differing += int((diff > 0).sum())
        total += diff.size
    frac = differing / total
    print(f"x{scale} round_between_passes={round_between}: max diff {worst}, differing {frac:.4%}")
    max_diff, max_frac = MEASURED[(scale, round_between)]
    assert worst <= max_diff
    assert frac <= max_frac


@pytest.mark.data
def test_default_is_the_matlab_variant(data_root: Path) -> None:
    hr = modcrop(_rgb(data_root / "Set5" / "bird.png"), 3)
    ref = _rgb(data_root / "Set5_LR_bicubic" / "x3" / "birdx3.png")
    np.testing.assert_array_equal(imresize_uint8(hr, 1 / 3), ref)
