"""ONNX export of a model's network, with dynamic height and width, and a parity check.

>>> from srplug.export import to_onnx
>>> report = to_onnx("espcn", "espcn_x4.onnx", scale=4)
>>> report.max_abs_diff            # onnxruntime against PyTorch on odd-sized inputs

The graph is the network alone: ``input`` ``(N, C, H, W)`` float32 in [0, 1] to ``output``
``(N, C, H*s, W*s)``, with C = 3 (RGB) or 1 (BT.601 studio-range Y, for ``channels="y"``
models: the caller converts colour, as OpenCV dnn_superres does). ``N``, ``H`` and ``W`` are
dynamic. Exporting needs the ``onnx`` and ``onnxscript`` packages; the check needs
``onnxruntime``.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srplug.errors import InputError, SrplugError
from srplug.layout import to_memory_format

__all__ = [
    "CHECK_SIZES",
    "DEFAULT_OPSET",
    "ExportError",
    "ExportReport",
    "bicubic_upscale",
    "check_onnx",
    "to_onnx",
]

DEFAULT_OPSET = 18
"""Opset the exporter writes (>= 17; 18 is what torch's dynamo exporter emits natively)."""
CHECK_SIZES = ((1, 17, 23), (2, 31, 9))
"""``(N, H, W)`` inputs of the parity check: odd sizes, different from the export size."""


class ExportError(SrplugError):
    """A model that cannot be exported, or whose exported graph does not match PyTorch."""


@dataclass(frozen=True)
class ExportReport:
    """What :func:`to_onnx` wrote and how closely onnxruntime reproduces PyTorch."""

    path: Path
    name: str
    scale: int
    channels: int
    opset: int
    max_abs_diff: float | None = None
    """Largest |onnxruntime - PyTorch| over :data:`CHECK_SIZES` (``None``: not checked)."""
    checked_shapes: tuple[tuple[int, ...], ...] = field(default_factory=tuple)


def _module_of(model: Any) -> tuple[nn.Module, str, int, int]:
    module = getattr(model, "model", None) or getattr(model, "_module", None)
    if not isinstance(module, nn.Module):
        raise InputError(f"{model!r} has no torch network to export")
    channels = 3 if getattr(model, "channels", "rgb") == "rgb" else 1
    return module, model.name, int(model.scale), channels


def _require(module_name: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ExportError(
            f"{purpose} needs the '{module_name}' package; install it with "
            f"pip install {module_name} (pip install onnx onnxscript onnxruntime for all)"
        ) from exc


class _Float32(nn.Module):
    """The network on float32 input in the graph's contiguous layout."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.net = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def to_onnx(
    model: Any,
    path: str | os.PathLike[str],
    *,
    scale: int | None = None,
    weights: str | os.PathLike[str] | None = "default",
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    atol: float = 1e-4,
    **options: Any,
) -> ExportReport:
    """Export ``model`` (a registered name or an upsampler from ``srplug.get``) to ``path``.

    With a name, ``scale``, ``weights`` and ``options`` go to ``srplug.get``. ``opset`` must be
    >= 17. With ``check`` the file is run in onnxruntime on :data:`CHECK_SIZES` and compared
    with PyTorch; a difference above ``atol`` raises :class:`ExportError` (the file is kept
    for inspection). Returns an :class:`ExportReport`.
    """
    if opset < 17:
        raise InputError(f"opset {opset} is too old: srplug exports with opset >= 17")
    if isinstance(model, str):
        import srplug

        model = srplug.get(model, scale=scale, weights=weights, **options)
    elif scale is not None and scale != getattr(model, "scale", scale):
        raise InputError(f"scale={scale} differs from the upsampler's x{model.scale}")
    module, name, scale, channels = _module_of(model)
    _require("onnx", "ONNX export")
    _require("onnxscript", "ONNX export (torch's dynamo exporter)")
    net = _Float32(_clone_float32(module)).eval()
    example = torch.rand(1, channels, 32, 40)
    height, width = torch.export.Dim("height", min=1), torch.export.Dim("width", min=1)
    batch = torch.export.Dim("batch", min=1)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            _quiet_exporter(),
            _exportable_imresize(net),
            torch.enable_grad(),
        ):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                net,
                (example,),
                dynamo=True,
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes={"x": {0: batch, 2: height, 3: width}},
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
            program.save(str(target))
    except Exception as exc:
        root = exc
        while root.__cause__ is not None:  # the exporter wraps the torch.export error
            root = root.__cause__
        lines = [line.strip() for line in str(root).splitlines() if line.strip()]
        detail = f"{type(root).__name__}: {' '.join(lines[:3])[:500]}"
        raise ExportError(
            f"torch.onnx.export failed for {name!r} x{scale} ({detail}); models whose forward "
            "branches on the image size cannot be exported with dynamic height and width"
        ) from exc
    report = ExportReport(target, name, scale, channels, opset)
    if not check:
        return report
    diff, shapes = check_onnx(target, net, channels=channels, scale=scale)
    report = ExportReport(target, name, scale, channels, opset, diff, shapes)
    if not diff <= atol:
        raise ExportError(
            f"the ONNX graph of {name!r} x{scale} differs from PyTorch by {diff:.3g} "
            f"(> {atol:g}) on inputs {shapes}; the file {str(target)!r} is kept for inspection"
        )
    return report


@contextlib.contextmanager
def _quiet_exporter():
    """Silence torch.onnx's registration chatter (e.g. 'torchvision is not installed')."""
    import logging

    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def bicubic_upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB bicubic enlargement by an integer ``scale`` as convolutions (exportable).

    Same result as :func:`srplug.resize.imresize` for integer enlargement of ``(N, C, H, W)``
    (H, W >= 2): symmetric border, Keys a=-0.5; each of the ``scale`` output phases along an
    axis is a 5-tap filter, so the graph has no shape-dependent weight matrices.
    """
    import numpy as np

    from srplug.resize import _cubic

    phases = (np.arange(scale) + 0.5) / scale - 0.5
    taps = np.arange(-2, 3)
    w = _cubic(phases[:, None] - taps[None, :])
    w = torch.from_numpy(w / w.sum(axis=1, keepdims=True)).to(x.dtype)
    n, c, h, width = x.shape
    y = x.reshape(n * c, 1, h, width)
    for axis in (2, 3):  # rows, then columns, as imresize for equal scales
        first, last = y.narrow(axis, 0, 2).flip(axis), y.narrow(axis, y.shape[axis] - 2, 2)
        padded = torch.cat([first, y, last.flip(axis)], dim=axis)
        kernel = w.view(scale, 1, 5, 1) if axis == 2 else w.view(scale, 1, 1, 5)
        out = nn.functional.conv2d(padded, kernel)  # (B, scale, H, W): phase per channel
        if axis == 2:
            y = out.permute(0, 2, 1, 3).reshape(out.shape[0], 1, -1, out.shape[3])
        else:
            y = out.permute(0, 2, 3, 1).reshape(out.shape[0], 1, out.shape[2], -1)
    return y.reshape(n, c, y.shape[2], y.shape[3])


@contextlib.contextmanager
def _exportable_imresize(module: nn.Module):
    """Let modules that call :func:`srplug.resize.imresize` for integer enlargement (SRCNN's
    pre-upsampling, the bicubic model) trace with dynamic sizes: while exporting, the name
    ``imresize`` in their modules' namespaces runs :func:`bicubic_upscale` instead."""
    import sys

    from srplug import resize

    original = resize.imresize

    def exportable(x: torch.Tensor, scale: float | None = None, **kwargs: Any) -> torch.Tensor:
        plain = not kwargs.get("size") and kwargs.get("antialias", True) in (True, False)
        if plain and scale is not None and float(scale) == int(scale) and scale >= 1:
            if int(scale) == 1:
                return x
            if x.dim() == 4:
                return bicubic_upscale(x, int(scale))
        return original(x, scale, **kwargs)

    patched = []
    names = {type(m).__module__ for m in module.modules()} | {resize.__name__}
    for name in names:
        namespace = getattr(sys.modules.get(name), "__dict__", {})
        if namespace.get("imresize") is original:
            namespace["imresize"] = exportable
            patched.append(namespace)
    try:
        yield
    finally:
        for namespace in patched:
            namespace["imresize"] = original


def _clone_float32(module: nn.Module) -> nn.Module:
    import copy

    clone = copy.deepcopy(module).to("cpu", torch.float32)
    # parameters keep requires_grad: modules with a separate inference-only path (edge-SR's
    # strip loop) then trace their plain, shape-generic path
    return to_memory_format(clone, torch.contiguous_format).eval()


def check_onnx(
    path: str | os.PathLike[str],
    module: nn.Module,
    *,
    channels: int,
    scale: int,
    sizes: tuple[tuple[int, int, int], ...] = CHECK_SIZES,
    seed: int = 0,
) -> tuple[float, tuple[tuple[int, ...], ...]]:
    """Run ``path`` in onnxruntime (CPU) and ``module`` in PyTorch on random inputs of
    ``sizes`` ``(N, H, W)``; returns the largest absolute difference and the shapes used."""
    ort = _require("onnxruntime", "checking an ONNX export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    shapes = []
    for n, h, w in sizes:
        x = torch.rand(n, channels, h, w, generator=gen)
        with torch.inference_mode():
            expected = module(x).float()
        (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        if tuple(got.shape) != (n, channels, h * scale, w * scale):
            raise ExportError(
                f"the ONNX graph returned shape {tuple(got.shape)} for input {(n, channels, h, w)}"
            )
        worst = max(worst, float((torch.from_numpy(got) - expected).abs().max()))
        shapes.append((n, channels, h, w))
    return worst, tuple(shapes)
