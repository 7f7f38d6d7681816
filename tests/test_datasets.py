"""Benchmark data set lookup, image reading and (HR, LR) pairs."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from srplug.datasets import BenchmarkDataset, read_image, resolve_dataset
from srplug.errors import DatasetError, InputError
from srplug.resize import imresize_uint8


def _write(path: Path, img: np.ndarray) -> None:
    assert cv2.imwrite(str(path), img)


@pytest.fixture
def tiny_set(tmp_path: Path) -> Path:
    root = tmp_path / "Tiny"
    root.mkdir()
    rng = np.random.default_rng(0)
    _write(root / "b_color.png", rng.integers(0, 256, (13, 10, 3), dtype=np.uint8))  # BGR
    _write(root / "a_gray.png", rng.integers(0, 256, (12, 12), dtype=np.uint8))
    _write(root / "c_bmp.BMP", rng.integers(0, 256, (9, 9, 3), dtype=np.uint8))
    (root / "notes.txt").write_text("not an image")
    return root


def test_resolve_existing_path(tiny_set: Path) -> None:
    assert resolve_dataset(str(tiny_set)) == tiny_set


def test_resolve_by_name_under_root(tiny_set: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tiny_set.parent.parent)
    monkeypatch.delenv("SRPLUG_DATA", raising=False)
    assert resolve_dataset("Tiny", tiny_set.parent) == tiny_set
    monkeypatch.setenv("SRPLUG_DATA", str(tiny_set.parent))
    assert resolve_dataset("Tiny") == tiny_set


def test_resolve_missing_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SRPLUG_DATA", raising=False)
    with pytest.raises(DatasetError, match=r"Set5.*--data.*SRPLUG_DATA") as info:
        resolve_dataset("Set5")
    assert "is not set" in str(info.value)
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "nowhere" / "Set5"))):
        resolve_dataset("Set5", tmp_path / "nowhere")


def test_items_sorted_modcropped_rgb(tiny_set: Path) -> None:
    ds = BenchmarkDataset(tiny_set, 3)
    assert len(ds) == 3 and ds.name == "Tiny" and "images=3" in repr(ds)
    assert [ds[i].name for i in range(3)] == ["a_gray", "b_color", "c_bmp"]
    gray, color = ds[0], ds[1]
    assert gray.hr.shape == (12, 12, 3) and gray.lr.shape == (4, 4, 3)
    assert (gray.hr[..., 0] == gray.hr[..., 1]).all() and (gray.hr[..., 1] == gray.hr[..., 2]).all()
    assert color.hr.shape == (12, 9, 3) and color.lr.shape == (4, 3, 3)
    assert color.hr.dtype == np.uint8 and color.lr.dtype == np.uint8
    bgr = cv2.imread(str(tiny_set / "b_color.png"))
    np.testing.assert_array_equal(color.hr, bgr[:12, :9, ::-1])
    np.testing.assert_array_equal(color.lr, imresize_uint8(color.hr, 1 / 3))


def test_read_image_alpha_and_16bit(tmp_path: Path) -> None:
    bgra = np.zeros((4, 5, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 10, 200, 7
    _write(tmp_path / "alpha.png", bgra)
    rgb = read_image(tmp_path / "alpha.png")
    assert rgb.shape == (4, 5, 3)
    assert (rgb[..., 0] == 200).all() and (rgb[..., 2] == 10).all()
    deep = np.full((3, 3, 3), 257 * 77 + 128, np.uint16)
    _write(tmp_path / "deep.png", deep)
    assert (read_image(tmp_path / "deep.png") == 77).all()


def test_unreadable_and_empty(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"broken\.png"):
        read_image(tmp_path / "broken.png")
    ds = BenchmarkDataset(tmp_path, 2)
    with pytest.raises(DatasetError, match="cannot read"):
        ds[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images"):
        BenchmarkDataset(empty, 2)
    with pytest.raises(InputError, match="positive integer"):
        BenchmarkDataset(tmp_path, 0)


@pytest.mark.data
def test_set5(data_root: Path) -> None:
    ds = BenchmarkDataset("Set5", 4, data_root=data_root)
    assert [ds[i].name for i in range(len(ds))] == ["baby", "bird", "butterfly", "head", "woman"]
    woman = ds[4]
    assert woman.hr.shape == (344, 228, 3) and woman.lr.shape == (86, 57, 3)
