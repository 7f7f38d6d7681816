"""Load the SAN authors' checkpoints (daitao/SAN, ``SAN_BIX2.pt`` .. ``SAN_BIX8.pt``).

The released files are plain state dicts of the official ``SAN`` module, whose keys
:class:`~srplug_san.model.SAN` keeps (``sub_mean``, ``head.0``, ``non_local.*``,
``RG.{i}.rcab.{j}.conv_first.{0,2}``, ``RG.{i}.soca.conv_du.{0,2}``, ``RG.{i}.conv_last``,
``RG.{i}.gamma``, ``gamma``, ``conv_last``, ``tail.*``, ``add_mean``): they load as they are
(a ``module.`` prefix or a ``params`` / ``state_dict`` wrapper is removed by srplug).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from srplug_rcan.blocks import upsampler_scale
from srplug_rcan.convert import describe_keys, family_of, strip_prefix

from srplug.errors import WeightsError

__all__ = ["convert_state_dict", "options_from_weights"]

StateDict = dict[str, torch.Tensor]


def convert_state_dict(state: StateDict) -> StateDict:
    """Check that ``state`` is a SAN checkpoint (official / srplug keys) and return it.

    Raises :class:`~srplug.errors.WeightsError` otherwise, naming the model for an RCAN, HAN
    or DRN file.
    """
    state = strip_prefix(state, "model.")
    family = family_of(state)
    if family == "san":
        return dict(state)
    if family is not None:
        name = "drn-s or drn-l" if family == "drn" else repr(family)
        raise WeightsError(
            f"this is a {family.upper()} checkpoint, not a SAN one: use model {name}"
        )
    raise WeightsError(
        "not a SAN checkpoint: expected the SAN authors' keys (sub_mean, head.0, non_local.*, "
        f"RG.*, tail.*, add_mean), got [{describe_keys(state)}]"
    )


def _count(state: StateDict, pattern: str) -> int:
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := regex.match(k))}
    return max(found) + 1 if found else 0


def options_from_weights(path: Path, state: StateDict) -> dict[str, Any]:
    """Build options from the tensors: ``n_feats``, ``n_resgroups``, ``n_resblocks``,
    ``reduction`` and ``scale``."""
    ours = convert_state_dict(state)
    head = ours.get("head.0.weight")
    squeeze = ours.get("RG.0.soca.conv_du.0.weight")
    if head is None or squeeze is None or head.ndim != 4 or head.shape[1] != 3:
        raise WeightsError(f"{path}: incomplete SAN checkpoint or not an RGB model")
    n_feats = int(head.shape[0])
    scale = upsampler_scale(ours, "tail.0.", n_feats)
    n_resgroups = _count(ours, r"^RG\.(\d+)\.conv_last\.weight$")
    n_resblocks = _count(ours, r"^RG\.0\.rcab\.(\d+)\.conv_first\.0\.weight$")
    if scale is None or not n_resgroups or not n_resblocks:
        raise WeightsError(f"{path}: incomplete SAN checkpoint (no upsampler or no groups)")
    return {
        "n_feats": n_feats,
        "n_resgroups": n_resgroups,
        "n_resblocks": n_resblocks,
        "reduction": n_feats // int(squeeze.shape[0]),
        "scale": scale,
    }
