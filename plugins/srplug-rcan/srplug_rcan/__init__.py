"""The ``rcan`` srplug model: RCAN (Zhang et al., ECCV 2018).

Also the home of the RCAN-family building blocks (:mod:`srplug_rcan.blocks`) that the SAN,
HAN and DRN plugins share. ``srplug.get("rcan", weights="RCAN_BIX4.pt")`` loads the RCAN
repository's files and BasicSR's ``.pth`` files as they are; the scale and depth come from
the tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

import srplug
from srplug_rcan.blocks import RCAB, ChannelAttention, MeanShift, Upsampler
from srplug_rcan.convert import convert_state_dict, options_from_weights
from srplug_rcan.model import RCAN, ResidualGroup

__all__ = [
    "RCAB",
    "RCAN",
    "ChannelAttention",
    "MeanShift",
    "ResidualGroup",
    "Upsampler",
    "build",
    "family_spec",
    "register_models",
]

SCALES = (2, 3, 4, 8)
PAPER = "https://arxiv.org/abs/1807.02758"


def build(
    scale: int,
    n_resgroups: int = 10,
    n_resblocks: int = 20,
    n_feats: int = 64,
    reduction: int = 16,
    rgb_range: float = 255.0,
) -> RCAN:
    """An :class:`RCAN` (10 groups x 20 RCABs, 64 features, reduction 16, rgb_range 255)."""
    return RCAN(
        scale,
        n_resgroups=n_resgroups,
        n_resblocks=n_resblocks,
        n_feats=n_feats,
        reduction=reduction,
        rgb_range=rgb_range,
    )


def family_spec(
    name: str,
    build: Callable[..., torch.nn.Module],
    description: str,
    paper: str,
    convert_state_dict: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]],
    options_from_weights: Callable[..., dict[str, Any]],
) -> srplug.ModelSpec:
    """The :class:`srplug.ModelSpec` of an RCAN-family model (RCAN, SAN, HAN): RGB, scales
    2, 3, 4 and 8, Apache-2.0, smoke-tested with one group of one block."""
    return srplug.ModelSpec(
        name=name,
        build=build,
        smoke_options={"n_resgroups": 1, "n_resblocks": 1},
        channels="rgb",
        scales=SCALES,
        description=description,
        paper=paper,
        license="Apache-2.0",
        convert_state_dict=convert_state_dict,
        options_from_weights=options_from_weights,
    )


@srplug.hookimpl
def register_models(register: Callable[[srplug.ModelSpec], None]) -> None:
    register(
        family_spec(
            "rcan",
            build,
            "RCAN: 10 residual groups x 20 channel-attention blocks, 64 features; RGB; "
            "loads the RCAN repository's and BasicSR's checkpoints",
            PAPER,
            convert_state_dict,
            options_from_weights,
        )
    )
