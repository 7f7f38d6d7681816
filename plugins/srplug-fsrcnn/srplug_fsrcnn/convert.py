"""Load other projects' FSRCNN weights into :class:`~srplug_fsrcnn.model.FSRCNN`.

Known layouts (all Y channel in [0, 1], output not residual):

- srplug's own keys (``extract.conv.weight``, ``mapping.0.act.weight``, ``deconv.weight``...).
- yjn870/FSRCNN-pytorch: ``first_part.{0,1}``, ``mid_part.{0..2m+3}``, ``last_part``; the
  same modules in another order of names (``ConvTranspose2d(d, 1, 9, stride=scale,
  padding=4, output_padding=scale-1)``), so only keys change.
- OpenCV dnn_superres's ``FSRCNN_x*.pb`` / ``FSRCNN-small_x*.pb`` (Saafke/FSRCNN_Tensorflow),
  read as their ``Const`` nodes (``f1..fL`` HWIO kernels, ``b1..bL`` biases, ``alpha1..``
  PReLU slopes, written as ``relu(x) + alpha * (x - |x|) * 0.5``). Their last layer is not a
  transposed convolution: it is a 1x1 ``Conv2D`` to ``scale**2`` channels, ``DepthToSpace``
  and a ``BiasAdd`` of one value. With one output channel TensorFlow's DCR order and torch's
  ``pixel_shuffle`` (CRD) coincide: sub-pixel ``(di, dj)`` is channel ``di * scale + dj``.
  That layer equals the 9x9 stride-``scale`` transposed convolution whose taps
  ``(4 + di, 4 + dj)`` hold the 1x1 weights and whose other taps are zero
  (:func:`subpixel_to_deconv`), so the graph's output is reproduced exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from srplug.errors import WeightsError
from srplug.weights import scale_from_name
from srplug_fsrcnn.model import DECONV_KERNEL, deconv_padding

__all__ = [
    "VARIANTS",
    "convert_state_dict",
    "graph_scale",
    "make_options_from_weights",
    "subpixel_to_deconv",
]

StateDict = dict[str, torch.Tensor]

VARIANTS: dict[str, dict[str, int]] = {
    "fsrcnn": {"d": 56, "s": 12, "m": 4},
    "fsrcnn-small": {"d": 32, "s": 5, "m": 1},
}
"""The registered names and their default ``d``, ``s``, ``m``."""

_TF_PRELU_HALF = 0.5


def _describe(state: StateDict) -> str:
    keys = sorted(state)
    return ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")


def _hwio_to_oihw(kernel: torch.Tensor) -> torch.Tensor:
    """TensorFlow ``Conv2D`` kernel ``(kh, kw, in, out)`` -> torch ``(out, in, kh, kw)``."""
    return kernel.permute(3, 2, 0, 1).contiguous()


def _our_layers(m: int) -> list[str]:
    return ["extract", "shrink", *(f"mapping.{i}" for i in range(m)), "expand"]


def _count(state: StateDict, pattern: str) -> int:
    """How many consecutive indices 1.. (or 0..) exist for a key pattern with ``{}``."""
    start = 0 if pattern.format(0) in state else 1
    n = 0
    while pattern.format(start + n) in state:
        n += 1
    return n


def subpixel_to_deconv(kernel_hwio: torch.Tensor, scale: int) -> torch.Tensor:
    """A ``Conv2D`` (SAME padding, one output channel after ``DepthToSpace(scale)``) as the
    weight of srplug's 9x9 transposed convolution.

    Args:
        kernel_hwio: TensorFlow kernel ``(k, k, d, scale**2)`` (``k`` odd); channel
            ``di * scale + dj`` makes sub-pixel ``(di, dj)``.
        scale: the ``DepthToSpace`` block size.

    Returns:
        float ``(d, 1, 9, 9)`` weight for ``ConvTranspose2d(d, 1, 9, stride=scale,
        padding=4, output_padding=scale - 1)``: output pixel ``scale*i + di`` gets input
        ``i + t - k//2`` through tap ``di + 4 - scale*(t - k//2)``.

    Raises:
        WeightsError: the kernel does not fit in 9x9 taps at this scale.
    """
    k, k2, d, channels = kernel_hwio.shape
    if k != k2 or k % 2 == 0 or channels != scale * scale:
        raise WeightsError(
            f"cannot turn a {k}x{k2} convolution to {channels} channels + DepthToSpace({scale}) "
            f"into a transposed convolution: need an odd square kernel and {scale * scale} "
            "channels"
        )
    pad, _ = deconv_padding(scale)
    out = torch.zeros(d, 1, DECONV_KERNEL, DECONV_KERNEL, dtype=kernel_hwio.dtype)
    centre = k // 2
    for th in range(k):
        for di in range(scale):
            kh = di + pad - scale * (th - centre)
            for tw in range(k):
                for dj in range(scale):
                    kw = dj + pad - scale * (tw - centre)
                    if not (0 <= kh < DECONV_KERNEL and 0 <= kw < DECONV_KERNEL):
                        raise WeightsError(
                            f"a {k}x{k} sub-pixel convolution at x{scale} does not fit in the "
                            f"{DECONV_KERNEL}x{DECONV_KERNEL} transposed convolution of srplug's "
                            "FSRCNN"
                        )
                    out[:, 0, kh, kw] = kernel_hwio[th, tw, :, di * scale + dj]
    return out


def _from_yjn870(state: StateDict) -> StateDict:
    n_mid = _count(state, "mid_part.{}.weight")
    m = n_mid // 2 - 2
    if n_mid % 2 or m < 0:
        raise WeightsError(f"yjn870 FSRCNN checkpoint with {n_mid} mid_part layers: not 2*(m+2)")
    sources = [("first_part.0", "first_part.1")]
    sources += [(f"mid_part.{2 * i}", f"mid_part.{2 * i + 1}") for i in range(m + 2)]
    out: StateDict = {}
    try:
        for ours, (conv, act) in zip(_our_layers(m), sources, strict=True):
            out[f"{ours}.conv.weight"] = state[f"{conv}.weight"]
            out[f"{ours}.conv.bias"] = state[f"{conv}.bias"]
            out[f"{ours}.act.weight"] = state[f"{act}.weight"]
        out["deconv.weight"] = state["last_part.weight"]
        out["deconv.bias"] = state["last_part.bias"]
    except KeyError as exc:
        raise WeightsError(f"yjn870 FSRCNN checkpoint without {exc.args[0]!r}") from exc
    return out


def _from_tensorflow(state: StateDict) -> StateDict:
    n_conv = _count(state, "f{}")
    if n_conv < 4 or _count(state, "alpha{}") != n_conv - 1:
        raise WeightsError(
            f"TensorFlow graph with {n_conv} kernels (f1..) and {_count(state, 'alpha{}')} PReLU "
            "slopes (alpha1..): not an FSRCNN graph (it needs 4 + m convolutions, PReLU after "
            "all but the last; an ESPCN graph has 3 and no PReLU: use model 'espcn')"
        )
    for key, value in state.items():
        if re.fullmatch(r"mul_\d+/y", key) and not torch.allclose(
            value.float(), torch.tensor(_TF_PRELU_HALF)
        ):
            raise WeightsError(
                f"TensorFlow FSRCNN graph constant {key} = {value.tolist()}, expected 0.5 "
                "(PReLU written as relu(x) + alpha * (x - |x|) * 0.5)"
            )
    m = n_conv - 4
    out: StateDict = {}
    try:
        for i, ours in enumerate(_our_layers(m), start=1):
            out[f"{ours}.conv.weight"] = _hwio_to_oihw(state[f"f{i}"])
            out[f"{ours}.conv.bias"] = state[f"b{i}"].reshape(-1)
            out[f"{ours}.act.weight"] = state[f"alpha{i}"].reshape(-1)
        last = state[f"f{n_conv}"]
        scale = math.isqrt(last.shape[-1]) if last.ndim == 4 else 0
        if scale < 1 or scale * scale != last.shape[-1]:
            raise WeightsError(
                f"FSRCNN graph's last kernel has shape {tuple(last.shape)}: expected "
                "(k, k, d, scale**2) for a one-channel DepthToSpace"
            )
        out["deconv.weight"] = subpixel_to_deconv(last, scale)
        out["deconv.bias"] = state[f"b{n_conv}"].reshape(-1)
    except KeyError as exc:
        raise WeightsError(f"TensorFlow FSRCNN graph without constant {exc.args[0]!r}") from exc
    return out


def _is_ours(state: StateDict) -> bool:
    return "extract.conv.weight" in state and "deconv.weight" in state


def convert_state_dict(state: StateDict) -> StateDict:
    """Map a known FSRCNN layout (see the module docstring) onto srplug's keys.

    Raises :class:`~srplug.errors.WeightsError` when ``state`` matches none of them.
    """
    if _is_ours(state):
        return dict(state)
    if "first_part.0.weight" in state and "last_part.weight" in state:
        return _from_yjn870(state)
    if "f1" in state and "b1" in state:
        return _from_tensorflow(state)
    raise WeightsError(
        "not an FSRCNN checkpoint: expected srplug's keys (extract.conv.weight ... "
        "deconv.weight), yjn870/FSRCNN-pytorch's (first_part, mid_part, last_part) or an OpenCV "
        f"dnn_superres FSRCNN graph (f1, b1, alpha1 ...), got [{_describe(state)}]"
    )


def graph_scale(path: str | Path) -> int:
    """Check that the frozen graph in ``path`` has FSRCNN's structure; return its scale.

    The structure checked: stride-1, dilation-1, SAME, NHWC ``Conv2D`` layers, a PReLU
    (``Relu``, ``Abs``, ``Sub``, ``Mul``, ``Mul``, ``Add``) after all but the last, then one
    ``DepthToSpace`` and a ``BiasAdd``. Raises :class:`~srplug.errors.WeightsError`.
    """
    from srplug.formats.tensorflow_pb import read_graph

    nodes = read_graph(path)
    ops = [n.op for n in nodes]
    convs = [n for n in nodes if n.op == "Conv2D"]
    d2s = [n for n in nodes if n.op == "DepthToSpace"]
    if len(d2s) != 1 or not convs:
        raise WeightsError(f"{path}: not an FSRCNN graph (no single DepthToSpace after convs)")
    after = [n for n in nodes if d2s[0].name in n.inputs]
    if [n.op for n in after] != ["BiasAdd"]:
        found = ", ".join(n.op for n in after) or "nothing"
        hint = " (an ESPCN graph: use model 'espcn')" if "Tanh" in found else ""
        raise WeightsError(
            f"{path}: DepthToSpace is followed by {found}, FSRCNN graphs add a bias{hint}"
        )
    for conv in convs:
        if (
            conv.attrs.get("padding") != b"SAME"
            or list(conv.attrs.get("strides", [1, 1, 1, 1])) != [1, 1, 1, 1]
            or list(conv.attrs.get("dilations", [1, 1, 1, 1])) != [1, 1, 1, 1]
            or conv.attrs.get("data_format", b"NHWC") != b"NHWC"
        ):
            raise WeightsError(f"{path}: convolution {conv.name} is not stride-1 SAME NHWC")
    n_prelu = len(convs) - 1
    if ops.count("Abs") != n_prelu or ops.count("Relu") != n_prelu:
        raise WeightsError(
            f"{path}: expected {n_prelu} PReLU activations (Relu + Abs pairs), found "
            f"{ops.count('Relu')} Relu and {ops.count('Abs')} Abs"
        )
    scale = d2s[0].attrs.get("block_size")
    if not isinstance(scale, int) or scale < 1:
        raise WeightsError(f"{path}: DepthToSpace without a valid block_size ({scale!r})")
    return scale


def make_options_from_weights(name: str) -> Callable[[Path, StateDict], dict[str, Any]]:
    """The ``options_from_weights`` of the model registered as ``name`` (a key of
    :data:`VARIANTS`): ``d``, ``s``, ``m`` from the tensors and ``scale`` from the
    graph (``.pb``) or an ``_x<scale>`` in the file name.

    Weights whose ``d, s, m`` are exactly another variant's defaults are refused with a
    :class:`~srplug.errors.WeightsError` naming the model to use.
    """

    def options_from_weights(path: Path, state: StateDict) -> dict[str, Any]:
        ours = convert_state_dict(state)
        first, last = ours["extract.conv.weight"], ours["deconv.weight"]
        if first.shape[1] != 1 or last.shape[1] != 1:
            raise WeightsError(
                f"{path}: an FSRCNN for {first.shape[1]} input / {last.shape[1]} output "
                "channels; srplug's FSRCNN works on the Y channel only"
            )
        if tuple(last.shape[-2:]) != (DECONV_KERNEL, DECONV_KERNEL):
            raise WeightsError(
                f"{path}: transposed convolution of {tuple(last.shape[-2:])} taps; srplug's "
                f"FSRCNN uses {DECONV_KERNEL}x{DECONV_KERNEL}"
            )
        options: dict[str, Any] = {
            "d": int(first.shape[0]),
            "s": int(ours["shrink.conv.weight"].shape[0]),
            "m": sum(1 for key in ours if re.fullmatch(r"mapping\.\d+\.conv\.weight", key)),
        }
        for other, config in VARIANTS.items():
            if other != name and config == options and VARIANTS[name] != options:
                raise WeightsError(
                    f"{path} holds {other} weights (d={options['d']}, s={options['s']}, "
                    f"m={options['m']}): load them with srplug.get({other!r}, ...) instead of "
                    f"{name!r}"
                )
        if "f1" in state and Path(path).suffix.lower() == ".pb":
            scale: int | None = graph_scale(path)
        else:
            scale = scale_from_name(path)
        if scale is not None:
            options["scale"] = scale
        return options

    options_from_weights.__qualname__ = f"options_from_weights[{name}]"
    return options_from_weights
