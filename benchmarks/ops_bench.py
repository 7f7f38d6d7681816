"""Fused srplug.ops kernels against eager PyTorch, measured side by side in one run.

    python benchmarks/ops_bench.py [--threads 1] [--repeats 7] [--quick] [--json]

Every comparison interleaves the contenders (A, B, B, A, A, B ...) so load on the machine hits
both alike, and reports medians (and minima) in milliseconds and the ratio of medians. Measured:

1. edge-SR x2 forward, input Y plane ``(1, 1, 1080, 1920)``: the fused kernel against the
   PyTorch reference ``conv -> pixel_shuffle -> reduction`` and against the plugin's
   default forward (reduce-then-shuffle in cache-sized strips).
2. eSR-MAX x2 fused against ``cv2.resize(INTER_CUBIC)`` on the same plane (float32 and
   uint8), same thread count.
3. The 3x3 convolution 64 -> 64 with bias and ReLU: Winograd kernel against ``F.conv2d``.
4. RCAN's channel attention + RCAB skip: fused against eager; the whole RCAB, eager against
   ``srplug.ops.fuse`` (Winograd convolutions with the ReLU, fused attention and skip).
5. RCAN x4 whole-model forward (``srplug.get("rcan", kernels="eager")``, random weights)
   against the same model after ``srplug.ops.fuse``.
6. Pixel shuffle + bias + ReLU fused against eager.
7. Narrow layers of the fast models on a 256x256 Y plane (ESPCN's and SRCNN's first layers,
   FSRCNN's 5x5 1->56 and 1x1 56->12 with PReLU): the direct kernel
   (``srplug.ops.conv2d_act``) against oneDNN (``F.conv2d`` + activation), with two layers
   ``fuse`` leaves to oneDNN for contrast; then ESPCN,
   FSRCNN and SRCNN whole (``srplug.get(name, kernels="eager")`` against ``"fused"``).

All in channels_last (the layout srplug runs on the CPU).

Not a test: numbers depend on the machine. Needs the extension (built on first use).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from collections.abc import Callable

import torch
from harness import interleaved_times, wall_seconds
from torch import nn

import srplug
import srplug.ops
from srplug.ops import reference


def compare(
    name: str, contenders: dict[str, Callable[[], object]], repeats: int
) -> dict[str, object]:
    """Interleaved timing; ratio = median of the first contender / median of each other."""
    seconds = interleaved_times({k: wall_seconds(fn) for k, fn in contenders.items()}, repeats)
    times = {k: [1e3 * t for t in v] for k, v in seconds.items()}  # milliseconds
    medians = {k: statistics.median(v) for k, v in times.items()}
    first = next(iter(contenders))
    row: dict[str, object] = {
        "name": name,
        "median_ms": {k: round(v, 3) for k, v in medians.items()},
        "min_ms": {k: round(min(v), 3) for k, v in times.items()},
        "ratio_vs_" + first: {
            k: round(medians[first] / v, 2) for k, v in medians.items() if k != first
        },
    }
    shown = "  ".join(f"{k} {medians[k]:.2f} ms (min {min(times[k]):.2f})" for k in contenders)
    ratios = "  ".join(
        f"{first}/{k} = {medians[first] / medians[k]:.2f}x" for k in medians if k != first
    )
    print(f"{name}\n    {shown}\n    {ratios}", flush=True)
    return row


def bench_esr(repeats: int, size: tuple[int, int]) -> list[dict[str, object]]:
    from srplug_edgesr import EdgeSRMax, EdgeSRTM, EdgeSRTR

    rows = []
    x = torch.rand(1, 1, *size)
    for net in (EdgeSRMax(scale=2), EdgeSRTM(scale=2), EdgeSRTR(scale=2)):
        net.eval()
        w = net.filter.weight.detach()

        def ref(net=net, w=w):
            return reference.esr_upscale(x, w, 2, net.reduction)

        def plugin_default(net=net):
            return net(x)

        def kernel(net=net, w=w):
            return srplug.ops.esr_upscale(x, w, 2, net.reduction, impl="cpp")

        with torch.inference_mode():
            rows.append(
                compare(
                    f"{net.family} x2 forward, input {tuple(x.shape)}",
                    {"reference": ref, "plugin_default": plugin_default, "fused": kernel},
                    repeats,
                )
            )
    return rows


def bench_cv2(repeats: int, size: tuple[int, int]) -> list[dict[str, object]]:
    import cv2
    import numpy as np
    from srplug_edgesr import EdgeSRMax

    net = EdgeSRMax(scale=2).eval()
    w = net.filter.weight.detach()
    plane = np.random.default_rng(0).random(size, dtype=np.float32)
    plane_u8 = (plane * 255).astype(np.uint8)
    x = torch.from_numpy(plane)[None, None]
    h, wd = size

    def fused_numpy():  # numpy in, numpy out, as cv2
        return srplug.ops.esr_upscale(x, w, 2, "max", impl="cpp")[0, 0].numpy()

    with torch.inference_mode():
        return [
            compare(
                f"eSR-MAX x2 vs cv2.resize INTER_CUBIC, plane {size}",
                {
                    "esr_max_fused": fused_numpy,
                    "cv2_float32": lambda: cv2.resize(
                        plane, (2 * wd, 2 * h), interpolation=cv2.INTER_CUBIC
                    ),
                    "cv2_uint8": lambda: cv2.resize(
                        plane_u8, (2 * wd, 2 * h), interpolation=cv2.INTER_CUBIC
                    ),
                },
                repeats,
            )
        ]


def _bench_rcab(rcab_cls: type[nn.Module], h: int, repeats: int) -> list[dict[str, object]]:
    feats = torch.randn(1, 64, h, h).contiguous(memory_format=torch.channels_last)
    skip = torch.randn_like(feats)
    eager = rcab_cls(64, 16).eval().to(memory_format=torch.channels_last)
    ca = eager.body[3]
    fused_ca = srplug.ops.ChannelAttention(64, 16)
    fused_ca.load_state_dict(ca.state_dict())
    fused = srplug.ops.fuse(copy.deepcopy(eager), impl="cpp")
    with torch.inference_mode():
        diff = (eager(feats) - fused(feats)).abs().max().item()
        rows = [
            compare(
                f"RCAB channel attention + skip add, (1, 64, {h}, {h})",
                {"eager": lambda: ca(feats) + skip, "fused": lambda: fused_ca(feats, skip)},
                repeats,
            ),
            compare(
                f"whole RCAB (conv+ReLU, conv, attention + skip), (1, 64, {h}, {h})",
                {"eager": lambda: eager(feats), "fused": lambda: fused(feats)},
                repeats,
            ),
        ]
    rows[-1]["max_abs_diff"] = diff
    print(f"    max |eager - fused| = {diff:.2e}")
    return rows


def bench_conv(repeats: int, sizes: tuple[int, ...]) -> list[dict[str, object]]:
    """3x3 convolution 64 -> 64 (+ bias + ReLU): Winograd kernel against F.conv2d + relu."""
    rows = []
    for h in sizes:
        rows.append(_bench_conv_once(repeats, h))
    return rows


def _bench_conv_once(repeats: int, h: int) -> dict[str, object]:
    x = torch.randn(1, 64, h, h).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(64, 64, 3, 3).contiguous(memory_format=torch.channels_last) / 24
    bias = torch.randn(64)
    filters = srplug.ops.winograd_filters(weight)

    def eager() -> torch.Tensor:
        return torch.relu_(nn.functional.conv2d(x, weight, bias, padding=1))

    def winograd() -> torch.Tensor:
        return srplug.ops.conv3x3(x, weight, bias, activation="relu", impl="cpp", filters=filters)

    with torch.inference_mode():
        return compare(
            f"3x3 conv 64->64 + bias + ReLU, channels_last (1, 64, {h}, {h})",
            {"eager": eager, "winograd": winograd},
            repeats,
        )


# (name, in channels, out channels, kernel, activation) of the narrow-layer comparison
NARROW_LAYERS = (
    ("ESPCN conv1 5x5 1->64 + ReLU", 1, 64, 5, "relu"),
    ("SRCNN conv1 9x9 1->64 + ReLU", 1, 64, 9, "relu"),
    ("FSRCNN extract 5x5 1->56 + PReLU", 1, 56, 5, "prelu"),
    ("FSRCNN shrink 1x1 56->12 + PReLU", 56, 12, 1, "prelu"),
    ("RGB head 3x3 3->64 + ReLU (not rewritten by fuse)", 3, 64, 3, "relu"),
)


def bench_narrow(repeats: int, h: int) -> list[dict[str, object]]:
    """Direct kernel against oneDNN on the fast models' narrow layers, then whole models."""
    rows = []
    cl = torch.channels_last
    for name, c_in, c_out, k, act in NARROW_LAYERS:
        x = torch.rand(1, c_in, h, h).contiguous(memory_format=cl)
        weight = torch.randn(c_out, c_in, k, k) / (c_in * k * k) ** 0.5
        weight_cl = weight.contiguous(memory_format=cl)
        bias, slopes = torch.randn(c_out), torch.rand(c_out)

        def onednn(x=x, w=weight_cl, b=bias, a=slopes, k=k, act=act) -> torch.Tensor:
            y = nn.functional.conv2d(x, w, b, padding=k // 2)
            return torch.relu_(y) if act == "relu" else nn.functional.prelu(y, a)

        def direct(x=x, w=weight, b=bias, a=slopes, k=k, act=act) -> torch.Tensor:
            return srplug.ops.conv2d_act(
                x, w, b, padding=k // 2, activation=act, prelu_weight=a, impl="cpp"
            )

        with torch.inference_mode():
            rows.append(
                compare(
                    f"{name}, (1, {c_in}, {h}, {h})", {"onednn": onednn, "direct": direct}, repeats
                )
            )
    y_plane = torch.rand(1, 1, h, h)
    for model, scale in (("espcn", 2), ("fsrcnn", 2), ("srcnn", 2)):
        eager = srplug.get(model, scale=scale, weights=None, kernels="eager")
        fused = srplug.get(model, scale=scale, weights=None, kernels="fused")
        fused.model.load_state_dict(eager.model.state_dict())
        with torch.inference_mode():
            row = compare(
                f"{model} x{scale} whole upsampler call, (1, 1, {h}, {h}) Y plane",
                {"eager": lambda u=eager: u(y_plane), "fused": lambda u=fused: u(y_plane)},
                repeats,
            )
            row["max_abs_diff"] = (eager(y_plane) - fused(y_plane)).abs().max().item()
        print(f"    max |eager - fused| {row['max_abs_diff']:.2e}")
        rows.append(row)
    return rows


def bench_rcan(repeats: int, lr_size: int) -> list[dict[str, object]]:
    rows = []
    try:
        from srplug_rcan import RCAB
    except ImportError:
        print("RCAN plugin not installed: RCAB and whole-model rows skipped", file=sys.stderr)
        return rows
    torch.manual_seed(0)
    for h in (lr_size, 4 * lr_size):
        rows += _bench_rcab(RCAB, h, repeats)
    if "rcan" not in srplug.list():
        print("srplug.get('rcan') not registered: whole-model row skipped", file=sys.stderr)
        return rows
    eager_model = srplug.get("rcan", scale=4, weights=None, kernels="eager").model.eval()
    fused_model = srplug.ops.fuse(copy.deepcopy(eager_model), impl="cpp")
    x = torch.rand(1, 3, lr_size, lr_size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        diff = (eager_model(x) - fused_model(x)).abs().max().item()
        row = compare(
            f"RCAN x4 whole model (srplug.ops.fuse), input (1, 3, {lr_size}, {lr_size})",
            {"eager": lambda: eager_model(x), "fused": lambda: fused_model(x)},
            max(3, repeats // 2),
        )
    row["max_abs_diff"] = diff
    print(f"    max |eager - fused| = {diff:.2e} (output in [0, 1])")
    rows.append(row)
    return rows


def bench_shuffle(repeats: int) -> list[dict[str, object]]:
    x = torch.randn(1, 256, 128, 128)
    bias = torch.randn(256)
    with torch.inference_mode():
        return [
            compare(
                "pixel shuffle x2 + bias + ReLU, (1, 256, 128, 128)",
                {
                    "eager": lambda: torch.relu(
                        nn.functional.pixel_shuffle(x + bias[None, :, None, None], 2)
                    ),
                    "fused": lambda: srplug.ops.pixel_shuffle(x, 2, bias, "relu", impl="cpp"),
                },
                repeats,
            )
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smaller inputs (smoke run)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    import cv2

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    st = srplug.ops.load()
    if not st.loaded:
        print(f"srplug.ops extension unavailable: {st.reason}", file=sys.stderr)
        return 1
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
        f"cv2 {cv2.__version__} with {cv2.getNumThreads()} thread(s); extension: {st.info}"
    )
    size = (135, 240) if args.quick else (1080, 1920)
    rows = bench_esr(args.repeats, size)
    rows += bench_cv2(args.repeats, size)
    rows += bench_conv(args.repeats, (48,) if args.quick else (48, 256))
    rows += bench_rcan(args.repeats, 12 if args.quick else 48)
    rows += bench_shuffle(args.repeats)
    rows += bench_narrow(args.repeats, 64 if args.quick else 256)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": args.threads, "extension": st.info, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
