"""Load the SAN authors' checkpoints (daitao/SAN, ``SAN_BIX2.pt`` .. ``SAN_BIX8.pt``).

The released files are plain state dicts of the official ``SAN`` module, whose keys
:class:`~srplug_san.model.SAN` keeps (``sub_mean``, ``head.0``, ``non_local.*``,
``RG.{i}.rcab.{j}.conv_first.{0,2}``, ``RG.{i}.soca.conv_du.{0,2}``, ``RG.{i}.conv_last``,
``RG.{i}.gamma``, ``gamma``, ``conv_last``, ``tail.*``, ``add_mean``): they load as they are
(a ``module.`` prefix or a ``params`` / ``state_dict`` wrapper is removed by srplug).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from srplug_rcan.convert import require_family, trunk_options

__all__ = ["convert_state_dict", "options_from_weights"]

StateDict = dict[str, torch.Tensor]


def convert_state_dict(state: StateDict) -> StateDict:
    """Check that ``state`` is a SAN checkpoint (official / srplug keys) and return it.

    Raises :class:`~srplug.errors.WeightsError` otherwise, naming the model for an RCAN, HAN
    or DRN file.
    """
    return require_family(
        state, "san", "SAN", "sub_mean, head.0, non_local.*, RG.*, tail.*, add_mean"
    )


def options_from_weights(path: Path, state: StateDict) -> dict[str, Any]:
    """Build options from the tensors: ``n_feats``, ``n_resgroups``, ``n_resblocks``,
    ``reduction`` and ``scale``."""
    return trunk_options(
        path,
        convert_state_dict(state),
        "SAN",
        "RG.0.soca.conv_du.0.weight",
        r"^RG\.(\d+)\.conv_last\.weight$",
        r"^RG\.0\.rcab\.(\d+)\.conv_first\.0\.weight$",
    )
