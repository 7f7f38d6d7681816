"""Seamless tiled inference: receptive-field overlap, blending, streaming and OOM back-off.

An image is cut into a grid of *cores* (``tile`` x ``tile`` low-resolution pixels; the cores
partition the image). Each core is run through the network with ``margin`` extra pixels of
context on every side (clipped at the image border) and ``blend // 2`` more pixels that are
cross-faded linearly with the neighbouring tile. When ``margin`` is at least the network's
receptive-field radius, every output pixel a tile keeps is exactly the untiled value, so for
convolution-only models the tiled result equals the untiled one up to float rounding; for
models with global operations (channel attention) the seams are cross-faded instead.

Tiles are streamed: the input and the preallocated output stay on the CPU, each tile is
moved to the device, run, and its result copied back, so the whole image never sits on the
device. An out-of-memory error halves the tile size and starts again.
"""

from __future__ import annotations

import copy
import itertools
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from srplug.errors import InputError, OutOfMemoryError

__all__ = [
    "DEFAULT_CONTEXT",
    "MIN_TILE",
    "ReceptiveField",
    "Span",
    "auto_tile",
    "is_out_of_memory",
    "measure_receptive_field",
    "plan_axis",
    "receptive_field",
    "run_tiled",
    "tiled_forward",
]

Forward = Callable[[torch.Tensor], torch.Tensor]

MIN_TILE = 8
"""Smallest core size (low-resolution pixels) the out-of-memory back-off goes down to."""
DEFAULT_CONTEXT = 32
"""Context margin (LR pixels) for models whose receptive field is global or too large to
measure; they are also cross-faded over ``DEFAULT_BLEND`` pixels."""
DEFAULT_BLEND = 16
PROBE_SIZES = (40, 96)
"""Square probe sizes (LR pixels) tried in turn to measure the receptive field."""
SAFETY = 1
"""Pixels added to a measured radius."""
THIN = 16
"""Width of the probe across the direction being measured."""

_OOM_MARKERS = ("out of memory", "can't allocate", "cannot allocate", "defaultcpuallocator")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/CPU allocation failures: ``torch.cuda.OutOfMemoryError``, ``MemoryError``
    and ``RuntimeError`` saying 'out of memory' or 'DefaultCPUAllocator: can't allocate'."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MARKERS)


# ------------------------------------------------------------------------ receptive field


@dataclass(frozen=True)
class ReceptiveField:
    """How far (in low-resolution pixels) an output pixel's inputs reach.

    ``radius`` is ``None`` when the field is global (global pooling) or larger than the
    biggest probe; ``source`` is ``"hint"`` (the module's ``receptive_field`` attribute) or
    ``"measured"`` (impulse response).
    """

    radius: int | None
    source: Literal["hint", "measured"]
    probe: int = 0
    """Side of the probe that measured it (0 for a hint)."""

    @property
    def local(self) -> bool:
        return self.radius is not None

    def describe(self) -> str:
        if self.radius is None and self.source == "hint":
            return "global (declared by the model): tiles are cross-faded"
        if self.radius is None:
            return f"global or > {self.probe // 2 - 2} px (probe {self.probe} px): cross-faded"
        return f"{self.radius} LR px ({self.source})"


_CACHE: weakref.WeakKeyDictionary[nn.Module, ReceptiveField] = weakref.WeakKeyDictionary()


def _extent(diff: torch.Tensor, centre: int, scale: int, size: int) -> int | None:
    """Largest LR distance from ``centre`` of the rows (dim -2) where ``diff`` is nonzero;
    ``None`` when it reaches the probe's border."""
    rows = diff.flatten(0, -3).amax(dim=(0, 2)) if diff.dim() > 2 else diff
    hit = torch.nonzero(rows > 0).flatten()
    if hit.numel() == 0:
        return 0
    lo, hi = int(hit.min()) // scale, int(hit.max()) // scale
    if lo <= 1 or hi >= size - 2:
        return None
    return max(centre - lo, hi - centre)


def _impulse_radius(
    forward: Forward,
    channels: int,
    scale: int,
    shape: tuple[int, int],
    device: torch.device,
    dtype: torch.dtype,
) -> int | None:
    """Rows (dim -2) an output change reaches from a bump at the centre of a ``shape`` probe."""
    gen = torch.Generator().manual_seed(1234)
    base = 0.2 + 0.6 * torch.rand(1, channels, *shape, generator=gen, dtype=torch.float64)
    bumped = base.clone()
    cy, cx = shape[0] // 2, shape[1] // 2
    bumped[:, :, cy, cx] += 0.15
    with torch.inference_mode():
        a = forward(base.to(device, dtype)).double().cpu()
        b = forward(bumped.to(device, dtype)).double().cpu()
    diff = (a - b).abs()
    peak = float(diff.max())
    if not math.isfinite(peak) or peak == 0.0:
        return 0 if peak == 0.0 else None
    threshold = 0.0 if dtype == torch.float64 else peak * 1e-4  # float64: exact zeros
    return _extent((diff > threshold).double(), cy, scale, shape[0])


def measure_receptive_field(
    module: nn.Module,
    *,
    channels: int,
    scale: int,
    device: torch.device | None = None,
    sizes: tuple[int, ...] = PROBE_SIZES,
) -> ReceptiveField:
    """Measure ``module``'s receptive-field radius by impulse response (no cache).

    A random ``(1, channels, n, 16)`` probe and a copy with its centre pixel raised are run
    through a float64 copy of the module on the CPU (through the module as it is when it
    cannot run in float64); the output pixels that change, mapped back to LR pixels, give the
    radius (rows; columns the same way on the transposed probe, so a probe costs ``16 / n``
    of a square one). Sizes in ``sizes`` are tried in turn; a change reaching the border means
    the field is global or larger than the last probe (``radius=None``).
    """
    try:
        probe_module: nn.Module = copy.deepcopy(module).to("cpu", torch.float64)
        run_device, run_dtype = torch.device("cpu"), torch.float64
        probe_module(torch.zeros(1, channels, 4, 4, dtype=torch.float64))
    except Exception:  # modules that only run in their own dtype/device
        probe_module = module
        param = next(iter(module.parameters()), None)
        run_device = device or (param.device if param is not None else torch.device("cpu"))
        run_dtype = param.dtype if param is not None else torch.float32
    size = sizes[-1]
    for size in sizes:  # thin probes: one for the vertical reach, one for the horizontal
        reach = [
            _impulse_radius(probe_module, channels, scale, (size, THIN), run_device, run_dtype),
            _impulse_radius(
                lambda t: probe_module(t.transpose(-1, -2)).transpose(-1, -2),
                channels,
                scale,
                (size, THIN),
                run_device,
                run_dtype,
            ),
        ]
        if None not in reach:
            return ReceptiveField(max(reach) + SAFETY, "measured", size)  # type: ignore[type-var]
    return ReceptiveField(None, "measured", size)


def receptive_field(module: nn.Module, *, channels: int, scale: int) -> ReceptiveField:
    """``module``'s receptive field: its ``receptive_field`` attribute when it has one (an int
    radius in LR pixels, or ``None`` for global), else measured once and cached per module."""
    if hasattr(module, "receptive_field"):
        hint = module.receptive_field
        if hint is not None and (isinstance(hint, bool) or not isinstance(hint, int) or hint < 0):
            raise InputError(
                f"{type(module).__name__}.receptive_field must be a non-negative int (LR "
                f"pixels) or None (global), got {hint!r}"
            )
        return ReceptiveField(hint, "hint")
    found = _CACHE.get(module)
    if found is None:
        found = measure_receptive_field(module, channels=channels, scale=scale)
        _CACHE[module] = found
    return found


# ---------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Span:
    """One tile along one axis, in LR pixels: the network sees ``[start, stop)``; its output
    is kept on ``[keep_start, keep_stop)``, fading in over ``fade_in`` pixels from
    ``keep_start`` and out over ``fade_out`` pixels up to ``keep_stop``."""

    start: int
    stop: int
    keep_start: int
    keep_stop: int
    fade_in: int
    fade_out: int

    def weights(self, scale: int) -> torch.Tensor | None:
        """Per output pixel weight ``(scale * (keep_stop - keep_start),)``, or ``None`` (all 1)."""
        if not self.fade_in and not self.fade_out:
            return None
        w = torch.ones(scale * (self.keep_stop - self.keep_start))
        if self.fade_in:
            n = scale * self.fade_in
            w[:n] = (torch.arange(n, dtype=torch.float32) + 0.5) / n
        if self.fade_out:
            n = scale * self.fade_out
            w[-n:] = 1.0 - (torch.arange(n, dtype=torch.float32) + 0.5) / n
        return w


def plan_axis(length: int, tile: int, margin: int, blend: int = 0) -> list[Span]:
    """Cut ``[0, length)`` into cores of at most ``tile`` pixels (sizes equalised) and the
    spans a network must see: each core widened by ``blend // 2`` cross-fade pixels at
    inner boundaries and by ``margin`` context pixels, clipped to the image.

    The fades of neighbouring spans are complementary (they sum to 1 per output pixel).
    """
    if tile < 1:
        raise InputError(f"tile must be a positive number of pixels, got {tile}")
    count = max(1, math.ceil(length / tile))
    bounds = [round(k * length / count) for k in range(count + 1)]
    core = min(b - a for a, b in itertools.pairwise(bounds))
    half = min(blend // 2, core // 2)
    spans = []
    for k in range(count):
        fade_in = half if k > 0 else 0
        fade_out = half if k < count - 1 else 0
        keep_start, keep_stop = bounds[k] - fade_in, bounds[k + 1] + fade_out
        spans.append(
            Span(
                max(0, keep_start - margin),
                min(length, keep_stop + margin),
                keep_start,
                keep_stop,
                2 * fade_in,
                2 * fade_out,
            )
        )
    return spans


def _oom_error(what: str, tile: int | None, exc: BaseException) -> OutOfMemoryError:
    hint = (
        f"a tile of {tile} px still does not fit even after halving down to {MIN_TILE} px; "
        "free memory, use a smaller model, or run on the CPU"
        if tile is not None
        else "pass tile=N (e.g. tile=256; --tile 256 on the command line) or tile='auto' to "
        "run it in tiles"
    )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return OutOfMemoryError(f"out of memory while {what} ({first}); {hint}")


def tiled_forward(
    forward: Forward,
    x: torch.Tensor,
    *,
    scale: int,
    tile: int,
    margin: int,
    blend: int = 0,
    device: torch.device | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run ``forward`` over ``x`` tile by tile into a CPU output.

    ``x`` is ``(N, C, H, W)`` float (kept where it is, normally the CPU); ``forward`` maps a
    ``(N, C, h, w)`` tile on ``device`` to ``(N, C, h*scale, w*scale)``. Returns ``out`` (or
    a new zero-filled CPU float32 tensor) ``(N, C, H*scale, W*scale)``.
    """
    n, c, height, width = x.shape
    device = device or x.device
    if out is None:
        out = torch.zeros(n, c, height * scale, width * scale)
    else:
        out.zero_()
    rows = plan_axis(height, tile, margin, blend)
    cols = plan_axis(width, tile, margin, blend)
    for ry in rows:
        wy = ry.weights(scale)
        for rx in cols:
            wx = rx.weights(scale)
            piece = x[:, :, ry.start : ry.stop, rx.start : rx.stop].to(device)
            result = forward(piece)
            top, left = scale * (ry.keep_start - ry.start), scale * (rx.keep_start - rx.start)
            kept = result[
                :,
                :,
                top : top + scale * (ry.keep_stop - ry.keep_start),
                left : left + scale * (rx.keep_stop - rx.keep_start),
            ].to("cpu", torch.float32)
            target = out[
                :,
                :,
                scale * ry.keep_start : scale * ry.keep_stop,
                scale * rx.keep_start : scale * rx.keep_stop,
            ]
            if wy is None and wx is None:
                target.copy_(kept)
                continue
            weight = (wy if wy is not None else torch.ones(kept.shape[2]))[:, None] * (
                wx if wx is not None else torch.ones(kept.shape[3])
            )[None, :]
            target.add_(kept * weight)
    return out


def run_tiled(
    forward: Forward,
    x: torch.Tensor,
    *,
    scale: int,
    tile: int,
    margin: int,
    blend: int = 0,
    device: torch.device | None = None,
    on_backoff: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, int]:
    """:func:`tiled_forward` with out-of-memory back-off: the tile size is halved (down to
    :data:`MIN_TILE`) and the image started again. Returns ``(output, tile used)``.

    Raises :class:`~srplug.errors.OutOfMemoryError` when even the smallest tile fails or the
    CPU output cannot be allocated. ``on_backoff(old, new)`` is told of every halving.
    """
    n, c, height, width = x.shape
    try:
        out = torch.zeros(n, c, height * scale, width * scale)
    except (RuntimeError, MemoryError) as exc:
        if not is_out_of_memory(exc):
            raise
        gib = n * c * height * width * scale * scale * 4 / 2**30
        raise OutOfMemoryError(
            f"the {width * scale}x{height * scale} output ({gib:.1f} GiB as float32) does not "
            "fit in host memory; upscale a smaller image or crop it into parts"
        ) from exc
    while True:
        try:
            return (
                tiled_forward(
                    forward,
                    x,
                    scale=scale,
                    tile=tile,
                    margin=margin,
                    blend=blend,
                    device=device,
                    out=out,
                ),
                tile,
            )
        except (RuntimeError, MemoryError) as exc:
            if not is_out_of_memory(exc):
                raise
            if device is not None and device.type == "cuda":
                torch.cuda.empty_cache()
            if tile // 2 < MIN_TILE:
                raise _oom_error(f"upscaling {width}x{height} in tiles", tile, exc) from exc
            if on_backoff is not None:
                on_backoff(tile, tile // 2)
            tile //= 2


# ------------------------------------------------------------------------------- auto size


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def _widest(module: nn.Module) -> int:
    widths = [
        m.out_channels for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    return max(widths, default=64)


def auto_tile(
    module: nn.Module,
    *,
    channels: int,
    scale: int,
    device: torch.device,
    dtype: torch.dtype,
    margin: int,
    blend: int = 0,
    batch: int = 1,
    free_bytes: int | None = None,
) -> int:
    """A core size (LR pixels, multiple of 8, 32 to 1024) whose tiles should fit in memory.

    Budget: half the free GPU memory, or a quarter of the available host memory capped at
    1 GiB on the CPU (tiles are there to keep the footprint small). Cost per LR pixel: about
    four maps of the module's widest convolution plus three of the output, in ``dtype``.
    """
    free = _free_bytes(device) if free_bytes is None else free_bytes
    budget = free // 2 if device.type == "cuda" else min(free // 4, 1 << 30)
    elem = torch.finfo(dtype).bits // 8
    per_pixel = batch * elem * (4 * _widest(module) + 3 * channels * scale * scale)
    side = int(math.sqrt(max(budget, 1) / per_pixel))
    core = side - 2 * margin - blend
    return int(min(1024, max(32, core // 8 * 8)))
