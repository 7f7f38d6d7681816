"""LR/HR training pairs from torchvision-style datasets (``srplug.adapters.torchvision``).

:class:`SRPairs` wraps any map-style dataset whose items are images (PIL, numpy ``HxW[xC]``,
torch ``(C, H, W)``), ``(image, target, ...)`` tuples (``ImageFolder``, CIFAR ...) or dicts
with an ``"image"`` key, and yields aligned ``(lr, hr)`` float tensors: a random HR patch,
its LR made with MATLAB bicubic (or a :class:`~srplug.adapters.kornia.Degradation`), flipped
and rotated alike. The transforms it is built from work on their own in
``torchvision.transforms.Compose`` (or any chain of callables)::

    Compose([ToImageTensor(), RandomPatch(96, scale=2), ToLRHR(2), RandomPairedFlipRotate()])

This module never imports torchvision: it works the same with or without it.
:class:`ImageFiles` reads a folder of images without torchvision.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from srplug.color import rgb_to_y
from srplug.errors import DatasetError, InputError
from srplug.image import to_tensor
from srplug.protocols import Channels
from srplug.resize import imresize

__all__ = [
    "IMAGE_KEYS",
    "ImageFiles",
    "PairedToY",
    "RandomPairedCrop",
    "RandomPairedFlipRotate",
    "RandomPatch",
    "SRPairs",
    "ToImageTensor",
    "ToLRHR",
    "bicubic_lr",
    "extract_image",
    "to_image_tensor",
]

IMAGE_KEYS = ("image", "img", "input", "hr")
"""Keys searched, in order, for the image of a dict item."""

Pair = tuple[torch.Tensor, torch.Tensor]


def to_image_tensor(img: Any) -> torch.Tensor:
    """An image as a float32 RGB ``(3, H, W)`` tensor in [0, 1].

    Takes a PIL image (any mode srplug reads), a numpy ``HxW`` / ``HxWxC`` array (RGB order;
    uint8, uint16 or float in [0, 1]) or a torch ``(C, H, W)`` tensor (uint8, or float in
    [0, 1]). Gray is replicated to three channels; an alpha channel is dropped; float values
    outside [0, 1] are clamped (as the LR made from it is).
    """
    x, _ = to_tensor(img)
    if x.shape[0] != 1:
        raise InputError(f"expected one image, got a batch of {x.shape[0]}")
    x = x[0]
    if x.shape[0] in (1, 2):
        x = x[:1].expand(3, -1, -1)
    return x[:3].clamp(0.0, 1.0).contiguous()


def extract_image(item: Any, index: int = 0) -> tuple[Any, Any]:
    """``(image, target)`` of a dataset item: ``item[index]`` of a tuple/list (target: the
    rest, a single element unwrapped, ``None`` if nothing is left), the first of
    :data:`IMAGE_KEYS` of a dict (target: the other entries), else the item itself."""
    if isinstance(item, (tuple, list)):
        if not -len(item) <= index < len(item):
            raise InputError(f"dataset item has {len(item)} entries, no image at index {index}")
        rest = [v for i, v in enumerate(item) if i != index % len(item)]
        return item[index], (rest[0] if len(rest) == 1 else (tuple(rest) or None))
    if isinstance(item, Mapping):
        key = next((k for k in IMAGE_KEYS if k in item), None)
        if key is None:
            raise InputError(
                f"dataset item is a dict without an image key ({', '.join(IMAGE_KEYS)}); "
                f"its keys are {sorted(map(str, item))}"
            )
        return item[key], ({k: v for k, v in item.items() if k != key} or None)
    return item, None


def bicubic_lr(hr: torch.Tensor, scale: int, *, quantize: bool = True) -> torch.Tensor:
    """MATLAB-bicubic LR ``(C, H/s, W/s)`` of ``hr`` ``(C, H, W)`` (H, W multiples of
    ``scale``), clamped to [0, 1] and rounded to 8-bit levels when ``quantize``."""
    lr = imresize(hr, 1.0 / _check_scale(scale)).clamp(0.0, 1.0)
    return torch.round(lr * 255.0) / 255.0 if quantize else lr


def _randint(high: int, generator: torch.Generator | None) -> int:
    """Uniform int in ``[0, high)``."""
    return int(torch.randint(high, (1,), generator=generator))


def _takes_generator(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` accepts a ``generator`` keyword."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "generator" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _check_scale(scale: Any) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise InputError(f"scale must be a positive integer, got {scale!r}")
    return scale


def _check_pair(sample: Any, what: str) -> Pair:
    if (
        not isinstance(sample, (tuple, list))
        or len(sample) != 2
        or not all(isinstance(t, torch.Tensor) and t.ndim == 3 for t in sample)
    ):
        raise InputError(f"{what} expects an (lr, hr) pair of (C, H, W) tensors (see ToLRHR)")
    return sample[0], sample[1]


# -------------------------------------------------------------------------------- transforms


class ToImageTensor:
    """Transform: any image -> float32 RGB ``(3, H, W)`` in [0, 1] (:func:`to_image_tensor`)."""

    def __call__(self, img: Any) -> torch.Tensor:
        return to_image_tensor(img)

    def __repr__(self) -> str:
        return "ToImageTensor()"


class RandomPatch:
    """Transform: a random ``patch_size`` square of a ``(C, H, W)`` HR tensor, with its
    corner on a multiple of ``scale`` (so LR and HR stay aligned after shrinking)."""

    def __init__(self, patch_size: int, scale: int = 1) -> None:
        self.scale = _check_scale(scale)
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
            raise InputError(f"patch_size must be a positive integer, got {patch_size!r}")
        if patch_size % self.scale:
            raise InputError(f"patch_size {patch_size} is not a multiple of the scale {scale}")
        self.patch_size = patch_size

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        p, s = self.patch_size, self.scale
        h, w = img.shape[-2:]
        if h < p or w < p:
            raise InputError(
                f"image of {w}x{h} pixels is smaller than the {p}px patch; lower patch_size"
            )
        top = _randint((h - p) // s + 1, generator) * s
        left = _randint((w - p) // s + 1, generator) * s
        return img[..., top : top + p, left : left + p]

    def __repr__(self) -> str:
        return f"RandomPatch(patch_size={self.patch_size}, scale={self.scale})"


class ToLRHR:
    """Transform: HR ``(C, H, W)`` -> ``(lr, hr)``: HR cropped to multiples of ``scale``, LR
    by ``degradation`` (a :class:`~srplug.adapters.kornia.Degradation`, a preset name such as
    ``"real"``, or any callable ``(B, C, H, W) [, generator] -> LR``) or, by default, MATLAB
    bicubic rounded to 8-bit levels (:func:`bicubic_lr`)."""

    def __init__(self, scale: int, degradation: Any = None) -> None:
        self.scale = _check_scale(scale)
        if isinstance(degradation, (str, list, tuple)):
            from srplug.adapters.kornia import build_degradation

            degradation = build_degradation(degradation, self.scale)
        if degradation is not None and not callable(degradation):
            raise InputError(f"degradation must be callable or a preset name, not {degradation!r}")
        self.degradation: Callable[..., torch.Tensor] | None = degradation
        self._takes_generator = degradation is not None and _takes_generator(degradation)

    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> Pair:
        if not isinstance(hr, torch.Tensor) or hr.ndim != 3:
            raise InputError("ToLRHR expects a (C, H, W) tensor; put ToImageTensor() first")
        s = self.scale
        h, w = hr.shape[-2] - hr.shape[-2] % s, hr.shape[-1] - hr.shape[-1] % s
        if h == 0 or w == 0:
            raise InputError(f"image of {hr.shape[-1]}x{hr.shape[-2]} is smaller than x{s}")
        hr = hr[:, :h, :w].float()
        if self.degradation is None:
            return bicubic_lr(hr, s), hr
        if self._takes_generator:
            lr = self.degradation(hr[None], generator=generator)[0]
        else:
            lr = self.degradation(hr[None])[0]
        if tuple(lr.shape[-2:]) != (h // s, w // s):
            raise InputError(
                f"the degradation turned {w}x{h} into {lr.shape[-1]}x{lr.shape[-2]}, not "
                f"{w // s}x{h // s} (x{s})"
            )
        return lr, hr

    def __repr__(self) -> str:
        return f"ToLRHR(scale={self.scale}, degradation={self.degradation!r})"


class RandomPairedCrop:
    """Transform: aligned random crops of an ``(lr, hr)`` pair: an LR square of
    ``patch_size // scale`` and the HR square of ``patch_size`` above it."""

    def __init__(self, patch_size: int, scale: int) -> None:
        self._patch = RandomPatch(patch_size, scale)
        self.patch_size, self.scale = patch_size, scale

    def __call__(self, pair: Pair, generator: torch.Generator | None = None) -> Pair:
        lr, hr = _check_pair(pair, "RandomPairedCrop")
        s, n = self.scale, self.patch_size // self.scale
        if tuple(hr.shape[-2:]) != (lr.shape[-2] * s, lr.shape[-1] * s):
            raise InputError(f"HR {tuple(hr.shape[-2:])} is not x{s} of LR {tuple(lr.shape[-2:])}")
        if lr.shape[-2] < n or lr.shape[-1] < n:
            raise InputError(f"LR image {tuple(lr.shape[-2:])} is smaller than the {n}px patch")
        top = _randint(lr.shape[-2] - n + 1, generator)
        left = _randint(lr.shape[-1] - n + 1, generator)
        return (
            lr[..., top : top + n, left : left + n],
            hr[..., top * s : (top + n) * s, left * s : (left + n) * s],
        )

    def __repr__(self) -> str:
        return f"RandomPairedCrop(patch_size={self.patch_size}, scale={self.scale})"


class RandomPairedFlipRotate:
    """Transform: the same random left-right flip and quarter turns for both images of a
    pair (8 variants with both enabled)."""

    def __init__(self, flip: bool = True, rot90: bool = True) -> None:
        self.flip, self.rot90 = flip, rot90

    def __call__(self, pair: Pair, generator: torch.Generator | None = None) -> Pair:
        lr, hr = _check_pair(pair, "RandomPairedFlipRotate")
        hflip = bool(_randint(2, generator)) if self.flip else False
        turns = _randint(4, generator) if self.rot90 else 0
        out = []
        for t in (lr, hr):
            if hflip:
                t = t.flip(-1)
            out.append(torch.rot90(t, turns, dims=(-2, -1)).contiguous())
        return out[0], out[1]

    def __repr__(self) -> str:
        return f"RandomPairedFlipRotate(flip={self.flip}, rot90={self.rot90})"


class PairedToY:
    """Transform: an RGB ``(lr, hr)`` pair to BT.601 luma ``(1, H, W)`` in [16/255, 235/255],
    the input of srplug's Y-channel models."""

    def __call__(self, pair: Pair) -> Pair:
        lr, hr = _check_pair(pair, "PairedToY")
        return rgb_to_y(lr), rgb_to_y(hr)

    def __repr__(self) -> str:
        return "PairedToY()"


# ---------------------------------------------------------------------------------- datasets


class ImageFiles(Dataset[np.ndarray]):
    """The image files directly in ``root`` (sorted), as RGB / gray numpy arrays; a minimal
    stand-in for ``ImageFolder`` that needs no torchvision."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        from srplug.io import is_image_file

        folder = Path(root)
        if not folder.is_dir():
            raise DatasetError(f"image folder {folder} does not exist")
        self.files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
        if not self.files:
            raise DatasetError(f"no image files in {folder}")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> np.ndarray:
        from srplug.io import read_image

        return read_image(self.files[index])


class SRPairs(Dataset[tuple[Any, ...]]):
    """``(lr, hr)`` training pairs from any map-style dataset of images.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__`` giving images, tuples
            ``(image, target, ...)`` or dicts (see :func:`extract_image`).
        scale: SR factor.
        patch_size: HR patch side (a multiple of ``scale``); ``None`` keeps the whole image
            (cropped to multiples of ``scale``), e.g. for validation.
        degradation: how LR is made (see :class:`ToLRHR`); default MATLAB bicubic.
        channels: ``"rgb"`` (3 channels) or ``"y"`` (BT.601 luma, 1 channel).
        flip, rot90: augment pairs with flips / quarter turns.
        seed: seeds every random choice; item ``i`` in epoch ``e`` depends only on
            ``(seed, e, i)`` (call :meth:`set_epoch` each epoch for fresh crops).
        image_index: position of the image in tuple items.
        return_target: yield ``(lr, hr, target)`` instead of ``(lr, hr)``.

    Items are float32 tensors in [0, 1]: ``lr (C, p/s, p/s)``, ``hr (C, p, p)``.
    """

    def __init__(
        self,
        dataset: Any,
        scale: int,
        patch_size: int | None = 96,
        *,
        degradation: Any = None,
        channels: Channels = "rgb",
        flip: bool = True,
        rot90: bool = True,
        seed: int = 0,
        image_index: int = 0,
        return_target: bool = False,
    ) -> None:
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise InputError(
                f"SRPairs wraps a map-style dataset (with __len__ and __getitem__), got "
                f"{type(dataset).__name__}"
            )
        if channels not in ("rgb", "y"):
            raise InputError(f"channels must be 'rgb' or 'y', got {channels!r}")
        self.dataset = dataset
        self.scale = _check_scale(scale)
        self.patch = None if patch_size is None else RandomPatch(patch_size, scale)
        self.to_pair = ToLRHR(scale, degradation)
        self.augment = RandomPairedFlipRotate(flip, rot90)
        self.channels: Channels = channels
        self.seed = int(seed)
        self.epoch = 0
        self.image_index = image_index
        self.return_target = return_target

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s random crops and augmentations."""
        self.epoch = int(epoch)

    def generator(self, index: int) -> torch.Generator:
        """The generator item ``index`` draws from in the current epoch."""
        seed = np.random.default_rng([self.seed, self.epoch, int(index)]).integers(2**62)
        return torch.Generator().manual_seed(int(seed))

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        image, target = extract_image(self.dataset[index], self.image_index)
        g = self.generator(index)
        hr = to_image_tensor(image)
        if self.patch is not None:
            hr = self.patch(hr, generator=g)
        lr, hr = self.to_pair(hr, generator=g)
        lr, hr = self.augment((lr, hr), generator=g)
        if self.channels == "y":
            lr, hr = PairedToY()((lr, hr))
        return (lr, hr, target) if self.return_target else (lr, hr)

    def __repr__(self) -> str:
        patch = None if self.patch is None else self.patch.patch_size
        return (
            f"SRPairs({type(self.dataset).__name__} of {len(self)}, scale={self.scale}, "
            f"patch_size={patch}, channels={self.channels!r}, lr={self.to_pair!r})"
        )
