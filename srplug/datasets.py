"""Benchmark data sets (Set5, Set14, B100, ...): HR images and their MATLAB-bicubic LR inputs.

A benchmark folder is a flat folder of HR images. Each item is the HR image mod-cropped to a
multiple of the scale (grayscale replicated to RGB) and its LR input
``imresize_uint8(hr, 1/scale)``, as the evaluation protocol in SPEC.md prescribes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srplug import io
from srplug.errors import DatasetError, InputError
from srplug.resize import imresize_uint8, modcrop

__all__ = ["BenchmarkDataset", "BenchmarkItem", "data_root_or_env", "read_image", "resolve_dataset"]

DATA_ENV = "SRPLUG_DATA"


def data_root_or_env(data_root: str | os.PathLike[str] | None) -> str | os.PathLike[str] | None:
    """``data_root`` if given, else ``$SRPLUG_DATA`` when set and not empty, else ``None``."""
    return data_root if data_root is not None else os.environ.get(DATA_ENV) or None


def resolve_dataset(
    name_or_path: str | os.PathLike[str], data_root: str | Path | None = None
) -> Path:
    """The folder of a data set: ``name_or_path`` itself if it exists, else
    ``<data_root>/<name>`` with ``data_root`` from the argument or ``$SRPLUG_DATA``.

    Raises DatasetError naming every place tried.
    """
    given = Path(name_or_path).expanduser()
    if given.is_dir():
        return given
    tried = [str(given)]
    root = data_root_or_env(data_root)
    if root is not None:
        candidate = Path(root).expanduser() / str(name_or_path)
        if candidate.is_dir():
            return candidate
        tried.append(str(candidate))
    else:
        tried.append(f"<data root>/{name_or_path} (no data root: {DATA_ENV} is not set)")
    raise DatasetError(
        f"data set {str(name_or_path)!r} not found; tried: {', '.join(tried)}. "
        f"Pass the folder or a data root (--data DIR), or set {DATA_ENV}=DIR"
    )


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB ``(H, W, 3)``.

    Grayscale is replicated to three channels, alpha dropped, 16-bit scaled to 8-bit
    (``round(v / 257)``). Raises DatasetError for unreadable or unsupported files.
    """
    try:
        img = io.read_image(path)
    except InputError as exc:
        raise DatasetError(f"cannot read benchmark image: {exc}") from exc
    if img.dtype == np.uint16:
        img = np.floor(img.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[..., None], 3, axis=2))
    return np.ascontiguousarray(img[..., :3])  # alpha dropped


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark image: ``hr`` uint8 RGB ``(s*h, s*w, 3)``, ``lr`` uint8 RGB ``(h, w, 3)``."""

    name: str
    hr: np.ndarray
    lr: np.ndarray


class BenchmarkDataset:
    """A folder of HR images, sorted by file name, served as (HR, bicubic LR) pairs.

    Args:
        name_or_path: folder, or a set name found under ``data_root`` / ``$SRPLUG_DATA``.
        scale: integer SR factor; HR is mod-cropped to it and LR is ``1/scale`` MATLAB bicubic.
        data_root: folder holding named sets.
    """

    def __init__(
        self,
        name_or_path: str | os.PathLike[str],
        scale: int,
        *,
        data_root: str | Path | None = None,
    ) -> None:
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
            raise InputError(f"scale must be a positive integer, got {scale!r}")
        self.root = resolve_dataset(name_or_path, data_root)
        self.name = self.root.name
        self.scale = int(scale)
        self.files = sorted(
            (p for p in self.root.iterdir() if p.is_file() and io.is_image_file(p)),
            key=lambda p: p.name,
        )
        if not self.files:
            raise DatasetError(
                f"no images ({', '.join(io.IMAGE_SUFFIXES)}) in data set folder {self.root}"
            )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> BenchmarkItem:
        path = self.files[index]
        hr = modcrop(read_image(path), self.scale)
        lr = imresize_uint8(hr, 1.0 / self.scale)
        return BenchmarkItem(name=path.stem, hr=hr, lr=lr)

    def __repr__(self) -> str:
        return f"BenchmarkDataset({self.name!r}, scale={self.scale}, images={len(self)})"
