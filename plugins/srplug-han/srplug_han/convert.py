"""Load the HAN authors' checkpoints (wwlCape/HAN, ``HAN_BIX2.pt`` .. ``HAN_BIX8.pt``).

The released files are plain state dicts of the official ``HAN`` module, whose keys
:class:`~srplug_han.model.HAN` keeps (``sub_mean``, ``head.0``, ``body.*`` as in RCAN,
``csa.conv``, ``csa.gamma``, ``la.gamma``, ``last_conv``, ``last``, ``tail.*``,
``add_mean``): they load as they are (a ``module.`` prefix or a ``params`` / ``state_dict``
wrapper is removed by srplug).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from srplug_rcan.convert import require_family, trunk_options

__all__ = ["convert_state_dict", "options_from_weights"]

StateDict = dict[str, torch.Tensor]


def convert_state_dict(state: StateDict) -> StateDict:
    """Check that ``state`` is a HAN checkpoint (official / srplug keys) and return it.

    Raises :class:`~srplug.errors.WeightsError` otherwise, naming the model for an RCAN, SAN
    or DRN file.
    """
    return require_family(
        state,
        "han",
        "HAN",
        "sub_mean, head.0, body.*, csa.*, la.gamma, last_conv, last, tail.*, add_mean",
    )


def options_from_weights(path: Path, state: StateDict) -> dict[str, Any]:
    """Build options from the tensors: ``n_feats``, ``n_resgroups``, ``n_resblocks``,
    ``reduction`` and ``scale``."""
    return trunk_options(
        path,
        convert_state_dict(state),
        "HAN",
        "body.0.body.0.body.3.conv_du.0.weight",
        r"^body\.(\d+)\.body\.0\.body\.0\.weight$",
        r"^body\.0\.body\.(\d+)\.body\.0\.weight$",
    )
