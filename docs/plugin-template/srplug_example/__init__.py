"""An example srplug plugin: a small sub-pixel convolution network (ESPCN-like)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

import srplug


class ExampleNet(nn.Module):
    """(N, 3, h, w) RGB in [0, 1] -> (N, 3, h*scale, w*scale)."""

    def __init__(self, scale: int, features: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, features, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(features, 3 * scale * scale, 3, padding=1),
        )
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.body(x)) + nn.functional.interpolate(
            x, scale_factor=self.shuffle.upscale_factor, mode="nearest"
        )


def build(scale: int, features: int = 32) -> nn.Module:
    return ExampleNet(scale, features)


# Shipped weights are listed as srplug.Weights; for example, with a file in
# srplug_example/weights/x2.safetensors (declared as package data in pyproject.toml):
#
#   WEIGHTS = (
#       srplug.Weights(
#           tag="x2",
#           scale=2,
#           file=srplug.WeightsFile(package=__name__, resource="weights/x2.safetensors"),
#           card=srplug.ModelCard(params=..., recipe="recipes/x2.toml", training_data="...",
#                                 steps=..., metrics=(srplug.Metric("Set5", 2, 36.1, 0.95),),
#                                 license="...", source="your name"),
#       ),
#   )
WEIGHTS: tuple[srplug.Weights, ...] = ()


@srplug.hookimpl
def register_models(register: Callable[[srplug.ModelSpec], None]) -> None:
    register(
        srplug.ModelSpec(
            name="example-espcn",
            build=build,
            channels="rgb",
            scales=(2, 3, 4),
            weights=WEIGHTS,
            description="Example plugin: 2-layer sub-pixel network",
            license="Apache-2.0",
        )
    )
