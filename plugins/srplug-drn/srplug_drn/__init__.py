"""The ``drn-s`` and ``drn-l`` srplug models: DRN (Guo et al., CVPR 2020), x4 and x8.

``srplug.get("drn-s", weights="DRNS4x.pt")`` loads the authors' primal files as they are
(variant and scale checked against the tensors); :func:`load_dual_weights` adds their dual
networks. For dual-regression training use ``model.forward_all``, ``model.dual_models`` and
``model.dual`` (see :class:`DRN`).
"""

from __future__ import annotations

from collections.abc import Callable

import srplug
from srplug_drn.convert import convert_state_dict, load_dual_weights, options_reader
from srplug_drn.model import DRN, VARIANTS, DownBlock, variant_config

__all__ = [
    "DRN",
    "VARIANTS",
    "DownBlock",
    "build_drn_l",
    "build_drn_s",
    "load_dual_weights",
    "register_models",
]

SCALES = (4, 8)
PAPER = "https://arxiv.org/abs/2003.07018"


def _build(
    variant: str,
    scale: int,
    n_blocks: int | None,
    n_feats: int | None,
    negval: float,
    rgb_range: float,
    dual: bool,
) -> DRN:
    if n_blocks is None or n_feats is None:
        blocks, feats = variant_config(variant, scale)
        n_blocks = blocks if n_blocks is None else n_blocks
        n_feats = feats if n_feats is None else n_feats
    return DRN(
        scale,
        n_blocks=n_blocks,
        n_feats=n_feats,
        negval=negval,
        rgb_range=rgb_range,
        dual=dual,
    )


def build_drn_s(
    scale: int,
    n_blocks: int | None = None,
    n_feats: int | None = None,
    negval: float = 0.2,
    rgb_range: float = 255.0,
    dual: bool = True,
) -> DRN:
    """DRN-S: 30 RCABs per up block, 16 features (x4) / 8 (x8), with dual networks."""
    return _build("drn-s", scale, n_blocks, n_feats, negval, rgb_range, dual)


def build_drn_l(
    scale: int,
    n_blocks: int | None = None,
    n_feats: int | None = None,
    negval: float = 0.2,
    rgb_range: float = 255.0,
    dual: bool = True,
) -> DRN:
    """DRN-L: 40 RCABs, 20 features (x4) / 36 RCABs, 10 features (x8), with dual networks."""
    return _build("drn-l", scale, n_blocks, n_feats, negval, rgb_range, dual)


@srplug.hookimpl
def register_models(register: Callable[[srplug.ModelSpec], None]) -> None:
    for name, build, size in (("drn-s", build_drn_s, "small"), ("drn-l", build_drn_l, "large")):
        register(
            srplug.ModelSpec(
                name=name,
                build=build,
                smoke_options={"n_blocks": 1},
                channels="rgb",
                scales=SCALES,
                default_scale=4,
                description=(
                    f"DRN ({size}): U-Net-like primal network with RCAB up blocks and "
                    "outputs at every x2 step, plus dual networks mapping SR back to LR; RGB"
                ),
                paper=PAPER,
                license="Apache-2.0",
                convert_state_dict=convert_state_dict,
                options_from_weights=options_reader(name),
            )
        )
