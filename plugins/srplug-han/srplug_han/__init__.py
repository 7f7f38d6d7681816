"""The ``han`` srplug model: HAN (Niu et al., ECCV 2020).

``srplug.get("han", weights="HAN_BIX4.pt")`` loads the authors' files as they are; the scale
and depth come from the tensors.
"""

from __future__ import annotations

from collections.abc import Callable

from srplug_rcan import family_spec

import srplug
from srplug_han.convert import convert_state_dict, options_from_weights
from srplug_han.model import CSAM, HAN, LAM

__all__ = ["CSAM", "HAN", "LAM", "build", "register_models"]

PAPER = "https://arxiv.org/abs/2008.08767"


def build(
    scale: int,
    n_resgroups: int = 10,
    n_resblocks: int = 20,
    n_feats: int = 64,
    reduction: int = 16,
    rgb_range: float = 255.0,
) -> HAN:
    """A :class:`HAN` (RCAN backbone 10 x 20, 64 features, layer + channel-spatial attention)."""
    return HAN(
        scale,
        n_resgroups=n_resgroups,
        n_resblocks=n_resblocks,
        n_feats=n_feats,
        reduction=reduction,
        rgb_range=rgb_range,
    )


@srplug.hookimpl
def register_models(register: Callable[[srplug.ModelSpec], None]) -> None:
    register(
        family_spec(
            "han",
            build,
            "HAN: RCAN backbone (10 x 20 RCABs, 64 features) with a layer attention "
            "module and a channel-spatial attention module; RGB",
            PAPER,
            convert_state_dict,
            options_from_weights,
        )
    )
