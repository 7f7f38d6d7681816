"""The two protocols at the centre of srplug: :class:`Upsampler` and :class:`Trainer`.

They are structural (``typing.Protocol``): anything with the right attributes qualifies, so a
third-party object can stand in for srplug's own classes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import torch

Channels = Literal["rgb", "y"]
"""What a network sees: ``"rgb"`` (3 channels) or ``"y"`` (BT.601 luma, 1 channel)."""

ImageT = TypeVar("ImageT")


@runtime_checkable
class Upsampler(Protocol):
    """A callable that enlarges images by an integer ``scale``.

    ``__call__`` accepts

    * numpy arrays ``HxW`` or ``HxWxC`` (C = 1, 3 or 4, RGB order) of ``uint8``, ``uint16`` or
      float (``float32``; values in [0, 1]);
    * PIL images (``L``, ``LA``, ``RGB``, ``RGBA``, ``I;16``, ``F``; palette images come back
      as ``RGB``/``RGBA``);
    * torch tensors ``(C, H, W)`` or ``(N, C, H, W)``, float in [0, 1] (or ``uint8``);

    and returns the same kind, dtype and channel count at ``H*scale x W*scale``. Alpha is
    enlarged separately with MATLAB bicubic; grayscale is fed to RGB networks replicated and
    returned as luma; a ``"y"`` network enlarges Y while Cb/Cr are enlarged bicubically.
    """

    name: str
    scale: int
    channels: Channels
    model: torch.nn.Module | None
    device: torch.device
    dtype: torch.dtype

    def __call__(self, img: ImageT) -> ImageT: ...


RecipeLike = Mapping[str, Any] | str | os.PathLike[str]
"""A training recipe: a mapping, or the path of a TOML/YAML file holding one."""


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or interrupted) training run leaves behind."""

    checkpoint: Path
    """Last checkpoint written (optimizer, scheduler, EMA and RNG state included)."""
    weights: Path | None
    """Exported inference weights (safetensors), once training completed."""
    steps: int
    """Optimizer steps done in total, across resumes."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Last validation figures, e.g. ``{"Set5/x2/psnr": 37.1}``."""


@runtime_checkable
class Trainer(Protocol):
    """Trains an upsampler from a recipe, resumes it, and evaluates it.

    A recipe names the model (``model``, ``scale``, model options), the data (HR folders,
    patch size, augmentation), the loss, optimizer and schedule, and the validation set.
    The default implementation arrives with the trainer issue; third parties may supply their
    own through plugins.
    """

    def fit(self, recipe: RecipeLike, *, output_dir: str | os.PathLike[str]) -> TrainResult:
        """Train from scratch (or from the recipe's init weights) into ``output_dir``."""
        ...

    def resume(self, checkpoint: str | os.PathLike[str]) -> TrainResult:
        """Continue a run exactly where ``checkpoint`` left it."""
        ...

    def evaluate(
        self, datasets: Sequence[str | os.PathLike[str]], *, scale: int | None = None
    ) -> list[Any]:
        """Score the current weights on benchmark folders (standard protocol)."""
        ...
