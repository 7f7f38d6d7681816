"""Loading other projects' EDSR / MDSR checkpoints into :mod:`srplug_edsr.model`.

Layouts recognised (after srplug's ``params_ema`` / ``params`` / ``module.`` unwrapping):

- srplug / BasicSR (``EDSR`` in ``basicsr/archs/edsr_arch.py``): ``conv_first``,
  ``body.N.conv1|conv2``, ``conv_after_body``, ``upsample.{0,2}``, ``conv_last``; an optional
  ``mean`` tensor (BasicSR keeps the mean as a plain attribute, some forks as a buffer) is
  dropped. BasicSR's ``img_range`` is not stored; 255 (its default) is assumed.
- EDSR-PyTorch (``edsr_baseline_x2-1bc95232.pt``, ``edsr_x4-4f62e9ef.pt``): ``sub_mean`` /
  ``add_mean`` (1x1 convs holding the mean times ``rgb_range``), ``head.0``,
  ``body.N.body.{0,2}``, ``body.<blocks>`` (the conv after the body), ``tail.0.{0,2}`` (the
  upsampler), ``tail.1`` (last conv).
- EDSR-PyTorch MDSR (``mdsr-4a78bedf.pt``, ``mdsr_baseline-a00cab12.pt``): as above plus
  ``pre_process.i.{0,1}.body.{0,2}`` and ``upsample.i.*``, ``tail.0`` as the last conv; the
  branch ``i`` serves the ``i``-th scale of training (2, 3, 4), told apart by the upsampler's
  shape (one ``4F`` conv: x2, one ``9F``: x3, two ``4F``: x4).

The mean-shift convolutions are checked (identity weights, the DIV2K mean) and their range is
read into the ``rgb_range`` option; they are not parameters of srplug's models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from srplug.errors import WeightsError
from srplug_edsr.model import DIV2K_RGB_MEAN

__all__ = [
    "convert_edsr",
    "convert_mdsr",
    "edsr_options",
    "layout_of",
    "mdsr_options",
    "upsampler_scale",
]

StateDict = dict[str, torch.Tensor]

_BLOCK = re.compile(r"^body\.(\d+)\.body\.([02])\.(weight|bias)$")
_PRE = re.compile(r"^pre_process\.(\d+)\.([01])\.body\.([02])\.(weight|bias)$")
_UP = re.compile(r"^upsample\.(\d+)\.(\d+)\.(weight|bias)$")
_TAIL_UP = re.compile(r"^tail\.0\.(\d+)\.(weight|bias)$")


def _strip_prefixes(state: Mapping[str, torch.Tensor]) -> StateDict:
    out: StateDict = {}
    for key, value in state.items():
        while key.startswith(("module.", "model.")):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def _describe(state: Mapping[str, torch.Tensor]) -> str:
    keys = sorted(state)
    return ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")


def layout_of(state: Mapping[str, torch.Tensor]) -> str:
    """``"srplug"`` (also BasicSR), ``"srplug-mdsr"``, ``"edsr-pytorch"``,
    ``"edsr-pytorch-mdsr"`` or ``"unknown"``."""
    keys = set(_strip_prefixes(state))
    if "conv_first.weight" in keys:
        return "srplug-mdsr" if any(k.startswith("pre_process.") for k in keys) else "srplug"
    if "head.0.weight" in keys:
        mdsr = any(k.startswith("pre_process.") for k in keys)
        return "edsr-pytorch-mdsr" if mdsr else "edsr-pytorch"
    return "unknown"


def upsampler_scale(weights: list[torch.Tensor], features: int) -> int:
    """The scale of an upsampler from its conv weights in order (``4F``: x2 each, ``9F``: x3)."""
    outs = [int(w.shape[0]) for w in weights]
    if outs == [9 * features]:
        return 3
    if outs and all(o == 4 * features for o in outs):
        return 2 ** len(outs)
    raise WeightsError(
        f"upsampler convs with {outs} output channels for {features} features: not an EDSR "
        "upsampler (4F per x2 step, or one 9F for x3)"
    )


def _mean_shift_range(state: Mapping[str, torch.Tensor]) -> float | None:
    """``rgb_range`` encoded in EDSR-PyTorch's ``sub_mean`` / ``add_mean``; None if absent."""
    if "sub_mean.bias" not in state:
        return None
    eye = torch.eye(3).view(3, 3, 1, 1)
    for name in ("sub_mean", "add_mean"):
        weight = state.get(f"{name}.weight")
        if weight is None or weight.shape != eye.shape or not torch.allclose(weight.float(), eye):
            raise WeightsError(
                f"{name}.weight is not the identity: the checkpoint divides by a colour std, "
                "which srplug's EDSR does not do (it uses EDSR-PyTorch's default std of 1)"
            )
    sub = state["sub_mean.bias"].float()
    add = state["add_mean.bias"].float()
    if not torch.allclose(sub, -add, rtol=1e-4, atol=1e-6):
        raise WeightsError("sub_mean and add_mean do not shift by the same mean")
    ratios = -sub / torch.tensor(DIV2K_RGB_MEAN)
    rgb_range = float(ratios.mean())
    if not torch.allclose(ratios, torch.full_like(ratios, rgb_range), rtol=1e-3):
        mean = [round(v, 4) for v in (-sub / ratios.mean()).tolist()]
        raise WeightsError(
            f"the checkpoint subtracts the RGB mean {mean}, not DIV2K's {list(DIV2K_RGB_MEAN)}; "
            "srplug's EDSR/MDSR use the DIV2K mean"
        )
    return float(round(rgb_range)) if abs(rgb_range - round(rgb_range)) < 1e-3 else rgb_range


def _wrong_family(found: str, wanted: str) -> WeightsError:
    if wanted == "mdsr":
        return WeightsError(
            "this is a single-scale EDSR checkpoint, not MDSR: load it with model 'edsr' "
            "(or 'edsr-baseline')"
        )
    return WeightsError(
        "this is a multi-scale MDSR checkpoint, not EDSR: load it with model 'mdsr' and pick "
        "the branch with scale="
    )


def _convert_common(state: StateDict, out: StateDict, last_conv: str) -> set[str]:
    """Rename EDSR-PyTorch's head / body / last conv; return the keys it consumed."""
    used: set[str] = set()
    blocks = {int(m.group(1)) for k in state if (m := _BLOCK.match(k))}
    n_blocks = max(blocks) + 1 if blocks else 0
    for key, value in state.items():
        if key.startswith("head.0."):
            out["conv_first." + key[len("head.0.") :]] = value
        elif m := _BLOCK.match(key):
            conv = "conv1" if m.group(2) == "0" else "conv2"
            out[f"body.{m.group(1)}.{conv}.{m.group(3)}"] = value
        elif key.startswith(f"body.{n_blocks}."):
            out["conv_after_body." + key.split(".", 2)[2]] = value
        elif key.startswith(last_conv):
            out["conv_last." + key[len(last_conv) :]] = value
        elif key.startswith(("sub_mean.", "add_mean.")):
            pass
        else:
            continue
        used.add(key)
    return used


def _leftovers(state: StateDict, used: set[str]) -> None:
    rest = sorted(set(state) - used)
    if rest:
        shown = ", ".join(rest[:6]) + (", ..." if len(rest) > 6 else "")
        raise WeightsError(f"unexpected keys in the EDSR-PyTorch checkpoint: {shown}")


def convert_edsr(state: StateDict) -> StateDict:
    """srplug / BasicSR keys (returned without a ``mean`` entry) or EDSR-PyTorch's
    (renamed) -> :class:`~srplug_edsr.model.EDSR` keys. :class:`WeightsError` otherwise."""
    state = _strip_prefixes(state)
    layout = layout_of(state)
    if layout == "srplug":
        return {k: v for k, v in state.items() if k not in ("mean", "rgb_mean")}
    if layout == "edsr-pytorch":
        out: StateDict = {}
        used = _convert_common(state, out, "tail.1.")
        for key, value in state.items():
            if m := _TAIL_UP.match(key):
                out[f"upsample.{m.group(1)}.{m.group(2)}"] = value
                used.add(key)
        _leftovers(state, used)
        return out
    if layout in ("srplug-mdsr", "edsr-pytorch-mdsr"):
        raise _wrong_family(layout, "edsr")
    raise WeightsError(
        "not an EDSR checkpoint: expected srplug/BasicSR keys (conv_first, body.N.conv1, "
        f"conv_after_body, upsample.*, conv_last) or EDSR-PyTorch's (head.0, body.N.body.0, "
        f"tail.*, sub_mean), got [{_describe(state)}]"
    )


def _mdsr_branch_scales(state: StateDict) -> dict[int, int]:
    """Branch index -> scale, from EDSR-PyTorch's ``upsample.i.j.weight`` shapes."""
    features = int(state["head.0.weight"].shape[0])
    convs: dict[int, dict[int, torch.Tensor]] = {}
    for key, value in state.items():
        if (m := _UP.match(key)) and m.group(3) == "weight":
            convs.setdefault(int(m.group(1)), {})[int(m.group(2))] = value
    if not convs:
        raise WeightsError("MDSR checkpoint without upsample.i.* upsamplers")
    scales = {i: upsampler_scale([c[j] for j in sorted(c)], features) for i, c in convs.items()}
    if len(set(scales.values())) != len(scales):
        raise WeightsError(f"MDSR checkpoint with two branches for one scale: {scales}")
    return scales


def convert_mdsr(state: StateDict) -> StateDict:
    """srplug keys (as they are) or EDSR-PyTorch's MDSR (renamed; branch ``i`` becomes
    ``x<scale>``) -> :class:`~srplug_edsr.model.MDSR` keys."""
    state = _strip_prefixes(state)
    layout = layout_of(state)
    if layout == "srplug-mdsr":
        return {k: v for k, v in state.items() if k not in ("mean", "rgb_mean")}
    if layout == "edsr-pytorch-mdsr":
        scales = _mdsr_branch_scales(state)
        out: StateDict = {}
        used = _convert_common(state, out, "tail.0.")
        for key, value in state.items():
            if m := _PRE.match(key):
                conv = "conv1" if m.group(3) == "0" else "conv2"
                branch = scales.get(int(m.group(1)))
                if branch is None:
                    raise WeightsError(f"MDSR pre_process.{m.group(1)} has no upsampler")
                out[f"pre_process.x{branch}.{m.group(2)}.{conv}.{m.group(4)}"] = value
            elif m := _UP.match(key):
                out[f"upsample.x{scales[int(m.group(1))]}.{m.group(2)}.{m.group(3)}"] = value
            else:
                continue
            used.add(key)
        _leftovers(state, used)
        return out
    if layout in ("srplug", "edsr-pytorch"):
        raise _wrong_family(layout, "mdsr")
    raise WeightsError(
        "not an MDSR checkpoint: expected srplug keys (conv_first, pre_process.x2.*, "
        f"upsample.x2.*) or EDSR-PyTorch's (head.0, pre_process.0.*, upsample.0.*), got "
        f"[{_describe(state)}]"
    )


def _blocks(state: StateDict) -> int:
    found = {int(k.split(".")[1]) for k in state if re.match(r"^body\.\d+\.conv1\.weight$", k)}
    if found != set(range(len(found))):
        raise WeightsError(f"residual blocks {sorted(found)} are not numbered 0..n-1")
    return len(found)


def edsr_options(path: Path, state: StateDict) -> dict[str, Any]:
    """EDSR build options stored in a checkpoint: ``blocks``, ``features``, ``scale`` (from
    the upsampler), ``rgb_range`` (from EDSR-PyTorch's mean shift, else 255) and
    ``res_scale`` (0.1 for 256 or more features, else 1: the convention of EDSR-PyTorch and
    BasicSR, which do not store it; pass ``res_scale=`` to override)."""
    rgb_range = _mean_shift_range(_strip_prefixes(state))
    ours = convert_edsr(state)
    features = int(ours["conv_first.weight"].shape[0])
    ups = sorted(
        (k for k in ours if re.match(r"^upsample\.\d+\.weight$", k)),
        key=lambda k: int(k.split(".")[1]),
    )
    return {
        "blocks": _blocks(ours),
        "features": features,
        "res_scale": 0.1 if features >= 256 else 1.0,
        "rgb_range": 255.0 if rgb_range is None else rgb_range,
        "scale": upsampler_scale([ours[k] for k in ups], features),
    }


def mdsr_options(path: Path, state: StateDict) -> dict[str, Any]:
    """MDSR build options stored in a checkpoint: ``blocks``, ``features``, ``scales`` (the
    branches, in the checkpoint's order) and ``rgb_range``. No ``scale``: the file serves
    all its scales."""
    raw = _strip_prefixes(state)
    rgb_range = _mean_shift_range(raw)
    ours = convert_mdsr(state)
    if layout_of(raw) == "edsr-pytorch-mdsr":
        branches = _mdsr_branch_scales(raw)
        scales = tuple(branches[i] for i in sorted(branches))
    else:
        scales = tuple(
            dict.fromkeys(int(k.split(".")[1][1:]) for k in ours if k.startswith("upsample.x"))
        )
    return {
        "blocks": _blocks(ours),
        "features": int(ours["conv_first.weight"].shape[0]),
        "scales": scales,
        "rgb_range": 255.0 if rgb_range is None else rgb_range,
    }
