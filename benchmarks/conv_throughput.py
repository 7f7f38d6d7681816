"""This machine's 3x3 convolution ceiling, and how close EDSR-baseline x2 gets to it.

    python benchmarks/conv_throughput.py [--threads 1] [--rounds 7] [--size 96] [--json F]

Ceiling: a single ``nn.Conv2d(64, 64, 3, padding=1)`` (fp32, channels_last, bias, under
``torch.inference_mode``) on ``(1, 64, S, S)`` inputs, S in ``--ceiling-sizes`` (default
128, 256, 384); GFLOP/s = ``2 * 9 * 64 * 64 * S * S / seconds``. The ceiling is the best
per-size median over those sizes, and also the best single call (reported both).

EDSR-baseline x2 (16 residual blocks, 64 features; random weights, ``srplug.get(
"edsr-baseline", scale=2, weights=None)``) on a ``(1, 3, --size, --size)`` input: its
convolution FLOPs are counted analytically (``2 * k_h * k_w * C_in/groups * C_out * H_out *
W_out`` per ``nn.Conv2d``, output sizes taken from one forward with hooks; element-wise ops,
pixel shuffle and mean shifts not counted) and divided by the median forward time of the eager
network in channels_last (``kernels="eager"``, the network alone), of ``upsampler(x)`` (the
public call with its defaults: on the CPU the fused kernels, whose Winograd convolutions do
fewer multiplications than counted, so their figure is an effective rate that may pass the
ceiling) and of the same call with ``kernels="eager"``. The ceiling convolutions and the EDSR
forwards are timed interleaved, round by round, with the same torch thread count, so load from
other processes hits both alike.

Efficiency = EDSR GFLOP/s / ceiling GFLOP/s (both medians). Not a test: the numbers depend
on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from harness import interleaved_times, wall_seconds
from torch import nn


def conv_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-add FLOPs (x2) of every ``nn.Conv2d`` in ``model`` for input ``x``."""
    total = 0
    hooks = []

    def hook(mod: nn.Module, _: Any, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(mod, nn.Conv2d)
        kh, kw = mod.kernel_size
        c_in = mod.in_channels // mod.groups
        total += (
            2 * kh * kw * c_in * mod.out_channels * out.shape[-2] * out.shape[-1] * out.shape[0]
        )

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return total


def run(
    *,
    threads: int = 1,
    rounds: int = 7,
    size: int = 96,
    ceiling_sizes: tuple[int, ...] = (128, 256, 384),
    log: bool = True,
) -> dict[str, Any]:
    """Measure and return the figures (see the module docstring)."""
    import srplug

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(64, 64, 3, padding=1).eval().to(memory_format=torch.channels_last)
    conv.requires_grad_(False)
    ceil_inputs = {
        s: torch.rand(1, 64, s, s, generator=gen).contiguous(memory_format=torch.channels_last)
        for s in ceiling_sizes
    }
    ceil_flops = {s: 2 * 9 * 64 * 64 * s * s for s in ceiling_sizes}

    up = srplug.get("edsr-baseline", scale=2, weights=None)  # defaults: fused kernels on CPU
    eager_up = srplug.get("edsr-baseline", scale=2, weights=None, kernels="eager")
    eager_up.model.load_state_dict(up.model.state_dict())
    model = eager_up.model.eval().to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, size, size, generator=gen)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    flops = conv_flops(model, x_cl)

    contenders: dict[str, Callable[[], float]] = {
        f"conv 64->64 3x3 {s}x{s}": wall_seconds(lambda t=t: conv(t))
        for s, t in ceil_inputs.items()
    }
    contenders["edsr-baseline model (channels_last)"] = wall_seconds(lambda: model(x_cl))
    contenders["edsr-baseline upsampler"] = wall_seconds(lambda: up(x))
    contenders["edsr-baseline upsampler kernels=eager"] = wall_seconds(lambda: eager_up(x))
    with torch.inference_mode():
        times = interleaved_times(contenders, rounds, log=log)

    ceiling_median = {
        s: ceil_flops[s] / statistics.median(times[f"conv 64->64 3x3 {s}x{s}"]) / 1e9
        for s in ceiling_sizes
    }
    ceiling_best_call = max(
        ceil_flops[s] / min(times[f"conv 64->64 3x3 {s}x{s}"]) / 1e9 for s in ceiling_sizes
    )
    ceiling = max(ceiling_median.values())
    edsr_model = flops / statistics.median(times["edsr-baseline model (channels_last)"]) / 1e9
    edsr_up = flops / statistics.median(times["edsr-baseline upsampler"]) / 1e9
    edsr_eager_up = flops / statistics.median(times["edsr-baseline upsampler kernels=eager"]) / 1e9
    return {
        "threads": threads,
        "rounds": rounds,
        "torch": torch.__version__,
        "median_ms": {k: round(1e3 * statistics.median(v), 2) for k, v in times.items()},
        "ceiling_gflops_per_size": {str(s): round(v, 2) for s, v in ceiling_median.items()},
        "ceiling_gflops": round(ceiling, 2),
        "ceiling_gflops_best_single_call": round(ceiling_best_call, 2),
        "edsr_input": [1, 3, size, size],
        "edsr_conv_gflop": round(flops / 1e9, 3),
        "edsr_model_gflops": round(edsr_model, 2),
        "edsr_upsampler_gflops": round(edsr_up, 2),
        "edsr_upsampler_eager_gflops": round(edsr_eager_up, 2),
        "kernels": up.kernels_report,
        "efficiency_model": round(edsr_model / ceiling, 3),
        "efficiency_upsampler": round(edsr_up / ceiling, 3),
        "efficiency_upsampler_eager": round(edsr_eager_up / ceiling, 3),
        "efficiency_model_vs_best_call": round(edsr_model / ceiling_best_call, 3),
    }


def format_result(r: dict[str, Any]) -> str:
    """Human-readable lines of :func:`run`'s result."""
    per_size = ", ".join(f"{s}: {v:.1f}" for s, v in r["ceiling_gflops_per_size"].items())
    return "\n".join(
        [
            f"conv ceiling (3x3 64->64, fp32, channels_last, {r['threads']} thread(s), "
            f"{r['rounds']} interleaved rounds, torch {r['torch']}):",
            f"  median GFLOP/s per input side: {per_size}",
            f"  ceiling (best median) {r['ceiling_gflops']:.1f} GFLOP/s; best single call "
            f"{r['ceiling_gflops_best_single_call']:.1f} GFLOP/s",
            f"EDSR-baseline x2 on {tuple(r['edsr_input'])}: {r['edsr_conv_gflop']:.3f} GFLOP of "
            "convolutions",
            f"  model (channels_last): {r['median_ms']['edsr-baseline model (channels_last)']:.1f}"
            f" ms, {r['edsr_model_gflops']:.1f} GFLOP/s = {100 * r['efficiency_model']:.0f}% of "
            f"the ceiling ({100 * r['efficiency_model_vs_best_call']:.0f}% of the best call)",
            f"  upsampler(x):          {r['median_ms']['edsr-baseline upsampler']:.1f} ms, "
            f"{r['edsr_upsampler_gflops']:.1f} GFLOP/s = {100 * r['efficiency_upsampler']:.0f}%"
            f" of the ceiling (kernels: {r['kernels']}; direct-convolution FLOPs per second,"
            " Winograd does fewer)",
            "  upsampler(x) eager:    "
            f"{r['median_ms']['edsr-baseline upsampler kernels=eager']:.1f} ms, "
            f"{r['edsr_upsampler_eager_gflops']:.1f} GFLOP/s = "
            f"{100 * r['efficiency_upsampler_eager']:.0f}% of the ceiling",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds")
    parser.add_argument("--size", type=int, default=96, help="EDSR LR input side (pixels)")
    parser.add_argument(
        "--ceiling-sizes", type=int, nargs="+", default=[128, 256, 384], metavar="S"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    result = run(
        threads=args.threads,
        rounds=args.rounds,
        size=args.size,
        ceiling_sizes=tuple(args.ceiling_sizes),
    )
    print(format_result(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
