"""Compute precision, measured rather than declared: shared by inference and training.

:func:`probe_inference` runs a network in float32 and in the candidate low precision
(bfloat16; float16 on GPUs without bfloat16; both on CUDA) on a probe image, and keeps the low
precision only when its output is finite, close to float32 (PSNR and maximum error) and it
is faster. The helpers :func:`candidate`, :func:`sync` and :func:`time_interleaved` are
also what :mod:`srplug.train.precision` uses for its training-step probe.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from srplug.errors import InputError
from srplug.layout import to_memory_format

__all__ = [
    "DTYPES",
    "InferenceProbe",
    "Precision",
    "candidate",
    "probe_image",
    "probe_inference",
    "resolve_fixed",
    "sync",
    "time_interleaved",
]

Precision = Literal["fp32", "bf16", "fp16"]
DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def resolve_fixed(mode: str, device: torch.device) -> Precision:
    """Check a non-``auto`` mode against the device."""
    if mode == "fp16" and device.type != "cuda":
        raise InputError("precision 'fp16' needs a CUDA device; use 'bf16' or 'fp32' on CPU")
    if mode not in ("fp32", "bf16", "fp16"):
        raise InputError(f"unknown precision {mode!r}: use 'fp32', 'bf16', 'fp16' or 'auto'")
    return mode  # type: ignore[return-value]


def candidate(device: torch.device) -> Precision:
    """The low precision ``auto`` tries: bf16, or fp16 on GPUs without bfloat16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp16"
    return "bf16"


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (timings); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    runs: Mapping[str, Callable[[], object]], steps: int, device: torch.device
) -> dict[str, float]:
    """Median milliseconds of each callable over ``steps`` rounds, run in turn each round
    (so a slow-down of the machine hits all of them alike)."""
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(steps):
        for key, fn in runs.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[key].append(1000.0 * (time.perf_counter() - start))
    return {key: statistics.median(values) for key, values in times.items()}


def probe_image(channels: int, size: int = 96) -> torch.Tensor:
    """A natural-image probe ``(1, channels, size, size)`` float32 in [0, 1]: a crop of the
    built-in sample image (BT.601 studio-range Y for ``channels=1``)."""
    from srplug.color import rgb_to_ycbcr
    from srplug.default_commands import sample_image_path
    from srplug.image import to_tensor
    from srplug.io import read_image

    rgb, _ = to_tensor(read_image(sample_image_path()))
    rgb = rgb[:, :3, :size, :size].contiguous()
    return rgb if channels == 3 else rgb_to_ycbcr(rgb)[:, :1].contiguous()


@dataclass(frozen=True)
class InferenceProbe:
    """What ``precision="auto"`` measured and chose (times: median ms per forward pass;
    PSNR/max error of each low precision against float32 on the clamped [0, 1] output)."""

    chosen: Precision
    fp32_ms: float
    low_ms: dict[str, float] = field(default_factory=dict)
    psnr: dict[str, float] = field(default_factory=dict)
    max_error: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    """Why each candidate was not chosen."""
    probe_shape: tuple[int, ...] = ()

    def describe(self) -> str:
        parts = [f"fp32 {self.fp32_ms:.2f} ms"]
        for mode, ms in self.low_ms.items():
            why = f" rejected: {self.rejected[mode]}" if mode in self.rejected else ""
            parts.append(
                f"{mode} {ms:.2f} ms, PSNR {self.psnr[mode]:.1f} dB, max error "
                f"{self.max_error[mode]:.2e}{why}"
            )
        return f"precision auto -> {self.chosen} ({'; '.join(parts)})"


def probe_inference(
    module: nn.Module,
    probe: torch.Tensor,
    *,
    device: torch.device,
    candidates: tuple[Precision, ...] | None = None,
    steps: int = 3,
    min_speedup: float = 1.1,
    min_psnr: float = 45.0,
    max_error: float = 8 / 255,
    memory_format: torch.memory_format = torch.contiguous_format,
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> InferenceProbe:
    """Measure float32 against low precisions on ``probe`` with copies of ``module``.

    ``probe`` is ``(N, C, h, w)`` float32 in [0, 1]. A candidate is kept when its output is
    finite, its PSNR against float32 (peak 1, clamped outputs) is >= ``min_psnr``, its
    largest difference <= ``max_error``, and it is ``min_speedup`` times faster (median of
    ``steps`` interleaved passes after a warm-up); the fastest such one is chosen, else fp32.
    ``forward(module, x)`` runs a pass (default ``module(x)``). ``module`` is left untouched.
    """
    if candidates is None:
        candidates = ("bf16", "fp16") if device.type == "cuda" else (candidate(device),)
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            candidates = ("fp16",)
    run = forward or (lambda m, t: m(t))
    copies: dict[str, nn.Module] = {}
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}
    rejected: dict[str, str] = {}
    for mode in ("fp32", *candidates):
        dtype = DTYPES[mode]
        m = copy.deepcopy(module).to(device=device, dtype=dtype).eval()
        m = to_memory_format(m, memory_format)
        x = probe.to(device=device, dtype=dtype).contiguous(memory_format=memory_format)
        try:
            with torch.inference_mode():
                outputs[mode] = run(m, x).float()  # also the warm-up
        except Exception as exc:  # an op without a kernel in this dtype
            if mode == "fp32":
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            rejected[mode] = f"fails to run ({type(exc).__name__}: {first[:200]})"
            continue
        copies[mode], inputs[mode] = m, x

    def timed(mode: str) -> Callable[[], object]:
        def go() -> object:
            with torch.inference_mode():
                return run(copies[mode], inputs[mode])

        return go

    times = time_interleaved({mode: timed(mode) for mode in copies}, steps, device)
    reference = outputs["fp32"].clamp(0.0, 1.0)
    psnr: dict[str, float] = {}
    errors: dict[str, float] = {}
    for mode in candidates:
        if mode not in copies:
            psnr[mode], errors[mode] = float("nan"), float("nan")
            continue
        out = outputs[mode]
        if not torch.isfinite(out).all():
            psnr[mode], errors[mode] = float("nan"), float("inf")
            rejected[mode] = "NaN or Inf in the output"
            continue
        diff = out.clamp(0.0, 1.0) - reference
        mse = float(diff.double().pow(2).mean())
        psnr[mode] = 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")
        errors[mode] = float(diff.abs().max())
        if psnr[mode] < min_psnr or errors[mode] > max_error:
            rejected[mode] = (
                f"too far from fp32 (need PSNR >= {min_psnr:g} dB and max error <= {max_error:.3g})"
            )
        elif times["fp32"] / times[mode] < min_speedup:
            rejected[mode] = f"not {min_speedup:g}x faster than fp32"
    good = [m for m in candidates if m in copies and m not in rejected]
    chosen: Precision = min(good, key=lambda m: times[m]) if good else "fp32"
    return InferenceProbe(
        chosen=chosen,
        fp32_ms=times["fp32"],
        low_ms={m: times.get(m, float("nan")) for m in candidates},
        psnr=psnr,
        max_error=errors,
        rejected=rejected,
        probe_shape=tuple(probe.shape),
    )
