"""The ``espcn`` srplug model: ESPCN (sub-pixel convolution) on the Y channel.

``srplug.get("espcn", scale=3, weights="ESPCN_x3.pb")`` loads OpenCV dnn_superres's graph
as it is and reproduces what the graph computes (ReLU hidden layers, tanh output: see
:mod:`srplug_espcn.convert`); by default the network is the paper's (tanh, linear output).
"""

from __future__ import annotations

from collections.abc import Callable

import srplug
from srplug.weights import package_weights
from srplug_espcn.convert import convert_state_dict, options_from_weights
from srplug_espcn.model import ESPCN

__all__ = ["ESPCN", "build", "register_models"]

SCALES = (2, 3, 4)


def build(
    scale: int,
    n1: int = 64,
    n2: int = 32,
    f1: int = 5,
    f2: int = 3,
    f3: int = 3,
    act: str = "tanh",
    out_act: str = "none",
) -> ESPCN:
    """An :class:`ESPCN` (5x5 64, 3x3 32, 3x3 scale**2, tanh)."""
    return ESPCN(scale, n1=n1, n2=n2, f1=f1, f2=f2, f3=f3, act=act, out_act=out_act)


@srplug.hookimpl
def register_models(register: Callable[[srplug.ModelSpec], None]) -> None:
    register(
        srplug.ModelSpec(
            name="espcn",
            build=build,
            channels="y",
            scales=SCALES,
            weights=package_weights(__name__, "espcn"),
            description="ESPCN: 5x5 64, 3x3 32, 3x3 scale^2 + pixel shuffle, tanh; Y channel",
            paper="https://arxiv.org/abs/1609.05158",
            license="Apache-2.0",
            convert_state_dict=convert_state_dict,
            options_from_weights=options_from_weights,
        )
    )
