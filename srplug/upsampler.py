"""Upsampler implementations: image-kind handling around a tensor-to-tensor core.

:class:`TensorUpsampler` does what every model needs (accepting numpy / PIL / torch images,
gray, RGB and alpha, integer and float pixels, giving them back alike); subclasses supply
:meth:`TensorUpsampler.upscale_tensor`. :class:`ModuleUpsampler` runs a ``torch.nn.Module``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from srplug.color import rgb_to_ycbcr, ycbcr_to_rgb
from srplug.errors import InputError, OutOfMemoryError, PluginError, SrplugError
from srplug.image import from_tensor, to_tensor
from srplug.layout import to_memory_format
from srplug.limits import check_output_size
from srplug.precision import DTYPES, InferenceProbe, probe_image, probe_inference, resolve_fixed
from srplug.protocols import Channels
from srplug.resize import imresize
from srplug.tiling import (
    DEFAULT_BLEND,
    DEFAULT_CONTEXT,
    MIN_TILE,
    ReceptiveField,
    auto_tile,
    is_out_of_memory,
    run_tiled,
)
from srplug.tiling import receptive_field as tiling_receptive_field

__all__ = [
    "ModuleUpsampler",
    "TensorUpsampler",
    "resolve_device",
    "resolve_dtype",
    "upscale_color",
]

_DTYPE_NAMES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}
KERNELS = ("auto", "fused", "eager")
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, as PIL's convert("L")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Parse ``device`` (default CPU) and check that torch can use it."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"device {device!r} is not a torch device name ('cpu', 'cuda:0' ...)"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device {str(dev)!r} was requested but torch sees no CUDA GPU here; use device='cpu'"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(
            f"device {str(dev)!r} does not exist: torch sees {torch.cuda.device_count()} GPU(s)"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device 'mps' was requested but it is not available; use device='cpu'")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """Parse ``dtype`` (default ``torch.float32``); floating dtypes only."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        key = dtype.lower().removeprefix("torch.")
        if key not in _DTYPE_NAMES:
            raise InputError(
                f"dtype {dtype!r} is not supported; use 'float32', 'bfloat16' or 'float16'"
            )
        return _DTYPE_NAMES[key]
    if isinstance(dtype, torch.dtype) and dtype in (torch.float32, torch.bfloat16, torch.float16):
        return dtype
    raise InputError(f"dtype {dtype!r} is not supported; use float32, bfloat16 or float16")


def upscale_color(
    color: torch.Tensor,
    network: Callable[[torch.Tensor], torch.Tensor],
    *,
    channels: Channels,
    scale: int,
) -> torch.Tensor:
    """Enlarge gray or RGB with a network that sees RGB or Y only (differentiable).

    ``color`` is ``(N, 1 | 3, h, w)`` float in [0, 1]; ``network`` maps ``(N, C, h, w)`` to
    ``(N, C, h*scale, w*scale)`` with C = 3 for ``channels="rgb"`` and 1 for ``"y"``. A ``"y"``
    network gets BT.601 luma while Cb/Cr are enlarged with MATLAB bicubic; gray goes to an RGB
    network replicated and comes back as luma. Returns ``(N, 1 | 3, h*scale, w*scale)``.
    """
    if color.shape[1] == 1 and channels == "y":  # gray is pure luma: no chroma to enlarge
        y = network((16.0 + 219.0 * color) / 255.0)
        return (y * 255.0 - 16.0) / 219.0
    rgb = color if color.shape[1] == 3 else color.expand(-1, 3, -1, -1)
    if channels == "rgb":
        out = network(rgb)
    else:
        ycbcr = rgb_to_ycbcr(rgb)
        y = network(ycbcr[:, :1])
        cbcr = imresize(ycbcr[:, 1:], float(scale))
        out = ycbcr_to_rgb(torch.cat([y, cbcr], dim=1))
    if color.shape[1] == 3:
        return out
    luma = torch.tensor(_LUMA, dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
    return (out * luma).sum(dim=1, keepdim=True)


class TensorUpsampler:
    """Base class: converts any accepted image to tensors and back.

    Subclasses implement :meth:`upscale_tensor` on ``(N, C, h, w)`` float32 tensors in
    [0, 1] on :attr:`device`, with C = 3 for ``channels="rgb"`` and 1 for ``"y"``.
    """

    model: torch.nn.Module | None = None

    def __init__(
        self,
        *,
        name: str,
        scale: int,
        channels: Channels = "rgb",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ) -> None:
        if channels not in ("rgb", "y"):
            raise InputError(f"channels must be 'rgb' or 'y', got {channels!r}")
        self.name = name
        self.scale = int(scale)
        self.channels: Channels = channels
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, scale={self.scale}, "
            f"channels={self.channels!r}, device={str(self.device)!r}, dtype={self.dtype})"
        )

    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` float32 in [0, 1] on :attr:`device` -> ``(N, C, h*s, w*s)``."""
        raise NotImplementedError

    def _checked_upscale(self, x: torch.Tensor) -> torch.Tensor:
        out = self.upscale_tensor(x)
        n, c, h, w = x.shape
        expected = (n, c, h * self.scale, w * self.scale)
        if tuple(out.shape) != expected:
            raise PluginError(
                f"model {self.name!r} returned a tensor of shape {tuple(out.shape)} for input "
                f"{tuple(x.shape)}; expected {expected}"
            )
        return out.float()

    def _streams(self) -> bool:
        """True when the image should stay on the CPU and the network see it in tiles."""
        return False

    def __call__(self, img: Any) -> Any:
        """Upscale ``img`` (numpy, PIL or torch; see :class:`~srplug.protocols.Upsampler`)."""
        x, layout = to_tensor(img)
        check_output_size(x.shape[-2], x.shape[-1], self.scale, batch=x.shape[0])
        with torch.inference_mode():
            x = x.to("cpu" if self._streams() else self.device)
            n_color = 3 if layout.channels >= 3 else 1
            color = upscale_color(
                x[:, :n_color], self._checked_upscale, channels=self.channels, scale=self.scale
            )
            if layout.has_alpha:
                alpha = imresize(x[:, n_color:], float(self.scale)).clamp(0.0, 1.0)
                color = torch.cat([color, alpha], dim=1)
        if layout.kind == "torch":
            color = color.clone()  # a normal tensor, usable outside inference mode
        if layout.kind == "numpy":
            return _numpy_in_strips(color, layout)
        return from_tensor(color, layout)


_STRIP_ROWS = 256


def _numpy_in_strips(color: torch.Tensor, layout: Any) -> Any:
    """:func:`from_tensor` for numpy results, ``_STRIP_ROWS`` rows at a time, so the float64
    intermediate never holds the whole (possibly huge) output."""
    import numpy as np

    height = color.shape[2]
    first = from_tensor(color[:, :, :_STRIP_ROWS], layout)
    if height <= _STRIP_ROWS:
        return first
    result = np.empty((height, *first.shape[1:]), dtype=first.dtype)
    result[:_STRIP_ROWS] = first
    for top in range(_STRIP_ROWS, height, _STRIP_ROWS):
        result[top : top + _STRIP_ROWS] = from_tensor(color[:, :, top : top + _STRIP_ROWS], layout)
    return result


class ModuleUpsampler(TensorUpsampler):
    """Runs a ``torch.nn.Module`` mapping ``(N, C, h, w)`` to ``(N, C, h*s, w*s)`` in [0, 1].

    The module is put in eval mode on :attr:`device` in :attr:`dtype`; on CPU it runs in
    ``channels_last`` memory format, which is several times faster for convolutions, and
    always under ``torch.inference_mode``.

    Options (all also ``srplug.get`` keywords):

    * ``tile``: ``None`` (whole image at once), an int (core tile size in LR pixels) or
      ``"auto"`` (chosen from free memory). Tiles overlap by the measured receptive field
      (:mod:`srplug.tiling`), so convolution-only models give the untiled result; the image
      stays on the CPU and tiles are streamed to the device; out-of-memory halves the tile.
    * ``tile_overlap``: context pixels per tile side instead of the receptive field.
    * ``precision``: ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"auto"`` (measured on a probe
      image by :func:`srplug.precision.probe_inference`; see :attr:`precision_report`).
    * ``compile``: run through ``torch.compile``; if compiling fails the module runs eagerly
      and :attr:`compile_report` says why.
    * ``ensemble``: x8 self-ensemble (4 rotations x flip, outputs averaged).
    * ``kernels``: ``"eager"`` (default here: the module is rewritten in place, so only
      modules the upsampler owns should be fused; ``srplug.get`` defaults to ``"auto"``),
      ``"fused"`` or ``"auto"``. ``"fused"`` rewrites
      the network with :func:`srplug.ops.fuse` (Winograd 3x3 convolutions with their ReLU and
      skip adds, fused attention and edge-SR heads; outputs equal eager ones up to float
      rounding, ~1e-6 relative). ``"auto"`` does so on the CPU in float32 when the C++
      extension is available (compiled once on first use, cached) and ``compile`` is off,
      else runs eagerly; :attr:`kernels_report` says which and why.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        name: str,
        scale: int,
        channels: Channels = "rgb",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        network: bool = True,
        tile: int | str | None = None,
        tile_overlap: int | None = None,
        precision: str | None = None,
        compile: bool = False,
        ensemble: bool = False,
        kernels: str = "eager",
    ) -> None:
        super().__init__(name=name, scale=scale, channels=channels, device=device, dtype=dtype)
        if kernels not in KERNELS:
            raise InputError(
                f"kernels must be one of {', '.join(map(repr, KERNELS))}, got {kernels!r}"
            )
        self.tile = _check_tile(tile)
        if tile_overlap is not None and (
            isinstance(tile_overlap, bool) or not isinstance(tile_overlap, int) or tile_overlap < 0
        ):
            raise InputError(f"tile_overlap must be an int >= 0 (LR pixels), got {tile_overlap!r}")
        self.tile_overlap = tile_overlap
        self.ensemble = bool(ensemble)
        self._memory_format = (
            torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        )
        self.precision_report: InferenceProbe | None = None
        if precision is not None:
            self.dtype = self._resolve_precision(module, precision, dtype)
        self._module = module.eval().to(device=self.device, dtype=self.dtype)
        if network:
            self._module = to_memory_format(self._module, self._memory_format)
        self.kernels_report = "eager: not a network" if not network else ""
        """Whether the fused kernels run (``"fused: ..."``) or not (``"eager: ..."``), and why."""
        if network:
            self._module = self._with_kernels(self._module, kernels, compile)
        self.model = self._module if network else None
        self._runner: Callable[[torch.Tensor], torch.Tensor] = self._module
        self.compile_report: str | None = None
        if compile:
            self._runner = self._compiled()
        self.last_tile: int | None = None
        """Core tile size the last tiled call ended with (after any out-of-memory halving)."""
        self._field: ReceptiveField | None = None

    # ------------------------------------------------------- fused kernels / precision / compile

    def _with_kernels(
        self, module: torch.nn.Module, kernels: str, compile: bool
    ) -> torch.nn.Module:
        import srplug.ops

        if kernels == "eager":
            self.kernels_report = "eager: kernels='eager'"
            return module
        if kernels == "fused":
            self.kernels_report = "fused: kernels='fused'"
            return srplug.ops.fuse(module, impl="auto")
        if self.device.type != "cpu" or self.dtype != torch.float32:
            self.kernels_report = (
                f"eager: the fused kernels pay off on the CPU in float32, this runs "
                f"{self.dtype} on {self.device}"
            )
            return module
        if compile:
            self.kernels_report = "eager: compile=True (torch.compile fuses instead)"
            return module
        st = srplug.ops.load()  # returns at once when already loaded
        if not st.loaded:
            self.kernels_report = f"eager: the C++ extension is unavailable ({st.reason})"
            return module
        self.kernels_report = "fused: CPU, float32, C++ extension loaded"
        return srplug.ops.fuse(module, impl="cpp")

    def _resolve_precision(
        self, module: torch.nn.Module, precision: str, dtype: object
    ) -> torch.dtype:
        if not isinstance(precision, str):
            raise InputError(
                f"precision must be 'fp32', 'bf16', 'fp16' or 'auto', not {precision!r}"
            )
        key = precision.lower()
        if dtype is not None:
            raise InputError(
                "give either dtype= or precision=, not both (precision='auto' measures which "
                "dtype to use)"
            )
        if key != "auto":
            return DTYPES[resolve_fixed(key, self.device)]
        channels = 3 if self.channels == "rgb" else 1
        self.precision_report = probe_inference(
            module,
            probe_image(channels),
            device=self.device,
            memory_format=self._memory_format,
            forward=lambda m, x: self._ensembled(m, x) if self.ensemble else m(x),
        )
        return DTYPES[self.precision_report.chosen]

    def _compiled(self) -> Callable[[torch.Tensor], torch.Tensor]:
        try:
            compiled = torch.compile(self._module)
        except Exception as exc:
            self._compile_failed(exc)
            return self._module
        state = {"checked": False}

        def run(x: torch.Tensor) -> torch.Tensor:
            if state["checked"]:
                return compiled(x)
            try:
                out = compiled(x)
            except Exception as exc:
                if is_out_of_memory(exc) or isinstance(exc, SrplugError):
                    raise
                self._compile_failed(exc)
                return self._module(x)
            state["checked"] = True
            return out

        return run

    def _compile_failed(self, exc: BaseException) -> None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        self.compile_report = (
            f"torch.compile failed for {self.name!r} ({type(exc).__name__}: {first[:300]}); "
            "running the model eagerly"
        )
        self._runner = self._module
        warnings.warn(self.compile_report, RuntimeWarning, stacklevel=3)

    # ---------------------------------------------------------------------------- running

    @staticmethod
    def _ensembled(net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """x8 self-ensemble: the mean over 4 rotations x (flip or not) of
        ``inverse(net(transform(x)))``; float32 result."""
        total: torch.Tensor | None = None
        for k in range(4):
            for flip in (False, True):
                t = torch.rot90(x, k, dims=(2, 3))
                t = t.flip(3) if flip else t
                y = net(t.contiguous(memory_format=_memory_format_of(x))).float()
                y = y.flip(3) if flip else y
                y = torch.rot90(y, -k, dims=(2, 3))
                total = y if total is None else total + y
        assert total is not None
        return total / 8.0

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """One pass over ``x`` on :attr:`device` (ensemble if asked): float32 result."""
        x = x.to(device=self.device, dtype=self.dtype).contiguous(memory_format=self._memory_format)
        if self.ensemble:
            return self._ensembled(self._runner, x)
        return self._runner(x).float()

    def _streams(self) -> bool:
        return self.tile is not None

    def receptive_field(self) -> ReceptiveField:
        """The network's receptive field (measured once; see :mod:`srplug.tiling`)."""
        if self._field is None:
            channels = 3 if self.channels == "rgb" else 1
            self._field = tiling_receptive_field(self._module, channels=channels, scale=self.scale)
        return self._field

    def tile_layout(self) -> tuple[int, int]:
        """``(margin, blend)`` in LR pixels: context per tile side, and the cross-fade band
        (0 for a local receptive field: the kept pixels are exact there). ``tile_overlap``,
        when given, replaces the measured context."""
        if self.tile_overlap is not None:  # the caller's context; cross-fading is harmless
            return self.tile_overlap, DEFAULT_BLEND
        field = self.receptive_field()
        if field.radius is None:
            return DEFAULT_CONTEXT, DEFAULT_BLEND
        return field.radius, 0

    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` float32 in [0, 1] -> ``(N, C, h*s, w*s)`` float32.

        Untiled, ``x`` is on :attr:`device` and so is the result; tiled, both are on the CPU.
        """
        if self.tile is None:
            try:
                return self._forward(x).contiguous()
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc):
                    raise
                h, w = x.shape[-2:]
                raise OutOfMemoryError(
                    f"out of memory upscaling {w}x{h} x{self.scale} with {self.name!r} on "
                    f"{self.device}; pass tile=256 (or tile='auto'; --tile on the command "
                    "line) to run it in tiles"
                ) from exc
        margin, blend = self.tile_layout()
        tile = self.tile
        if tile == "auto":
            tile = auto_tile(
                self._module,
                channels=x.shape[1],
                scale=self.scale,
                device=self.device,
                dtype=self.dtype,
                margin=margin,
                blend=blend,
                batch=x.shape[0],
            )
        out, self.last_tile = run_tiled(
            self._forward,
            x,
            scale=self.scale,
            tile=int(tile),
            margin=margin,
            blend=blend,
            device=self.device,
        )
        return out


def _memory_format_of(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _check_tile(tile: object) -> int | str | None:
    if tile is None or tile == "auto":
        return tile  # type: ignore[return-value]
    if isinstance(tile, str) and tile.isdigit():
        tile = int(tile)
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < MIN_TILE:
        raise InputError(
            f"tile must be None, 'auto' or an int >= {MIN_TILE} (LR pixels per tile), got {tile!r}"
        )
    return tile
