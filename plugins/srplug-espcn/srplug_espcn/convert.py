"""Load OpenCV dnn_superres's ESPCN graphs (and srplug's own files) into
:class:`~srplug_espcn.model.ESPCN`.

``ESPCN_x{2,3,4}.pb`` (fannymonori/TF-ESPCN, frozen TF 1.x graphs) compute, on an NHWC
``(1, h, w, 1)`` luma input in [0, 1]::

    relu(conv(x, f1) + b1) -> relu(conv(., f2) + b2) -> conv(., f3) + b3
    -> DepthToSpace(scale) -> tanh

with stride-1 ``SAME`` convolutions (zero padding ``k // 2``) and HWIO kernels ``f1``
``(5, 5, 1, 64)``, ``f2`` ``(3, 3, 64, 32)``, ``f3`` ``(3, 3, 32, scale**2)``. So the hidden
activation is ReLU (not the paper's tanh) and there is a tanh on the output; the options
``act="relu", out_act="tanh"`` reproduce that. Kernels become OIHW by a transpose. TF's
``DepthToSpace`` reads channels in DCR order (``(di * scale + dj) * C + c``) and torch's
``pixel_shuffle`` in CRD order (``c * scale**2 + di * scale + dj``); the last layer's output
channels are permuted accordingly (:func:`dcr_to_crd`), which is the identity for C = 1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from srplug.errors import WeightsError

__all__ = ["convert_state_dict", "dcr_to_crd", "graph_activations", "options_from_weights"]

StateDict = dict[str, torch.Tensor]

_OURS = tuple(f"conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias"))
_TF = ("f1", "b1", "f2", "b2", "f3", "b3")


def _describe(state: StateDict) -> str:
    keys = sorted(state)
    return ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")


def dcr_to_crd(channels: int, scale: int) -> torch.Tensor:
    """Index ``p`` (int64, ``(channels,)``) with ``crd = dcr[p]``: channel ``p``'s position in
    TensorFlow's ``DepthToSpace`` order for each channel of torch's ``pixel_shuffle`` order.

    ``channels`` must be ``C * scale**2``; torch channel ``c * scale**2 + k`` is TF channel
    ``k * C + c`` (``k = di * scale + dj``).
    """
    blocks = scale * scale
    if channels % blocks:
        raise WeightsError(f"{channels} channels are not a multiple of scale**2 = {blocks}")
    c_out = channels // blocks
    k = torch.arange(blocks)
    return (k[None, :] * c_out + torch.arange(c_out)[:, None]).reshape(-1)


def convert_state_dict(state: StateDict) -> StateDict:
    """Map srplug's keys (``conv{1,2,3}.weight/bias``, returned as they are) or an ESPCN
    TensorFlow graph's constants (``f1..f3``, ``b1..b3``) onto srplug's ESPCN.

    Raises :class:`~srplug.errors.WeightsError` for anything else (an FSRCNN graph, too).
    """
    if all(key in state for key in _OURS):
        return dict(state)
    if all(key in state for key in _TF):
        if "f4" in state or "alpha1" in state:
            raise WeightsError(
                "this TensorFlow graph has more than 3 convolutions or PReLU slopes: it is not "
                "an ESPCN graph (an FSRCNN one? use model 'fsrcnn' or 'fsrcnn-small')"
            )
        out: StateDict = {}
        for i in (1, 2, 3):
            kernel = state[f"f{i}"]
            if kernel.ndim != 4:
                raise WeightsError(f"ESPCN graph kernel f{i} has shape {tuple(kernel.shape)}")
            out[f"conv{i}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()
            out[f"conv{i}.bias"] = state[f"b{i}"].reshape(-1)
        channels = out["conv3.weight"].shape[0]
        scale = math.isqrt(channels)
        if scale * scale != channels:
            raise WeightsError(
                f"ESPCN graph's last layer has {channels} channels, not scale**2 for one output"
            )
        order = dcr_to_crd(channels, scale)
        out["conv3.weight"] = out["conv3.weight"][order]
        out["conv3.bias"] = out["conv3.bias"][order]
        return out
    raise WeightsError(
        "not an ESPCN checkpoint: expected srplug's keys (conv1/conv2/conv3 weight and bias) or "
        f"an OpenCV dnn_superres ESPCN graph (f1..f3, b1..b3), got [{_describe(state)}]"
    )


def _plain_conv(attrs: dict[str, Any]) -> bool:
    """Whether ``Conv2D`` attributes say stride 1, dilation 1, SAME padding, NHWC."""
    ones = [1, 1, 1, 1]
    return (
        attrs.get("padding") == b"SAME"
        and list(attrs.get("strides", ones)) == ones
        and list(attrs.get("dilations", ones)) == ones
        and attrs.get("data_format", b"NHWC") == b"NHWC"
    )


def graph_activations(path: str | Path) -> dict[str, str]:
    """``{"act": ..., "out_act": ...}`` of the ESPCN graph in ``path``, read from its ops.

    Checks the structure: three stride-1 ``SAME`` NHWC ``Conv2D`` layers, the same
    activation (``Relu`` or ``Tanh``) after the first two, then ``DepthToSpace`` and
    optionally a ``Tanh``. Raises :class:`~srplug.errors.WeightsError` otherwise.
    """
    from srplug.formats.tensorflow_pb import read_graph

    nodes = read_graph(path)
    consumers: dict[str, list[str]] = {}
    for node in nodes:
        for name in node.inputs:
            consumers.setdefault(name.split(":")[0], []).append(node.op)
    by_op: dict[str, list[Any]] = {}
    for node in nodes:
        by_op.setdefault(node.op, []).append(node)
    convs, d2s = by_op.get("Conv2D", []), by_op.get("DepthToSpace", [])
    if len(convs) != 3 or len(d2s) != 1:
        raise WeightsError(
            f"{path}: {len(convs)} convolutions and {len(d2s)} DepthToSpace; an ESPCN graph has "
            "3 and 1 (an FSRCNN graph? use model 'fsrcnn' or 'fsrcnn-small')"
        )
    for conv in convs:
        if not _plain_conv(conv.attrs):
            raise WeightsError(f"{path}: convolution {conv.name} is not stride-1 SAME NHWC")
    names = {"Relu": "relu", "Tanh": "tanh"}
    acts = []
    for conv in convs[:2]:
        # conv -> Add/BiasAdd (bias) -> activation
        bias_ops = [n for n in nodes if conv.name in n.inputs]
        after = [n.op for b in bias_ops for n in nodes if b.name in n.inputs]
        found = [names[op] for op in after if op in names]
        if len(found) != 1:
            raise WeightsError(f"{path}: no ReLU/Tanh after convolution {conv.name}")
        acts.append(found[0])
    if acts[0] != acts[1]:
        raise WeightsError(f"{path}: different activations {acts}; srplug's ESPCN uses one")
    tail = consumers.get(d2s[0].name, [])
    out_act = "tanh" if tail == ["Tanh"] else "none"
    if tail and tail != ["Tanh"] and tail != ["Transpose"]:
        raise WeightsError(f"{path}: DepthToSpace is followed by {tail}, not tanh or nothing")
    return {"act": acts[0], "out_act": out_act}


def options_from_weights(path: Path, state: StateDict) -> dict[str, Any]:
    """Build options read from the weights: ``n1``, ``n2``, ``f1``, ``f2``, ``f3`` and
    ``scale`` (``sqrt`` of the last layer's channels) from the tensors, and for a
    ``.pb`` graph ``act`` / ``out_act`` from its ops."""
    ours = convert_state_dict(state)
    w1, w2, w3 = (ours[f"conv{i}.weight"] for i in (1, 2, 3))
    if w1.shape[1] != 1:
        raise WeightsError(
            f"{path}: an ESPCN for {w1.shape[1]} input channels; srplug's ESPCN works on Y only"
        )
    scale = math.isqrt(w3.shape[0])
    if scale * scale != w3.shape[0]:
        raise WeightsError(
            f"{path}: the last layer has {w3.shape[0]} channels, not scale**2 for one output "
            "channel"
        )
    options: dict[str, Any] = {
        "n1": int(w1.shape[0]),
        "n2": int(w2.shape[0]),
        "f1": int(w1.shape[-1]),
        "f2": int(w2.shape[-1]),
        "f3": int(w3.shape[-1]),
        "scale": scale,
    }
    if "f1" in state and Path(path).suffix.lower() == ".pb":
        options.update(graph_activations(path))
    return options
