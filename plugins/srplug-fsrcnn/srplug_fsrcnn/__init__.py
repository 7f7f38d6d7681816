"""The ``fsrcnn`` and ``fsrcnn-small`` srplug models: FSRCNN on the Y channel.

``srplug.get("fsrcnn", weights="fsrcnn_x2.pth")`` (yjn870/FSRCNN-pytorch) and
``srplug.get("fsrcnn-small", scale=3, weights="FSRCNN-small_x3.pb")`` (OpenCV dnn_superres)
load other projects' weights as they are; ``d``, ``s``, ``m`` come from the file (see
:mod:`srplug_fsrcnn.convert`).
"""

from __future__ import annotations

from collections.abc import Callable

import srplug
from srplug.weights import package_weights
from srplug_fsrcnn.convert import VARIANTS, convert_state_dict, make_options_from_weights
from srplug_fsrcnn.model import FSRCNN

__all__ = ["FSRCNN", "build", "build_small", "register_models"]

SCALES = (2, 3, 4)


def build(scale: int, d: int = 56, s: int = 12, m: int = 4) -> FSRCNN:
    """FSRCNN (``d=56, s=12, m=4``)."""
    return FSRCNN(scale, d=d, s=s, m=m)


def build_small(scale: int, d: int = 32, s: int = 5, m: int = 1) -> FSRCNN:
    """FSRCNN-s (``d=32, s=5, m=1``)."""
    return FSRCNN(scale, d=d, s=s, m=m)


@srplug.hookimpl
def register_models(register: Callable[[srplug.ModelSpec], None]) -> None:
    for name, builder, title in (
        ("fsrcnn", build, "FSRCNN"),
        ("fsrcnn-small", build_small, "FSRCNN-s"),
    ):
        config = VARIANTS[name]
        register(
            srplug.ModelSpec(
                name=name,
                build=builder,
                channels="y",
                scales=SCALES,
                weights=package_weights(__name__, name),
                description=(
                    f"{title} (d={config['d']}, s={config['s']}, m={config['m']}, PReLU, 9x9 "
                    "transposed conv), Y channel"
                ),
                paper="https://arxiv.org/abs/1608.00367",
                license="Apache-2.0",
                convert_state_dict=convert_state_dict,
                options_from_weights=make_options_from_weights(name),
            )
        )
