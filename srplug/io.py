"""Reading and writing image files with OpenCV, in RGB order, bit depth and alpha kept.

Files are read with ``cv2.IMREAD_UNCHANGED`` so 16-bit PNG/TIFF and alpha survive; colour
images come back RGB/RGBA (OpenCV's BGR order is undone). Writes go to a temporary file in
the target folder that is renamed into place, so a failure never leaves a partial file.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from srplug.atomic import atomic_open
from srplug.errors import InputError, SrplugError

__all__ = ["IMAGE_SUFFIXES", "is_image_file", "read_image", "write_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` has an image suffix srplug reads."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as ``HxW`` (gray) or ``HxWx3|4`` (RGB/RGBA), uint8 or uint16."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file {str(path)!r} does not exist")
    data = np.fromfile(path, dtype=np.uint8)  # also works for non-ASCII paths
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{str(path)!r} is not an image OpenCV can decode")
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
    if img.dtype == np.uint16 and suffix not in (".png", ".tif", ".tiff", ".ppm", ".pgm"):
        raise InputError(f"{suffix} cannot hold 16-bit pixels; write .png or .tif instead")
    if img.ndim == 3 and img.shape[2] == 4 and suffix in (".jpg", ".jpeg", ".bmp", ".ppm"):
        raise InputError(f"{suffix} cannot hold an alpha channel; write .png instead")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(suffix, img)
    if not ok:
        raise SrplugError(f"OpenCV could not encode an image of shape {img.shape} as {suffix}")
    with atomic_open(path) as handle:
        handle.write(encoded.tobytes())
    return path
