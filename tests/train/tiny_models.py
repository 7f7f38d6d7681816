"""A tiny convolutional SR network registered as an in-process plugin for the trainer tests."""

from __future__ import annotations

import torch
from torch import nn

import srplug

PLUGIN_NAME = "train-tests"


class TinySR(nn.Module):
    """``(N, C, h, w)`` -> ``(N, C, h*s, w*s)``: nearest enlargement plus a learned residual
    (3x3 conv to ``width`` features, ReLU, 3x3 conv to ``C*s*s``, pixel shuffle)."""

    def __init__(self, scale: int, channels: int = 1, width: int = 8) -> None:
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, channels * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest")
        return up + self.body(x)


class TinyPlugin:
    """Registers ``tiny-y`` (luma) and ``tiny-rgb``."""

    @srplug.hookimpl
    def register_models(self, register):
        register(
            srplug.ModelSpec(
                name="tiny-y",
                build=lambda scale, width=8: TinySR(scale, 1, width),
                channels="y",
            )
        )
        register(
            srplug.ModelSpec(
                name="tiny-rgb",
                build=lambda scale, width=8: TinySR(scale, 3, width),
                channels="rgb",
            )
        )


def register() -> None:
    """Register the tiny models in this process (idempotent)."""
    from srplug import plugins

    if plugins.get_plugin_manager().get_plugin(PLUGIN_NAME) is None:
        srplug.register_plugin(TinyPlugin(), PLUGIN_NAME)
