"""The max-pixels guard: configurable, refuses oversized inputs before allocating them."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srplug import limits
from srplug.errors import InputError, SrplugError
from srplug.image import to_tensor
from srplug.io import read_image, write_image
from srplug.limits import ImageTooLargeError


@pytest.fixture(autouse=True)
def _fresh_limit(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(limits.MAX_PIXELS_ENV, raising=False)
    limits.reset_max_pixels()
    yield
    limits.reset_max_pixels()


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG file whose header claims ``width x height`` (a decompression bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    body = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


def test_default_env_and_setter_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limits.get_max_pixels() == limits.DEFAULT_MAX_PIXELS
    monkeypatch.setenv(limits.MAX_PIXELS_ENV, "1_000")
    assert limits.get_max_pixels() == 1000
    for off in ("0", "none", "OFF"):
        monkeypatch.setenv(limits.MAX_PIXELS_ENV, off)
        assert limits.get_max_pixels() is None
    assert limits.set_max_pixels(50) is None  # returns the previous effective limit
    assert limits.get_max_pixels() == 50  # the setter wins over the environment
    assert limits.set_max_pixels(None) == 50
    assert limits.get_max_pixels() is None
    limits.set_max_pixels(0)
    assert limits.get_max_pixels() is None


@pytest.mark.parametrize("raw", ["lots", "-5", "1e9"])
def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(limits.MAX_PIXELS_ENV, raw)
    with pytest.raises(InputError, match=limits.MAX_PIXELS_ENV):
        limits.get_max_pixels()


@pytest.mark.parametrize("bad", [-1, 2.5, True, "100"])
def test_bad_setter_value(bad: object) -> None:
    with pytest.raises(InputError, match="non-negative int"):
        limits.set_max_pixels(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((11, 10), np.uint8),
        np.zeros((11, 10, 3), np.float32),
        torch.zeros(3, 11, 10),
        torch.zeros(2, 1, 8, 8),  # a batch counts all its pixels: 128
        Image.new("RGB", (10, 11)),
    ],
    ids=["numpy-gray", "numpy-float", "torch", "torch-batch", "pil"],
)
def test_to_tensor_refuses_inputs_over_the_limit(img: object) -> None:
    limits.set_max_pixels(100)
    with pytest.raises(ImageTooLargeError) as info:
        to_tensor(img)
    message = str(info.value)
    assert "100" in message and "set_max_pixels" in message and limits.MAX_PIXELS_ENV in message
    assert isinstance(info.value, SrplugError) and isinstance(info.value, ValueError)
    limits.set_max_pixels(None)
    x, _ = to_tensor(img)
    assert x.shape[-2:] in ((11, 10), (8, 8))


def test_limit_is_inclusive() -> None:
    limits.set_max_pixels(110)
    x, _ = to_tensor(np.zeros((11, 10), np.uint8))
    assert x.shape == (1, 1, 11, 10)


def test_check_output_size_names_the_result() -> None:
    limits.set_max_pixels(1000)
    limits.check_output_size(15, 15, 2)  # 900 pixels: fine
    with pytest.raises(ImageTooLargeError, match=r"x4 result \(1 x 64 x 64 from 16 x 16\)"):
        limits.check_output_size(16, 16, 4)
    with pytest.raises(ImageTooLargeError):
        limits.check_output_size(10, 10, 2, batch=3)


def test_read_image_refuses_a_bomb_from_its_header(tmp_path: Path) -> None:
    bomb = png_declaring(tmp_path / "bomb.png", 100_000, 100_000)  # 10^10 pixels, ~100 bytes
    assert bomb.stat().st_size < 200
    with pytest.raises(ImageTooLargeError, match="100,000 x 100,000|10,000,000,000"):
        read_image(bomb)


def test_read_image_checks_decoded_size(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png", np.zeros((20, 30, 3), np.uint8))
    limits.set_max_pixels(599)
    with pytest.raises(ImageTooLargeError, match="a.png"):
        read_image(path)
    limits.set_max_pixels(600)
    assert read_image(path).shape == (20, 30, 3)


def test_read_image_unreadable_header_falls_back_to_decoding(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.pgm", np.zeros((20, 30), np.uint8))
    limits.set_max_pixels(100)
    with pytest.raises(ImageTooLargeError):
        read_image(path)


def test_bomb_with_the_limit_off_is_still_a_project_error(tmp_path: Path) -> None:
    """OpenCV's own pixel cap raised a raw ``cv2.error``; now an InputError says so."""
    bomb = png_declaring(tmp_path / "bomb.png", 100_000, 100_000)
    limits.set_max_pixels(None)
    with pytest.raises(InputError, match="not an image OpenCV can decode"):
        read_image(bomb)


def test_pillow_readable_header_is_checked_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = png_declaring(tmp_path / "big.png", 12_000, 12_000)  # below Pillow's own limit
    limits.set_max_pixels(1000)

    def no_decoding(*args: object) -> None:
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr("srplug.io.cv2.imdecode", no_decoding)
    with pytest.raises(ImageTooLargeError, match="12000 x 12000"):
        read_image(bomb)
