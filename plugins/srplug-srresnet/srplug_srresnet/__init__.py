"""The ``srresnet`` srplug plugin: SRResNet and the SRGAN generator (Ledig et al., CVPR 2017).

Registers ``srresnet`` and ``srgan`` (the same generator; SRGAN weights differ by training),
RGB in [0, 1], scales 2, 3, 4 and 8 (the paper's is 4). ``variant="msrresnet"`` builds
BasicSR's batch-norm-free MSRResNet instead. ``weights=PATH`` loads srplug's files, BasicSR's
MSRResNet and leftthomas/SRGAN's generators as they are, with the variant and options read
from the tensors (:mod:`srplug_srresnet.convert`).

:class:`SRGANDiscriminator` is the paper's VGG-style discriminator for GAN training.
No weights are shipped; ``weights=None`` gives a randomly initialised network.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

import srplug
from srplug.errors import InputError
from srplug_srresnet.convert import convert_state_dict, options_from_weights
from srplug_srresnet.discriminator import SRGANDiscriminator
from srplug_srresnet.model import MSRResNet, SRResNet

__all__ = [
    "VARIANTS",
    "MSRResNet",
    "SRGANDiscriminator",
    "SRResNet",
    "build",
    "register_models",
]

PAPER = "https://arxiv.org/abs/1609.04802"
SCALES = (2, 3, 4, 8)
VARIANTS = ("srresnet", "msrresnet")
"""``srresnet``: the paper's network (BN + PReLU, 9x9 head/tail); ``msrresnet``: BasicSR's."""


def build(
    scale: int,
    variant: str = "srresnet",
    blocks: int = 16,
    features: int = 64,
    after_body: str = "bn",
    output: str = "linear",
) -> torch.nn.Module:
    """An :class:`SRResNet` (``variant="srresnet"``) or :class:`MSRResNet`
    (``"msrresnet"``; ``after_body`` and ``output`` do not apply to it)."""
    if variant == "srresnet":
        return SRResNet(
            scale, blocks=blocks, features=features, after_body=after_body, output=output
        )
    if variant == "msrresnet":
        if (after_body, output) != ("bn", "linear"):
            raise InputError(
                "options after_body and output apply to variant 'srresnet' only, not "
                "'msrresnet'; leave them at their defaults"
            )
        return MSRResNet(scale, blocks=blocks, features=features)
    raise InputError(f"option variant must be one of {VARIANTS}, got {variant!r}")


_MODELS = (
    ("srresnet", "SRResNet: 16 res blocks with BN + PReLU, 9x9 head/tail, pixel-shuffle x2 steps"),
    ("srgan", "SRGAN generator (SRResNet trained with VGG + adversarial loss); RGB"),
)


@srplug.hookimpl
def register_models(register: Callable[[srplug.ModelSpec], None]) -> None:
    """Register ``srresnet`` and ``srgan`` (RGB, x2/x3/x4/x8, default x4, no shipped weights)."""
    for name, description in _MODELS:
        register(
            srplug.ModelSpec(
                name=name,
                build=build,
                smoke_options={"blocks": 2},
                channels="rgb",
                scales=SCALES,
                default_scale=4,
                description=description,
                paper=PAPER,
                license="Apache-2.0",
                convert_state_dict=convert_state_dict,
                options_from_weights=options_from_weights,
            )
        )
