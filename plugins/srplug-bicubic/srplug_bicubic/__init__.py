"""The ``bicubic`` srplug model: MATLAB-exact bicubic interpolation at any integer scale."""

from __future__ import annotations

from collections.abc import Callable

import torch

import srplug
from srplug.resize import Imresize


def build(scale: int) -> torch.nn.Module:
    """A parameter-free module enlarging ``(N, C, h, w)`` by ``scale`` with MATLAB bicubic."""
    return Imresize(scale=float(scale))


@srplug.hookimpl
def register_models(register: Callable[[srplug.ModelSpec], None]) -> None:
    register(
        srplug.ModelSpec(
            name="bicubic",
            build=build,
            channels="rgb",
            scales=None,
            default_scale=2,
            network=False,
            description="MATLAB imresize bicubic (Keys a=-0.5, symmetric border)",
            license="Apache-2.0",
        )
    )
