"""The ``edsr`` srplug plugin: EDSR-baseline, EDSR and MDSR (Lim et al., CVPRW 2017).

Registers ``edsr-baseline`` (16 blocks, 64 features, residual scale 1), ``edsr`` (32 blocks,
256 features, residual scale 0.1), both x2 / x3 / x4, and ``mdsr`` (one network with a branch
per scale 2 / 3 / 4; ``scale=`` picks the branch). RGB in [0, 1]; the networks work on
0..255 values with the DIV2K mean subtracted, as the authors trained them.

``weights=PATH`` loads srplug's, BasicSR's and EDSR-PyTorch's files as they are (see
:mod:`srplug_edsr.convert`); :func:`fetch_official` downloads the authors' files.
No weights are shipped; ``weights=None`` gives a randomly initialised network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import srplug
from srplug.errors import InputError
from srplug_edsr.convert import convert_edsr, convert_mdsr, edsr_options, mdsr_options
from srplug_edsr.model import EDSR, MDSR
from srplug_edsr.official import OFFICIAL, OfficialFile, fetch_official

__all__ = [
    "EDSR",
    "MDSR",
    "OFFICIAL",
    "OfficialFile",
    "build_edsr",
    "build_edsr_baseline",
    "build_mdsr",
    "fetch_official",
    "register_models",
]

PAPER = "https://arxiv.org/abs/1707.02921"
SCALES = (2, 3, 4)


def build_edsr_baseline(
    scale: int,
    blocks: int = 16,
    features: int = 64,
    res_scale: float = 1.0,
    rgb_range: float = 255.0,
) -> EDSR:
    """EDSR-baseline: 16 residual blocks of 64 features, residual scale 1."""
    return EDSR(scale, blocks=blocks, features=features, res_scale=res_scale, rgb_range=rgb_range)


def build_edsr(
    scale: int,
    blocks: int = 32,
    features: int = 256,
    res_scale: float = 0.1,
    rgb_range: float = 255.0,
) -> EDSR:
    """EDSR: 32 residual blocks of 256 features, residual scale 0.1."""
    return EDSR(scale, blocks=blocks, features=features, res_scale=res_scale, rgb_range=rgb_range)


def build_mdsr(
    scale: int,
    blocks: int = 80,
    features: int = 64,
    scales: Sequence[int] | str = SCALES,
    rgb_range: float = 255.0,
) -> MDSR:
    """MDSR: shared body of 80 blocks, per-scale pre-processing and upsamplers, running the
    branch for ``scale``. ``scales`` (a sequence, or ``"2,3,4"`` from the command line) are
    the branches the network holds."""
    if isinstance(scales, str):
        try:
            scales = [int(s) for s in scales.replace("+", ",").split(",") if s.strip()]
        except ValueError as exc:
            raise InputError(f"MDSR option scales must look like '2,3,4', got {scales!r}") from exc
    return MDSR(scale, blocks=blocks, features=features, scales=tuple(scales), rgb_range=rgb_range)


_MODELS: tuple[tuple[str, Callable[..., EDSR | MDSR], str, Callable, Callable], ...] = (
    (
        "edsr-baseline",
        build_edsr_baseline,
        "EDSR-baseline: 16 res blocks x 64 features, no BN, pixel-shuffle upsampler; RGB",
        convert_edsr,
        edsr_options,
    ),
    (
        "edsr",
        build_edsr,
        "EDSR: 32 res blocks x 256 features, residual scaling 0.1, pixel shuffle; RGB",
        convert_edsr,
        edsr_options,
    ),
    (
        "mdsr",
        build_mdsr,
        "MDSR: one network for x2/x3/x4, shared 80-block body, per-scale heads and upsamplers",
        convert_mdsr,
        mdsr_options,
    ),
)


# Shrunk but structurally identical builds for the contract test over every model.
_SMOKE: dict[str, dict[str, int]] = {
    "edsr-baseline": {"blocks": 2},
    "edsr": {"blocks": 2, "features": 32},
    "mdsr": {"blocks": 2},
}


@srplug.hookimpl
def register_models(register: Callable[[srplug.ModelSpec], None]) -> None:
    """Register ``edsr-baseline``, ``edsr`` and ``mdsr`` (RGB, x2/x3/x4, no shipped weights)."""
    for name, build, description, convert, options in _MODELS:
        register(
            srplug.ModelSpec(
                name=name,
                build=build,
                smoke_options=_SMOKE[name],
                channels="rgb",
                scales=SCALES,
                default_scale=2,
                description=description,
                paper=PAPER,
                license="Apache-2.0",
                convert_state_dict=convert,
                options_from_weights=options,
            )
        )
