"""Load other projects' SRCNN checkpoints into :class:`~srplug_srcnn.model.SRCNN`.

Known layouts (all Y channel, bicubic-enlarged input in [0, 1], output not residual):

- srplug's own: ``conv1``, ``conv2``, ``conv3`` (``.weight`` / ``.bias``), also the layout
  of yjn870/SRCNN-pytorch;
- Lornatang/SRCNN-PyTorch: ``features.0``, ``map.0``, ``reconstruction``. Its test-time
  network pads every convolution with zeros by ``f // 2``, exactly like srplug's.

Weights are plain OIHW ``Conv2d`` tensors in all of them, so conversion only renames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from srplug.errors import WeightsError
from srplug.weights import scale_from_name

__all__ = ["convert_state_dict", "options_from_weights"]

StateDict = dict[str, torch.Tensor]

_OURS = ("conv1", "conv2", "conv3")
_LAYOUTS: dict[str, dict[str, str]] = {
    "srplug": {name: name for name in _OURS},
    "Lornatang/SRCNN-PyTorch": {
        "features.0": "conv1",
        "map.0": "conv2",
        "reconstruction": "conv3",
    },
}


def _describe(state: StateDict) -> str:
    keys = sorted(state)
    return ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")


def convert_state_dict(state: StateDict) -> StateDict:
    """Rename a known SRCNN layout onto srplug's keys; tensors are returned unchanged.

    Raises :class:`~srplug.errors.WeightsError` when ``state`` matches no known SRCNN layout
    (e.g. another architecture's checkpoint).
    """
    for mapping in _LAYOUTS.values():
        wanted = {
            f"{old}.{p}": f"{new}.{p}" for old, new in mapping.items() for p in ("weight", "bias")
        }
        if set(state) == set(wanted):
            return {wanted[key]: value for key, value in state.items()}
    raise WeightsError(
        "not an SRCNN checkpoint: expected the keys of srplug's SRCNN (conv1/conv2/conv3 "
        "weight and bias) or of Lornatang/SRCNN-PyTorch (features.0, map.0, reconstruction), "
        f"got [{_describe(state)}]"
    )


def options_from_weights(path: Path, state: StateDict) -> dict[str, Any]:
    """Build options read from a checkpoint: ``n1``, ``n2``, ``f1``, ``f2``, ``f3`` from the
    tensor shapes, and ``scale`` from an ``_x<scale>`` in the file name.

    Raises :class:`~srplug.errors.WeightsError` for a non-SRCNN or non-luma checkpoint.
    """
    ours = convert_state_dict(state)
    w1, w2, w3 = (ours[f"{name}.weight"] for name in _OURS)
    if any(w.ndim != 4 or w.shape[-1] != w.shape[-2] or w.shape[-1] % 2 == 0 for w in (w1, w2, w3)):
        raise WeightsError(
            f"{path}: SRCNN kernels must be square with odd sizes, got shapes "
            f"{[tuple(w.shape) for w in (w1, w2, w3)]}"
        )
    if w1.shape[1] != 1 or w3.shape[0] != 1:
        raise WeightsError(
            f"{path}: an SRCNN for {w1.shape[1]} input channels; srplug's srcnn works on the "
            "Y channel only (1 channel in and out)"
        )
    options: dict[str, Any] = {
        "n1": int(w1.shape[0]),
        "n2": int(w2.shape[0]),
        "f1": int(w1.shape[-1]),
        "f2": int(w2.shape[-1]),
        "f3": int(w3.shape[-1]),
    }
    scale = scale_from_name(path)
    if scale is not None:
        options["scale"] = scale
    return options
