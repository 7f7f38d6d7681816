"""The ``edgesr`` srplug plugin: edge-SR one-layer super-resolution networks.

Registers ``esr-max``, ``esr-tm``, ``esr-tr`` and ``esr-cnn`` (Y channel, scales 2, 3, 4).
Options: ``k``, ``C`` and ``filter_init`` for the one-layer networks, ``C``, ``D`` and ``S``
for eSR-CNN; the defaults are the configurations the paper highlights (eSR-MAX K7 C13,
eSR-TM K7 C16, eSR-TR K7 C13, eSR-CNN C8 D3 S9). The authors' ``*.model`` files load with
``srplug.get("esr-tm", scale=s, weights=PATH)``: the options come from the file name.
"""

from __future__ import annotations

from collections.abc import Callable

import srplug
from srplug.weights import package_weights
from srplug_edgesr.convert import get_from_file, options_reader, parse_model_id
from srplug_edgesr.model import EdgeSR, EdgeSRCNN, EdgeSRMax, EdgeSRTM, EdgeSRTR

__all__ = [
    "EdgeSR",
    "EdgeSRCNN",
    "EdgeSRMax",
    "EdgeSRTM",
    "EdgeSRTR",
    "build_esr_cnn",
    "build_esr_max",
    "build_esr_tm",
    "build_esr_tr",
    "get_from_file",
    "parse_model_id",
    "register_models",
]

PAPER = "Navarrete Michelini, Lu, Jiang: edge-SR: Super-Resolution For The Masses, WACV 2022"
SCALES = (2, 3, 4)


def build_esr_max(
    scale: int, k: int = 7, C: int = 13, impl: str = "ref", filter_init: str = "identity"
) -> EdgeSRMax:
    """eSR-MAX: ``k x k`` conv to ``s*s*C`` maps, max over the ``C`` candidates.

    ``impl``: ``"ref"`` (PyTorch) or the fused kernel of :mod:`srplug.ops` (``"auto"``,
    ``"cpp"``, ``"cuda"``), the same for every edge-SR builder. ``filter_init`` (eSR-MAX, TM,
    TR): the training start, ``"identity"`` (the authors') or ``"bicubic"`` (every candidate
    starts as the bicubic filter of its phase; what the shipped recipes use).
    """
    return EdgeSRMax(scale=scale, k=k, C=C, impl=impl, filter_init=filter_init)


def build_esr_tm(
    scale: int, k: int = 7, C: int = 16, impl: str = "ref", filter_init: str = "identity"
) -> EdgeSRTM:
    """eSR-TM: ``k x k`` conv to ``2*s*s*C`` maps, ``sum value * softmax(match)``."""
    return EdgeSRTM(scale=scale, k=k, C=C, impl=impl, filter_init=filter_init)


def build_esr_tr(
    scale: int, k: int = 7, C: int = 13, impl: str = "ref", filter_init: str = "identity"
) -> EdgeSRTR:
    """eSR-TR: ``k x k`` conv to ``3*s*s*C`` maps, ``sum value * softmax(query * key)``."""
    return EdgeSRTR(scale=scale, k=k, C=C, impl=impl, filter_init=filter_init)


def build_esr_cnn(scale: int, C: int = 8, D: int = 3, S: int = 9, impl: str = "ref") -> EdgeSRCNN:
    """eSR-CNN: 5x5 conv D + tanh, 3x3 conv S + tanh, 3x3 conv to ``2*s*s*C``, reduction."""
    return EdgeSRCNN(scale=scale, C=C, D=D, S=S, impl=impl)


_MODELS: tuple[tuple[str, str, Callable[..., EdgeSR], str], ...] = (
    ("esr-max", "eSR-MAX", build_esr_max, "edge-SR maxout: one conv, max over C candidates"),
    ("esr-tm", "eSR-TM", build_esr_tm, "edge-SR template matching: one conv, softmax(match)"),
    ("esr-tr", "eSR-TR", build_esr_tr, "edge-SR transformer: one conv, softmax(query*key)"),
    ("esr-cnn", "eSR-CNN", build_esr_cnn, "edge-SR CNN: two tanh conv layers, then attention"),
)


@srplug.hookimpl
def register_models(register: Callable[[srplug.ModelSpec], None]) -> None:
    """Register the four edge-SR families (Y channel, x2/x3/x4, with any shipped weights)."""
    for name, family, build, description in _MODELS:
        register(
            srplug.ModelSpec(
                name=name,
                build=build,
                channels="y",
                scales=SCALES,
                default_scale=2,
                weights=package_weights(__name__, name),
                description=description,
                paper=PAPER,
                license="Apache-2.0",
                options_from_weights=options_reader(family),
            )
        )
