"""Loading other projects' SRResNet / SRGAN generator checkpoints into
:mod:`srplug_srresnet.model`.

Layouts recognised (after srplug's ``params_ema`` / ``params`` / ``module.`` unwrapping):

- srplug's :class:`~srplug_srresnet.model.SRResNet` (``conv_first`` 9x9, ``act_first``,
  ``body.N.bn1`` ...) and :class:`~srplug_srresnet.model.MSRResNet` (``conv_first`` 3x3,
  ``upsample.N.conv``, ``conv_hr``).
- BasicSR's ``MSRResNet`` (``conv_first``, ``body.N.conv1|conv2``, ``upconv1``,
  ``upconv2``, ``conv_hr``, ``conv_last``): the ``msrresnet`` variant.
- leftthomas/SRGAN's ``Generator`` (``netG_epoch_4_100.pth``): ``block1`` (9x9 conv, PReLU),
  ``block2..block6`` residual blocks (``conv1, bn1, prelu, conv2, bn2``), ``block7`` (3x3
  conv + PReLU in the published files, + BN in later code), ``block8`` (``N.conv`` /
  ``N.prelu`` x2 steps, then the 9x9 conv), output ``(tanh(y) + 1) / 2``: the ``srresnet``
  variant with ``blocks=5, after_body="prelu", output="tanh"``.

Batch-norm ``num_batches_tracked`` counters missing from old files are filled with 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from srplug.errors import WeightsError

__all__ = ["convert_state_dict", "layout_of", "options_from_weights"]

StateDict = dict[str, torch.Tensor]

_BLOCK = re.compile(r"^block(\d+)\.(.+)$")


def _describe(state: Mapping[str, torch.Tensor]) -> str:
    keys = sorted(state)
    return ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")


def layout_of(state: Mapping[str, torch.Tensor]) -> str:
    """``"srresnet"``, ``"msrresnet"`` (srplug's), ``"basicsr-msrresnet"``, ``"leftthomas"``
    or ``"unknown"``."""
    if "block1.0.weight" in state and all(_BLOCK.match(k) for k in state):
        return "leftthomas"
    if "conv_first.weight" not in state:
        return "unknown"
    if "upconv1.weight" in state:
        return "basicsr-msrresnet"
    if "conv_hr.weight" in state:
        return "msrresnet"
    if "act_first.weight" in state:
        return "srresnet"
    return "unknown"


def _fill_bn_counters(state: StateDict) -> StateDict:
    for key in [k for k in state if k.endswith(".running_mean")]:
        counter = key[: -len("running_mean")] + "num_batches_tracked"
        state.setdefault(counter, torch.tensor(0, dtype=torch.long))
    return state


def _leftthomas_parts(state: Mapping[str, torch.Tensor]) -> tuple[int, list[int], int, int]:
    """Block numbers: head, residual blocks, post-body, tail (upsampler + last conv)."""
    numbers = sorted({int(m.group(1)) for k in state if (m := _BLOCK.match(k))})
    residual = [n for n in numbers if f"block{n}.conv1.weight" in state]
    if not residual or numbers[0] != 1 or len(numbers) != len(residual) + 3:
        raise WeightsError(
            f"SRGAN generator blocks {numbers}: expected block1, residual blocks, a post-body "
            "block and an upsampling block (leftthomas/SRGAN layout)"
        )
    post, tail = numbers[len(residual) + 1], numbers[len(residual) + 2]
    if residual != list(range(2, 2 + len(residual))) or (post, tail) != (
        residual[-1] + 1,
        residual[-1] + 2,
    ):
        raise WeightsError(f"SRGAN generator blocks {numbers} are not numbered consecutively")
    return 1, residual, post, tail


def _convert_leftthomas(state: StateDict) -> StateDict:
    _, residual, post, tail = _leftthomas_parts(state)
    out: StateDict = {}
    last = max(
        int(m.group(1))
        for k in state
        if (m := re.match(rf"^block{tail}\.(\d+)\.(weight|bias)$", k))
    )
    for key, value in state.items():
        m = _BLOCK.match(key)
        if m is None:
            raise WeightsError(f"unexpected key {key!r} in a leftthomas/SRGAN generator")
        number, rest = int(m.group(1)), m.group(2)
        if number == 1:
            name = {"0": "conv_first", "1": "act_first"}[rest.split(".")[0]]
            out[f"{name}.{rest.split('.', 1)[1]}"] = value
        elif number in residual:
            out[f"body.{number - 2}.{rest}"] = value
        elif number == post:
            name = {"0": "conv_after_body", "1": "after_body"}[rest.split(".")[0]]
            out[f"{name}.{rest.split('.', 1)[1]}"] = value
        elif number == tail:
            index, sub = rest.split(".", 1)
            if int(index) == last:
                out[f"conv_last.{sub}"] = value
            else:
                out[f"upsample.{index}.{sub}"] = value
    return _fill_bn_counters(out)


def convert_state_dict(state: StateDict) -> StateDict:
    """Any recognised layout -> the keys of the srplug module it builds (see module doc).
    :class:`WeightsError` for anything else."""
    layout = layout_of(state)
    if layout in ("srresnet", "msrresnet"):
        return _fill_bn_counters(dict(state))
    if layout == "basicsr-msrresnet":
        out: StateDict = {}
        for key, value in state.items():
            if m := re.match(r"^upconv(\d+)\.(weight|bias)$", key):
                out[f"upsample.{int(m.group(1)) - 1}.conv.{m.group(2)}"] = value
            else:
                out[key] = value
        return out
    if layout == "leftthomas":
        return _convert_leftthomas(state)
    raise WeightsError(
        "not an SRResNet / SRGAN generator checkpoint: expected srplug's keys (conv_first, "
        "body.N.*, upsample.N.conv, conv_last), BasicSR's MSRResNet (upconv1, conv_hr) or "
        f"leftthomas/SRGAN's (block1..block8), got [{_describe(state)}]"
    )


def _upsample_scale(convs: list[torch.Tensor], features: int) -> int:
    outs = [int(w.shape[0]) for w in convs]
    if outs == [9 * features]:
        return 3
    if outs and all(o == 4 * features for o in outs):
        return 2 ** len(outs)
    raise WeightsError(
        f"upsampling convs with {outs} output channels for {features} features: expected "
        "4F per x2 step or one 9F for x3"
    )


def options_from_weights(path: Path, state: StateDict) -> dict[str, Any]:
    """Build options stored in a checkpoint: ``variant``, ``blocks``, ``features``,
    ``scale`` and, for the SRResNet variant, ``after_body`` and ``output`` (``"tanh"`` for
    leftthomas/SRGAN's generators, else ``"linear"``)."""
    layout = layout_of(state)
    ours = convert_state_dict(state)
    features = int(ours["conv_first.weight"].shape[0])
    blocks = len({k.split(".")[1] for k in ours if re.match(r"^body\.\d+\.conv1\.weight$", k)})
    ups = sorted(
        (k for k in ours if re.match(r"^upsample\.\d+\.conv\.weight$", k)),
        key=lambda k: int(k.split(".")[1]),
    )
    options: dict[str, Any] = {
        "blocks": blocks,
        "features": features,
        "scale": _upsample_scale([ours[k] for k in ups], features),
    }
    if layout in ("msrresnet", "basicsr-msrresnet"):
        return {"variant": "msrresnet", **options}
    prelu = "after_body.running_mean" not in ours
    return {
        "variant": "srresnet",
        **options,
        "after_body": "prelu" if prelu else "bn",
        "output": "tanh" if layout == "leftthomas" else "linear",
    }
