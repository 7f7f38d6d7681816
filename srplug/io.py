"""Reading and writing image files with OpenCV, in RGB order, bit depth and alpha kept.

Files are read with ``cv2.IMREAD_UNCHANGED`` so 16-bit PNG/TIFF and alpha survive; colour
images come back RGB/RGBA (OpenCV's BGR order is undone). Writes go to a temporary file in
the target folder that is renamed into place, so a failure never leaves a partial file.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import cv2
import numpy as np

from srplug.atomic import atomic_open
from srplug.errors import InputError, SrplugError
from srplug.limits import check_pixels, get_max_pixels

__all__ = ["IMAGE_SUFFIXES", "is_image_file", "read_image", "write_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` has an image suffix srplug reads."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _header_pixels(path: Path) -> tuple[int, str] | None:
    """Pixel count and ``"W x H"`` from the file header without decoding the pixels, or None
    when Pillow cannot tell (a format it does not know, a malformed header)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: we check ourselves
            with Image.open(path) as img:
                width, height = img.size
    except Image.DecompressionBombError as exc:  # past Pillow's own (larger) limit
        found = re.search(r"\((\d+) pixels\)", str(exc))
        return (int(found.group(1)), "size from its header") if found else None
    except Exception:  # not Pillow's business to refuse: OpenCV decides below
        return None
    return int(height) * int(width), f"{width} x {height}"


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as ``HxW`` (gray) or ``HxWx3|4`` (RGB/RGBA), uint8 or uint16.

    An image with more pixels than :func:`srplug.limits.get_max_pixels` is refused with
    :class:`~srplug.limits.ImageTooLargeError`, from its header where Pillow can read it
    (before decoding), else right after decoding.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file {str(path)!r} does not exist")
    what = f"image file {str(path)!r}"
    if get_max_pixels() is not None and (header := _header_pixels(path)) is not None:
        check_pixels(1, header[0], what=f"{what} ({header[1]})")
    data = np.fromfile(path, dtype=np.uint8)  # also works for non-ASCII paths
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as exc:  # e.g. OpenCV's own pixel limit, or a malformed header
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.error"
        raise InputError(f"{str(path)!r} is not an image OpenCV can decode ({reason})") from exc
    if img is None:
        raise InputError(f"{str(path)!r} is not an image OpenCV can decode")
    check_pixels(img.shape[0], img.shape[1], what=f"{what} ({img.shape[1]} x {img.shape[0]})")
    if img.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{str(path)!r} holds {img.dtype} pixels; srplug reads 8 and 16 bit")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    elif img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


def write_image(path: str | os.PathLike[str], img: np.ndarray) -> Path:
    """Write an RGB/RGBA/gray uint8 or uint16 image atomically; returns the path.

    The format follows the suffix. JPEG/WebP cannot hold 16 bits or (JPEG) alpha: such an
    image is refused with a hint rather than silently reduced.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(
            f"cannot write {str(path)!r}: unknown image suffix; use one of "
            + ", ".join(IMAGE_SUFFIXES)
        )
    if not isinstance(img, np.ndarray) or img.dtype not in (np.uint8, np.uint16):
        what = f"{img.dtype} array" if isinstance(img, np.ndarray) else type(img).__name__
        raise InputError(
            f"cannot write a {what} to {str(path)!r}: give a uint8 or uint16 numpy image "
            "(convert floats in [0, 1] with (img * 255).round().astype(np.uint8))"
        )
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)) or not img.size:
        raise InputError(
            f"cannot write an image of shape {img.shape} to {str(path)!r}: give HxW (gray) or "
            "HxWxC with C = 1, 3 or 4, at least 1x1"
        )
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.dtype == np.uint16 and suffix not in (".png", ".tif", ".tiff", ".ppm", ".pgm"):
        raise InputError(f"{suffix} cannot hold 16-bit pixels; write .png or .tif instead")
    if img.ndim == 3 and img.shape[2] == 4 and suffix in (".jpg", ".jpeg", ".bmp", ".ppm"):
        raise InputError(f"{suffix} cannot hold an alpha channel; write .png instead")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    try:
        ok, encoded = cv2.imencode(suffix, img)
    except cv2.error as exc:  # e.g. a size the format cannot store
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.error"
        raise SrplugError(
            f"OpenCV could not encode an image of shape {img.shape} as {suffix} ({reason})"
        ) from exc
    if not ok:
        raise SrplugError(f"OpenCV could not encode an image of shape {img.shape} as {suffix}")
    try:
        with atomic_open(path) as handle:
            handle.write(encoded.tobytes())
    except OSError as exc:  # disk full, no permission, a file where a folder should be ...
        reason = exc.strerror or type(exc).__name__
        raise SrplugError(
            f"cannot write {str(path)!r}: {reason}; check that the folder is writable and the "
            "disk has space (nothing was left at that path)"
        ) from exc
    return path
