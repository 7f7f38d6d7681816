"""The ``san`` srplug model: SAN (Dai et al., CVPR 2019).

``srplug.get("san", weights="SAN_BIX4.pt")`` loads the authors' files as they are; the scale
and depth come from the tensors.
"""

from __future__ import annotations

from collections.abc import Callable

from srplug_rcan import family_spec

import srplug
from srplug_san.convert import convert_state_dict, options_from_weights
from srplug_san.model import LSRAG, SAN, SOCA, NonLocalBlock, RegionNonLocal

__all__ = ["LSRAG", "SAN", "SOCA", "NonLocalBlock", "RegionNonLocal", "build", "register_models"]

PAPER = (
    "https://openaccess.thecvf.com/content_CVPR_2019/html/Dai_Second-Order_Attention_Network_"
    "for_Single_Image_Super-Resolution_CVPR_2019_paper.html"
)


def build(
    scale: int,
    n_resgroups: int = 20,
    n_resblocks: int = 10,
    n_feats: int = 64,
    reduction: int = 16,
    rgb_range: float = 255.0,
) -> SAN:
    """A :class:`SAN` (20 LSRAGs x 10 residual blocks, 64 features, reduction 16)."""
    return SAN(
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
            "san",
            build,
            "SAN: second-order channel attention (covariance pooling, Newton-Schulz "
            "square root), region non-local blocks, 20 LSRAGs x 10 blocks; RGB",
            PAPER,
            convert_state_dict,
            options_from_weights,
        )
    )
