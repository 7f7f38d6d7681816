"""The ``srcnn`` srplug model: SRCNN on the Y channel of a bicubic-enlarged image.

``srplug.get("srcnn", scale=3, weights="srcnn_x3.pth")`` loads Lornatang/SRCNN-PyTorch
checkpoints as they are; the layer sizes come from the file (see :mod:`srplug_srcnn.convert`).
"""

from __future__ import annotations

from collections.abc import Callable

import srplug
from srplug.weights import package_weights
from srplug_srcnn.convert import convert_state_dict, options_from_weights
from srplug_srcnn.model import SRCNN

__all__ = ["SRCNN", "build", "register_models"]

SCALES = (2, 3, 4)


def build(
    scale: int,
    f1: int = 9,
    f2: int = 1,
    f3: int = 5,
    n1: int = 64,
    n2: int = 32,
    padding_mode: str = "zeros",
) -> SRCNN:
    """An :class:`SRCNN` (9-1-5, 64-32 by default; ``f2=5`` gives the paper's 9-5-5)."""
    return SRCNN(scale, f1=f1, f2=f2, f3=f3, n1=n1, n2=n2, padding_mode=padding_mode)


@srplug.hookimpl
def register_models(register: Callable[[srplug.ModelSpec], None]) -> None:
    register(
        srplug.ModelSpec(
            name="srcnn",
            build=build,
            channels="y",
            scales=SCALES,
            weights=package_weights(__name__, "srcnn"),
            description="SRCNN: bicubic enlargement + 3 convolutions (9-1-5, 64-32), Y channel",
            paper="https://arxiv.org/abs/1501.00092",
            license="Apache-2.0",
            convert_state_dict=convert_state_dict,
            options_from_weights=options_from_weights,
        )
    )
