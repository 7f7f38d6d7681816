"""Load the DRN authors' checkpoints (guoyongcs/DRN releases) into :class:`~srplug_drn.DRN`.

- Primal files (``DRNS4x.pt``, ``DRNL8x.pt``, ...; ``DRNx4.pt`` when renamed): plain state
  dicts of the official ``DRN`` module, keys ``sub_mean``, ``head``, ``down.*``,
  ``up_blocks.*``, ``tail.*``, ``add_mean``, which :class:`~srplug_drn.DRN` keeps. They hold
  no dual networks, so :func:`options_from_weights` builds the model with ``dual=False``.
- Dual files (``..._dual_model.pt``, ``dual_model_latest.pt``): a *list* of state dicts, one
  per dual network (``dual_module.0.0.weight``, ``dual_module.1.weight``). srplug's weights
  loader takes mappings only, so load them with :func:`load_dual_weights`.
- srplug's own files: the primal keys plus ``dual_models.{i}.dual_module.*`` when the model
  had dual networks.

The variant and scale come from the tensors: the scale from the number of down blocks, the
feature width from ``head``, the depth from the RCABs of the first up block.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from srplug_rcan.convert import describe_keys, family_of, strip_prefix

from srplug.errors import WeightsError
from srplug_drn.model import DRN, VARIANTS

__all__ = [
    "convert_state_dict",
    "load_dual_weights",
    "options_reader",
    "read_config",
]

StateDict = dict[str, torch.Tensor]


def convert_state_dict(state: StateDict) -> StateDict:
    """Check that ``state`` is a DRN primal checkpoint (official / srplug keys), return it.

    Raises :class:`~srplug.errors.WeightsError` for a dual-network file (pointing to
    :func:`load_dual_weights`) and for other models' checkpoints.
    """
    state = strip_prefix(state, "model.")
    if "dual_module.0.0.weight" in state and "head.weight" not in state:
        raise WeightsError(
            "this is a DRN dual-network state dict, not the primal network: load the primal "
            "file with srplug.get and the dual file with srplug_drn.load_dual_weights"
        )
    family = family_of(state)
    if family == "drn" and "head.weight" in state:
        return dict(state)
    if family not in (None, "drn"):
        raise WeightsError(
            f"this is a {family.upper()} checkpoint, not a DRN one: use model {family!r}"
        )
    raise WeightsError(
        "not a DRN checkpoint: expected the DRN authors' keys (sub_mean, head, down.*, "
        f"up_blocks.*, tail.*, add_mean), got [{describe_keys(state)}]"
    )


def read_config(state: StateDict) -> dict[str, Any]:
    """``scale``, ``n_blocks``, ``n_feats`` and ``dual`` of a DRN checkpoint (srplug or
    official keys), read from the tensors."""
    ours = convert_state_dict(state)
    head = ours["head.weight"]
    if head.ndim != 4 or head.shape[1] != 3:
        raise WeightsError("the DRN checkpoint's head is not an RGB convolution")
    downs = {int(m.group(1)) for k in ours if (m := re.match(r"^down\.(\d+)\.", k))}
    blocks = {
        int(m.group(1)) for k in ours if (m := re.match(r"^up_blocks\.0\.(\d+)\.body\.0\.", k))
    }
    if not downs or not blocks:
        raise WeightsError("incomplete DRN checkpoint: no down blocks or no RCABs")
    return {
        "scale": 2 ** (max(downs) + 1),
        "n_blocks": max(blocks) + 1,
        "n_feats": int(head.shape[0]),
        "dual": any(k.startswith("dual_models.") for k in ours),
    }


def options_reader(variant: str) -> Callable[[Path, StateDict], dict[str, Any]]:
    """The ``options_from_weights`` callback of ``variant`` (``"drn-s"`` / ``"drn-l"``).

    It reads the configuration from the tensors and refuses a published configuration of the
    other variant (``DRN-L`` x4 into ``drn-s``) with a :class:`~srplug.errors.WeightsError`
    naming the model to use; other (own) configurations load with their options.
    """

    def options_from_weights(path: Path, state: StateDict) -> dict[str, Any]:
        config = read_config(state)
        scale, shape = config["scale"], (config["n_blocks"], config["n_feats"])
        for other, table in VARIANTS.items():
            if (
                other != variant
                and table.get(scale) == shape
                and VARIANTS[variant].get(scale) != shape
            ):
                raise WeightsError(
                    f"{path} is a {other.upper()} x{scale} checkpoint ({shape[0]} blocks, "
                    f"{shape[1]} features): use model {other!r}"
                )
        return config

    return options_from_weights


def _read_list(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"refusing to load {path}: it is not a weights-only checkpoint (it holds Python "
            "objects that loading would run)"
        ) from exc
    except Exception as exc:
        raise WeightsError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc


def load_dual_weights(
    model: DRN, source: str | os.PathLike[str] | Sequence[Mapping[str, torch.Tensor]]
) -> DRN:
    """Load the DRN authors' dual networks into ``model`` (creating them if it has none).

    ``source`` is a dual file (``DRNx4_dual_model.pt``: a list of ``log2(scale)`` state
    dicts, read with ``weights_only=True``) or such a list. Returns ``model``. Raises
    :class:`~srplug.errors.WeightsError` when the file does not fit.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise WeightsError(f"dual weights file not found: {path}")
        loaded = _read_list(path)
        where = str(path)
    else:
        loaded, where = source, "the given dual state dicts"
    if isinstance(loaded, Mapping):  # a single mapping: srplug's own keys, or one network
        found = [
            {k.split(".", 2)[2]: v for k, v in loaded.items() if k.startswith(f"dual_models.{i}.")}
            for i in range(model.phases)
        ]
        loaded = found if all(found) else [loaded]
    if not isinstance(loaded, Sequence) or len(loaded) != model.phases:
        count = len(loaded) if isinstance(loaded, Sequence) else type(loaded).__name__
        raise WeightsError(
            f"{where}: expected {model.phases} dual-network state dicts for a x{model.scale} "
            f"DRN, got {count}; is it the dual file for this scale?"
        )
    duals = model.add_dual_models()
    for i, (block, state) in enumerate(zip(duals, loaded, strict=True)):
        state = strip_prefix(dict(state), "module.")
        try:
            block.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(
                f"{where}: dual network {i} does not fit (keys {describe_keys(state)}; "
                f"expected 3 -> {model.n_feats} -> 3 channels): {str(exc).splitlines()[-1]}"
            ) from exc
    return model
