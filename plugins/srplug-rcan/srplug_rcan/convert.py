"""Load RCAN checkpoints of the RCAN repository and of BasicSR into :class:`~srplug_rcan.RCAN`.

Layouts:

- the RCAN repository (yulunzhang/RCAN, ``RCAN_BIX2.pt`` .. ``RCAN_BIX8.pt``, EDSR-PyTorch
  style) and srplug's own files: ``sub_mean``, ``head.0``,
  ``body.{g}.body.{b}.body.{0,2,3.conv_du.0,3.conv_du.2}``, ``body.{g}.body.{n_resblocks}``,
  ``body.{n_resgroups}``, ``tail.0.{0,2,..}``, ``tail.1``, ``add_mean``: used as they are.
- BasicSR (``RCAN_BIX4-...pth``, under ``params`` / ``params_ema``, which
  :func:`srplug.weights.unwrap_state_dict` removes, like a ``module.`` prefix):
  ``conv_first``, ``body.{g}.residual_group.{b}.rcab.{0,2,3.attention.1,3.attention.3}``,
  ``body.{g}.conv``, ``conv_after_body``, ``upsample.{0,2,..}``, ``conv_last``. BasicSR keeps
  the mean as a plain tensor (``x - mean) * img_range``), usually not in the file; the
  converter writes the equivalent ``sub_mean`` / ``add_mean`` with the DIV2K mean (or the
  file's ``mean`` tensor when present) and ``img_range`` 255.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from srplug.errors import WeightsError
from srplug_rcan.blocks import DIV2K_RGB_MEAN, upsampler_scale

__all__ = [
    "convert_state_dict",
    "count_indexed",
    "describe_keys",
    "family_of",
    "mean_shift_tensors",
    "options_from_weights",
    "reject_other_family",
    "require_family",
    "strip_prefix",
    "trunk_options",
]

StateDict = dict[str, torch.Tensor]

_BASICSR = (
    (re.compile(r"^conv_first\.(weight|bias)$"), r"head.0.\1"),
    (
        re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.(0|2)\.(weight|bias)$"),
        r"body.\1.body.\2.body.\3.\4",
    ),
    (
        re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.1\.(weight|bias)$"),
        r"body.\1.body.\2.body.3.conv_du.0.\3",
    ),
    (
        re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.3\.(weight|bias)$"),
        r"body.\1.body.\2.body.3.conv_du.2.\3",
    ),
    (re.compile(r"^upsample\.(\d+)\.(weight|bias)$"), r"tail.0.\1.\2"),
    (re.compile(r"^conv_last\.(weight|bias)$"), r"tail.1.\1"),
)


def describe_keys(state: Mapping[str, Any], limit: int = 8) -> str:
    """The first ``limit`` sorted keys of ``state`` joined for an error message."""
    keys = sorted(state)
    return ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")


def strip_prefix(state: StateDict, prefix: str) -> StateDict:
    """``state`` without ``prefix`` when every key starts with it, else ``state``."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def family_of(state: Mapping[str, Any]) -> str | None:
    """Which srplug model of the RCAN family a state dict belongs to, judged by its keys:
    ``"han"``, ``"san"``, ``"drn"``, ``"rcan"`` (official or BasicSR layout) or None."""
    keys = set(state)
    if "la.gamma" in keys or "csa.conv.weight" in keys:
        return "han"
    if any(k.startswith("RG.") for k in keys) and "non_local.non_local.theta.weight" in keys:
        return "san"
    if any(k.startswith("up_blocks.") for k in keys) or any(
        k.startswith("dual_module.") for k in keys
    ):
        return "drn"
    if "head.0.weight" in keys or "conv_first.weight" in keys:
        return "rcan"
    return None


def reject_other_family(state: Mapping[str, Any], family: str, article: str) -> str | None:
    """The family of ``state`` (see :func:`family_of`) when it is ``family`` or unknown (None);
    for another family a :class:`~srplug.errors.WeightsError` that names the model to use.

    ``article`` is ``family`` as the message writes it, e.g. ``"an RCAN"`` or ``"a HAN"``.
    """
    found = family_of(state)
    if found not in (None, family):
        raise WeightsError(
            f"this is a {found.upper()} checkpoint, not {article} one: use model "
            f"{'drn-s or drn-l' if found == 'drn' else repr(found)}"
        )
    return found


def require_family(state: StateDict, family: str, label: str, keys: str) -> StateDict:
    """``state`` (without a ``model.`` prefix) when it is a checkpoint of ``family`` in the
    authors' keys (SAN, HAN), else a :class:`~srplug.errors.WeightsError`: naming the model
    to use for another family, or listing the expected ``keys`` and ``label`` (``"HAN"``).
    """
    state = strip_prefix(state, "model.")
    if reject_other_family(state, family, f"a {label}") == family:
        return dict(state)
    raise WeightsError(
        f"not a {label} checkpoint: expected the {label} authors' keys ({keys}), "
        f"got [{describe_keys(state)}]"
    )


def mean_shift_tensors(
    rgb_range: float, mean: torch.Tensor | None = None, dtype: torch.dtype = torch.float32
) -> StateDict:
    """``sub_mean`` / ``add_mean`` weights and biases for ``rgb_range`` and an RGB ``mean`` in
    [0, 1] (default DIV2K's), as the official ``MeanShift`` layers hold them."""
    m = torch.tensor(DIV2K_RGB_MEAN) if mean is None else mean.detach().reshape(3).float()
    eye = torch.eye(3).view(3, 3, 1, 1)
    return {
        "sub_mean.weight": eye.clone().to(dtype),
        "sub_mean.bias": (-rgb_range * m).to(dtype),
        "add_mean.weight": eye.clone().to(dtype),
        "add_mean.bias": (rgb_range * m).to(dtype),
    }


def _from_basicsr(state: StateDict) -> StateDict:
    out: StateDict = {}
    groups = {int(m.group(1)) for k in state if (m := re.match(r"^body\.(\d+)\.conv\.", k))}
    n_groups = max(groups) + 1 if groups else 0
    blocks = {
        int(m.group(1)) for k in state if (m := re.match(r"^body\.0\.residual_group\.(\d+)\.", k))
    }
    n_blocks = max(blocks) + 1 if blocks else 0
    mean = state.get("mean")
    for key, value in state.items():
        if key == "mean":
            continue
        if match := re.match(r"^body\.(\d+)\.conv\.(weight|bias)$", key):
            out[f"body.{match.group(1)}.body.{n_blocks}.{match.group(2)}"] = value
            continue
        if match := re.match(r"^conv_after_body\.(weight|bias)$", key):
            out[f"body.{n_groups}.{match.group(1)}"] = value
            continue
        for pattern, replacement in _BASICSR:
            if pattern.match(key):
                out[pattern.sub(replacement, key)] = value
                break
        else:
            raise WeightsError(
                f"unexpected key {key!r} in a BasicSR RCAN checkpoint; is it an RCAN file?"
            )
    dtype = out["head.0.weight"].dtype
    out.update(mean_shift_tensors(255.0, mean, dtype))
    return out


def convert_state_dict(state: StateDict) -> StateDict:
    """Map an RCAN checkpoint (official / srplug or BasicSR layout) onto srplug's RCAN.

    Raises :class:`~srplug.errors.WeightsError` for other layouts, naming the srplug model
    that loads a SAN, HAN or DRN checkpoint.
    """
    state = strip_prefix(state, "model.")
    reject_other_family(state, "rcan", "an RCAN")
    if "head.0.weight" in state:
        return dict(state)
    if "conv_first.weight" in state and "conv_after_body.weight" in state:
        return _from_basicsr(state)
    raise WeightsError(
        "not an RCAN checkpoint: expected the RCAN repository's keys (sub_mean, head.0, "
        "body.*, tail.*, add_mean) or BasicSR's (conv_first, body.*.residual_group.*, "
        f"conv_after_body, upsample.*, conv_last), got [{describe_keys(state)}]"
    )


def count_indexed(state: Mapping[str, Any], pattern: str) -> int:
    """One more than the largest index that ``pattern``'s first group matches in the keys of
    ``state`` (0 when no key matches): the number of groups or blocks stored."""
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := regex.match(k))}
    return max(found) + 1 if found else 0


def options_from_weights(path: Path, state: StateDict) -> dict[str, Any]:
    """Build options read from the tensors: ``n_feats``, ``n_resgroups``, ``n_resblocks``,
    ``reduction`` and ``scale`` (from the upsampler's convolutions)."""
    ours = convert_state_dict(state)
    head = ours["head.0.weight"]
    if head.ndim != 4 or head.shape[1] != 3:
        raise WeightsError(
            f"{path}: the first convolution takes {head.shape[1]} channels; srplug's RCAN is "
            "RGB (3 channels)"
        )
    n_feats = int(head.shape[0])
    n_resgroups = count_indexed(ours, r"^body\.(\d+)\.body\.0\.body\.0\.weight$")
    n_resblocks = count_indexed(ours, r"^body\.0\.body\.(\d+)\.body\.0\.weight$")
    squeeze = ours.get("body.0.body.0.body.3.conv_du.0.weight")
    scale = upsampler_scale(ours, "tail.0.", n_feats)
    if not n_resgroups or not n_resblocks or squeeze is None or scale is None:
        raise WeightsError(
            f"{path}: incomplete RCAN checkpoint (groups {n_resgroups}, blocks {n_resblocks}, "
            f"upsampler scale {scale}); the file may be truncated or of another model"
        )
    return {
        "n_feats": n_feats,
        "n_resgroups": n_resgroups,
        "n_resblocks": n_resblocks,
        "reduction": n_feats // int(squeeze.shape[0]),
        "scale": scale,
    }


def trunk_options(
    path: Path,
    state: StateDict,
    model: str,
    squeeze_key: str,
    groups_pattern: str,
    blocks_pattern: str,
) -> dict[str, Any]:
    """Options of a SAN / HAN style checkpoint (already in srplug's keys): ``n_feats`` from
    ``head.0``, ``scale`` from the ``tail.0`` upsampler, ``n_resgroups`` / ``n_resblocks``
    counted with ``groups_pattern`` / ``blocks_pattern`` (see :func:`count_indexed`) and
    ``reduction`` from the channel-attention squeeze convolution at ``squeeze_key``.

    Raises :class:`~srplug.errors.WeightsError` naming ``model`` when a part is missing.
    """
    head = state.get("head.0.weight")
    squeeze = state.get(squeeze_key)
    if head is None or squeeze is None or head.ndim != 4 or head.shape[1] != 3:
        raise WeightsError(f"{path}: incomplete {model} checkpoint or not an RGB model")
    n_feats = int(head.shape[0])
    scale = upsampler_scale(state, "tail.0.", n_feats)
    n_resgroups = count_indexed(state, groups_pattern)
    n_resblocks = count_indexed(state, blocks_pattern)
    if scale is None or not n_resgroups or not n_resblocks:
        raise WeightsError(f"{path}: incomplete {model} checkpoint (no upsampler or no groups)")
    return {
        "n_feats": n_feats,
        "n_resgroups": n_resgroups,
        "n_resblocks": n_resblocks,
        "reduction": n_feats // int(squeeze.shape[0]),
        "scale": scale,
    }
