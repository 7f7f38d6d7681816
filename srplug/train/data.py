"""Training pairs: random aligned (LR, HR) patches cut from folders of HR images.

Every HR image is read once, mod-cropped to the scale and shrunk with MATLAB bicubic
(:func:`~srplug.resize.imresize_uint8`); both are kept in memory as uint8. A sample is then a
random crop of the pair, flipped and rotated by multiples of 90 degrees alike. What sample
``v`` holds depends only on the seed and ``v``, so training is reproducible, resumable and
shardable: :class:`PatchStream` hands each process its share of one global, seeded sequence.

With a ``degradation`` (recipe key ``data.degradation``: a preset such as ``"real"`` or a
list of op tables, see :func:`srplug.adapters.kornia.build_degradation`), the LR patch is
made from the HR patch by that random blur / shrink / noise / JPEG chain instead, seeded by
``(seed, v)`` as well.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from srplug import io
from srplug.color import rgb_to_y
from srplug.datasets import read_image, resolve_dataset
from srplug.errors import DatasetError, InputError
from srplug.protocols import Channels
from srplug.resize import imresize_uint8, modcrop

__all__ = [
    "BENCHMARK_NAMES",
    "PatchParams",
    "PatchStream",
    "TrainPairs",
    "list_images",
    "resolve_train_folders",
]

#: Folder names of benchmark sets, refused as training data.
BENCHMARK_NAMES = frozenset(
    {"set5", "set14", "b100", "bsd100", "urban100", "manga109", "div2k_valid", "general100"}
)
_PERMUTATION_TAG = 0  # keeps the epoch-order, crop and degradation random streams apart
_CROP_TAG = 1
_DEGRADE_TAG = 2


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    return sorted((p for p in folder.iterdir() if p.is_file() and io.is_image_file(p)), key=str)


def resolve_train_folders(
    names: Sequence[str], data_root: str | os.PathLike[str] | None, exclude: Sequence[Path] = ()
) -> list[Path]:
    """The training folders, refusing benchmark sets and any folder in ``exclude``."""
    folders = [resolve_dataset(name, data_root) for name in names]
    banned = {p.resolve() for p in exclude}
    for folder in folders:
        if folder.name.lower() in BENCHMARK_NAMES or folder.resolve() in banned:
            raise DatasetError(
                f"training folder {folder} is a benchmark/validation set; benchmark images must "
                "never be trained on: remove it from data.train"
            )
    return folders


@dataclass(frozen=True)
class PatchParams:
    """Where and how sample ``v`` is cut: LR crop origin ``(top, left)`` of image ``image``,
    then a horizontal flip (``hflip``) and ``rot`` counter-clockwise quarter turns."""

    image: int
    top: int
    left: int
    hflip: bool
    rot: int


def augment(img: np.ndarray, hflip: bool, rot: int) -> np.ndarray:
    """``(H, W[, C])`` flipped left-right (if ``hflip``) then rotated ``rot`` quarter turns."""
    if hflip:
        img = img[:, ::-1]
    return np.ascontiguousarray(np.rot90(img, rot))


def draw_patch(
    seed: int, v: int, image: int, size: tuple[int, int], patch: int, *, flip: bool, rot90: bool
) -> PatchParams:
    """Sample ``v``'s crop of a ``patch`` square inside an image of ``size`` ``(H, W)`` (index
    ``image``) and its augmentation, drawn from a generator seeded by ``(seed, v)``."""
    rng = np.random.default_rng([seed, _CROP_TAG, v])
    top = int(rng.integers(0, size[0] - patch + 1))
    left = int(rng.integers(0, size[1] - patch + 1))
    hflip = bool(rng.integers(0, 2)) if flip else False
    rot = int(rng.integers(0, 4)) if rot90 else 0
    return PatchParams(image, top, left, hflip, rot)


def patch_tensor(img: np.ndarray, channels: Channels) -> torch.Tensor:
    """uint8 RGB ``(h, w, 3)`` -> float32 ``(C, h, w)`` in [0, 1] (luma for ``"y"``)."""
    t = torch.from_numpy(img).permute(2, 0, 1).float().div_(255.0)
    return rgb_to_y(t) if channels == "y" else t.contiguous()


def _luma(img: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` -> float32 luma ``(H, W)`` in [16/255, 235/255], computed
    exactly as :func:`patch_tensor` computes it for any patch of ``img``."""
    return patch_tensor(img, "y")[0].numpy()


def _plane_tensor(crop: np.ndarray, p: PatchParams) -> torch.Tensor:
    """A crop ``(h, w)`` of a cached luma plane, augmented by ``p``, as its own ``(1, h, w)``
    tensor (never a view of the cache)."""
    out = augment(crop, p.hflip, p.rot)
    if np.shares_memory(out, crop):
        out = out.copy()
    return torch.from_numpy(out)[None]


class TrainPairs(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Random aligned patch pairs from folders of HR images.

    Item ``v`` (any non-negative int; :class:`PatchStream` yields them) is a pair
    ``(lr, hr)`` of float32 tensors in [0, 1]: ``(C, p/s, p/s)`` and ``(C, p, p)`` with
    ``p = patch_size``, ``s = scale``, and C = 3 (RGB) or 1 (BT.601 Y of the RGB pixels,
    range [16/255, 235/255]) for ``channels="y"``. Image ``v % len(self)`` is used; the crop
    and augmentation come from a generator seeded with ``(seed, v)``. For ``channels="y"``
    without a degradation, ``y_planes`` holds each pair's float32 luma ``(hr (H, W), lr
    (H/s, W/s))``, computed once, and items are cropped from it (same values as converting
    the RGB patch of :meth:`patch_pair`).

    Args:
        folders: folders of HR images (gray images are replicated to RGB).
        scale: SR factor; HR is mod-cropped to it, LR is ``imresize_uint8(hr, 1/scale)``.
        patch_size: HR patch side, a multiple of ``scale``.
        channels: ``"rgb"`` or ``"y"``.
        flip, rot90: augment with left-right flips / quarter turns (8 variants with both).
        hr_scales: also use each HR image shrunk by these factors (MATLAB bicubic, uint8).
        seed: seeds every random choice.
        degradation: make LR from the augmented HR patch with this instead of MATLAB
            bicubic (``None`` / ``"none"``): a preset name or op tables (needs Kornia; see
            the module doc), or a callable ``(hr (1, 3, p, p) float in [0, 1],
            generator=torch.Generator) -> lr (1, 3, p/s, p/s)``.
    """

    def __init__(
        self,
        folders: Sequence[str | os.PathLike[str]],
        scale: int,
        patch_size: int,
        *,
        channels: Channels = "rgb",
        flip: bool = True,
        rot90: bool = True,
        hr_scales: Sequence[float] = (1.0,),
        seed: int = 0,
        progress: bool = False,
        degradation: str | Sequence[Mapping[str, Any]] | Callable[..., Any] | None = None,
    ) -> None:
        if patch_size % scale:
            raise InputError(f"patch_size {patch_size} is not a multiple of the scale {scale}")
        if channels not in ("rgb", "y"):
            raise InputError(f"channels must be 'rgb' or 'y', got {channels!r}")
        self.scale = scale
        self.patch_size = patch_size
        self.lr_patch = patch_size // scale
        self.channels: Channels = channels
        self.flip = flip
        self.rot90 = rot90
        self.seed = seed
        if degradation == "none":
            degradation = None
        if isinstance(degradation, (str, list, tuple)):
            from srplug.adapters.kornia import build_degradation

            degradation = build_degradation(degradation, scale)
        self.degradation = degradation
        files = [f for folder in folders for f in list_images(Path(folder))]
        if not files:
            raise DatasetError(f"no training images found in {', '.join(map(str, folders))}")
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self.skipped: list[str] = []
        bar = files
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(files, desc="caching LR/HR pairs", unit="img", leave=False)
        for path in bar:
            hr_full = read_image(path)
            for factor in hr_scales:
                self._add(path, hr_full, float(factor))
        if not self.pairs:
            raise DatasetError(
                f"every training image is smaller than the {patch_size}px patch; lower "
                "data.patch_size"
            )
        # Y models crop from float32 luma planes computed once: the conversion is per pixel,
        # so the patches are bit-identical to converting each RGB patch, without its cost.
        self.y_planes: list[tuple[np.ndarray, np.ndarray]] | None = None
        if channels == "y" and self.degradation is None:
            self.y_planes = [(_luma(hr), _luma(lr)) for hr, lr in self.pairs]

    def _add(self, path: Path, hr_full: np.ndarray, factor: float) -> None:
        hr = hr_full if factor == 1.0 else imresize_uint8(hr_full, factor)
        h, w = hr.shape[:2]
        if min(h, w) < self.patch_size:
            self.skipped.append(f"{path.name}@{factor:g}")
            return
        hr = modcrop(hr, self.scale)
        lr = imresize_uint8(hr, 1.0 / self.scale)
        self.pairs.append((hr, lr))

    def __len__(self) -> int:
        return len(self.pairs)

    def params(self, v: int) -> PatchParams:
        """The crop and augmentation of sample ``v`` (deterministic given the seed)."""
        image = v % len(self.pairs)
        lr = self.pairs[image][1]
        return draw_patch(
            self.seed, v, image, lr.shape[:2], self.lr_patch, flip=self.flip, rot90=self.rot90
        )

    def crop(self, p: PatchParams, hr: np.ndarray, lr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The aligned, not yet augmented crops ``(lr (n, n, ...), hr (n*s, n*s, ...))`` of
        ``p`` from an image pair ``hr``/``lr`` (RGB or luma), as views."""
        s, n = self.scale, self.lr_patch
        lr_patch = lr[p.top : p.top + n, p.left : p.left + n]
        hr_patch = hr[p.top * s : (p.top + n) * s, p.left * s : (p.left + n) * s]
        return lr_patch, hr_patch

    def patch_pair(self, p: PatchParams) -> tuple[np.ndarray, np.ndarray]:
        """uint8 RGB patches ``(lr (p/s, p/s, 3), hr (p, p, 3))`` for ``p``, augmented."""
        lr_patch, hr_patch = self.crop(p, *self.pairs[p.image])
        return augment(lr_patch, p.hflip, p.rot), augment(hr_patch, p.hflip, p.rot)

    def __getitem__(self, v: int) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.params(int(v))
        if self.y_planes is not None:
            lr_crop, hr_crop = self.crop(p, *self.y_planes[p.image])
            return _plane_tensor(lr_crop, p), _plane_tensor(hr_crop, p)
        lr, hr = self.patch_pair(p)
        if self.degradation is None:
            return patch_tensor(lr, self.channels), patch_tensor(hr, self.channels)
        hr_rgb = torch.from_numpy(hr).permute(2, 0, 1).float().div_(255.0)
        seed = int(np.random.default_rng([self.seed, _DEGRADE_TAG, int(v)]).integers(2**62))
        with torch.no_grad():
            lr_rgb = self.degradation(hr_rgb[None], generator=torch.Generator().manual_seed(seed))
        lr_rgb = lr_rgb[0].float().clamp(0.0, 1.0)
        if self.channels == "y":
            return rgb_to_y(lr_rgb), rgb_to_y(hr_rgb)
        return lr_rgb.contiguous(), hr_rgb.contiguous()


class PatchStream(Sampler[int]):
    """This process's endless share of one seeded global sample sequence.

    The global sequence visits the ``num_items`` images in a fresh seeded order each epoch
    (sample ``v = epoch * num_items + image``). Process ``rank`` of ``world_size`` takes
    every ``world_size``-th entry, so a step's ``world_size`` local batches of ``b`` together
    hold global entries ``[step * b * world_size, (step + 1) * b * world_size)``: the same
    samples as one process with the whole batch. ``start`` is this process's position, i.e.
    samples it already consumed (``steps_done * b``), which makes resuming exact.
    """

    def __init__(
        self, num_items: int, *, seed: int, rank: int = 0, world_size: int = 1, start: int = 0
    ) -> None:
        if num_items < 1:
            raise InputError("PatchStream needs at least one item")
        if not 0 <= rank < world_size:
            raise InputError(f"rank {rank} is outside 0..{world_size - 1}")
        self.num_items = num_items
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start = start

    def global_index(self, position: int) -> int:
        """Sample id ``v`` at this process's ``position``."""
        q = position * self.world_size + self.rank
        epoch, j = divmod(q, self.num_items)
        return epoch * self.num_items + int(self._order(epoch)[j])

    def _order(self, epoch: int) -> np.ndarray:
        if getattr(self, "_cached_epoch", None) != epoch:
            rng = np.random.default_rng([self.seed, _PERMUTATION_TAG, epoch])
            self._cached_order = rng.permutation(self.num_items)
            self._cached_epoch = epoch
        return self._cached_order

    def __iter__(self) -> Iterator[int]:
        position = self.start
        while True:
            yield self.global_index(position)
            position += 1
