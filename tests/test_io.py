"""Image files: RGB order, bit depth and alpha survive a write/read round trip."""

from __future__ import annotations

import numpy as np
import pytest

from srplug.errors import InputError
from srplug.io import read_image, write_image


@pytest.mark.parametrize(
    "shape,dtype",
    [
        ((5, 4), np.uint8),
        ((5, 4), np.uint16),
        ((5, 4, 3), np.uint8),
        ((5, 4, 3), np.uint16),
        ((5, 4, 4), np.uint8),
        ((5, 4, 4), np.uint16),
    ],
)
def test_png_roundtrip(tmp_path, shape, dtype):
    rng = np.random.default_rng(1)
    img = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    path = write_image(tmp_path / "x.png", img)
    back = read_image(path)
    assert back.dtype == dtype and back.shape == shape
    assert (back == img).all()


def test_rgb_order_is_kept(tmp_path):
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0] = 255  # pure red
    import cv2

    write_image(tmp_path / "red.png", img)
    bgr = cv2.imread(str(tmp_path / "red.png"))
    assert (bgr[..., 2] == 255).all() and (bgr[..., 0] == 0).all()
    assert (read_image(tmp_path / "red.png") == img).all()


def test_read_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot decode|not an image"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError):
        read_image(tmp_path / "empty.png")


def test_write_refuses_and_leaves_nothing(tmp_path):
    with pytest.raises(InputError, match="unknown image suffix"):
        write_image(tmp_path / "x.xyz", np.zeros((2, 2), np.uint8))
    with pytest.raises(InputError, match="16-bit"):
        write_image(tmp_path / "x.jpg", np.zeros((2, 2), np.uint16))
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_and_readable(tmp_path):
    path = write_image(tmp_path / "deep" / "dir" / "x.png", np.zeros((3, 3, 3), np.uint8))
    assert path.exists() and path.stat().st_mode & 0o044  # not left at mkstemp's 0600
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]


@pytest.mark.parametrize(
    "img,match",
    [
        (np.zeros((3, 3), np.float32), "uint8 or uint16"),
        (np.zeros((3, 3, 2), np.uint8), "shape"),
        (np.zeros((0, 3), np.uint8), "shape"),
        (np.zeros((2, 2, 2, 2), np.uint8), "shape"),
        ([[0, 1]], "list"),
    ],
)
def test_write_refuses_what_it_cannot_store(tmp_path, img, match):
    with pytest.raises(InputError, match=match):
        write_image(tmp_path / "x.png", img)
    assert list(tmp_path.iterdir()) == []


def test_write_single_channel_is_gray(tmp_path):
    img = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    back = read_image(write_image(tmp_path / "g.png", img))
    assert back.shape == (3, 4) and (back == img[:, :, 0]).all()


def test_os_errors_become_srplug_errors_and_leave_nothing(tmp_path, monkeypatch):
    import errno

    from srplug import atomic
    from srplug.errors import SrplugError

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(SrplugError, match="No space left on device"):
        write_image(tmp_path / "x.png", np.zeros((2, 2), np.uint8))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    (tmp_path / "file").write_text("")
    with pytest.raises(SrplugError, match="cannot write"):
        write_image(tmp_path / "file" / "x.png", np.zeros((2, 2), np.uint8))


def test_undecodable_header_is_an_input_error(tmp_path):
    """A PNG header declaring 10^10 pixels made OpenCV raise a raw cv2.error."""
    import struct
    import zlib

    from srplug import limits

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)
    limits.set_max_pixels(None)
    try:
        with pytest.raises(InputError, match="OpenCV"):
            read_image(tmp_path / "bomb.png")
    finally:
        limits.reset_max_pixels()
