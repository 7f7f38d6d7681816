"""Scoring a network during and after training with the standard protocol.

The network is wrapped in a :class:`~srplug.upsampler.ModuleUpsampler` (float32, as
inference runs it) and scored by :func:`srplug.evaluation.evaluate`: uint8 output, PSNR/SSIM
on BT.601 Y with the border shaved by the scale, exactly what ``srplug eval`` reports.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from srplug.datasets import BenchmarkDataset, BenchmarkItem
from srplug.evaluation import DatasetResult, evaluate
from srplug.protocols import Channels
from srplug.upsampler import ModuleUpsampler

__all__ = ["CachedBenchmark", "metric_key", "score"]


class CachedBenchmark(BenchmarkDataset):
    """A :class:`BenchmarkDataset` that keeps its (HR, LR) pairs after the first read."""

    def __init__(
        self,
        name_or_path: str | os.PathLike[str],
        scale: int,
        *,
        data_root: str | Path | None = None,
    ) -> None:
        super().__init__(name_or_path, scale, data_root=data_root)
        self._items: dict[int, BenchmarkItem] = {}

    def __getitem__(self, index: int) -> BenchmarkItem:
        if index not in self._items:
            self._items[index] = super().__getitem__(index)
        return self._items[index]


def metric_key(result: DatasetResult, what: str = "psnr") -> str:
    """``"Set5/x2/psnr"``."""
    return f"{result.dataset}/x{result.scale}/{what}"


def score(
    model: nn.Module,
    datasets: Sequence[BenchmarkDataset],
    *,
    name: str,
    channels: Channels,
    progress: bool = False,
) -> list[DatasetResult]:
    """Standard-protocol scores of ``model`` (float32, on its current device) on each set.

    ``model`` maps ``(N, C, h, w)`` in [0, 1] to ``(N, C, h*s, w*s)``, C = 3 or 1 (Y); it is
    left in eval mode (callers switch a training model back with ``.train()``).
    """
    if not datasets:
        return []
    device = next(model.parameters()).device
    upsampler = ModuleUpsampler(
        model, name=name, scale=datasets[0].scale, channels=channels, device=device
    )
    return [evaluate(upsampler, ds, progress=progress) for ds in datasets]
