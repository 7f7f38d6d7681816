"""srplug's benchmark suite: quality against speed, side by side in one run.

    .venv/bin/python benchmarks/suite.py --quick          # Set5 only, few repeats
    .venv/bin/python benchmarks/suite.py                  # Set5, Set14, B100

Writes ``BENCHMARKS.md`` (tables) and ``benchmarks/pareto.png`` (quality against output
megapixels per second, like the edge-SR paper's figure), and prints the same.

x2 contenders on the MATLAB-bicubic LR of each benchmark image (srplug's
:class:`~srplug.datasets.BenchmarkDataset`), all called as a user would, uint8 RGB numpy in
and out:

- ``cv2.resize`` INTER_CUBIC (the OpenCV of this environment) and srplug's ``bicubic``
  (MATLAB ``imresize``);
- the edge-SR models eSR-MAX, eSR-TM, eSR-TR and eSR-CNN from the authors' files
  (``srplug.get("esr-max", scale=2, weights=FILE)``: on the CPU the fused head kernel);
- ESPCN, FSRCNN and FSRCNN-small from OpenCV's dnn_superres ``.pb`` files, run twice: by
  OpenCV 4.x ``dnn_superres`` (a worker process in another environment, see
  ``benchmarks/opencv_parity.py``; its times are taken inside the worker) and by srplug
  (``srplug.get("espcn", weights=FILE.pb)``);
- srplug's FSRCNN with the weights of yjn870's PyTorch port.

SRCNN is left out: Lornatang's files (the only SRCNN weights at hand) give a nearly constant
output (Set5 x2 PSNR about 8 dB, also with an independent ``F.conv2d`` forward), so they
are not trained weights one can benchmark.

Speed: per image, one untimed warm-up call and ``--repeats`` timed calls (wall clock), the
contenders taking turns image by image (order reversed on every other image) so that the
load of this shared machine hits all alike; megapixels/s = output pixels of the data set /
sum of the per-image median times. Quality: PSNR and SSIM on Y with a ``scale``-pixel border
shaved, and LPIPS-VGG on RGB, all through :func:`srplug.evaluation.evaluate` on the outputs
of the timed calls. srplug contenders run with ``srplug.get``'s defaults (on the CPU in float32
the fused kernels of ``srplug.ops`` when the C++ extension is available).

Also measured and written to the same file (speed only, random weights):
``benchmarks/rcan_vs_spandrel.py`` (RCAN x4, srplug against spandrel, same weights file) and
``benchmarks/conv_throughput.py`` (EDSR-baseline x2 GFLOP/s against the 3x3 convolution
ceiling). ``--threads`` torch/cv2 threads everywhere.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(HERE))

import conv_throughput  # noqa: E402
import opencv_parity  # noqa: E402
import rcan_vs_spandrel  # noqa: E402

ESR_FILES = {
    "eSR-MAX": "eSR-MAX_s2_K7_C13",
    "eSR-TM": "eSR-TM_s2_K7_C16",
    "eSR-TR": "eSR-TR_s2_K7_C13",
    "eSR-CNN": "eSR-CNN_s2_C8_D3_S9",
}
ESR_MODELS = {"eSR-MAX": "esr-max", "eSR-TM": "esr-tm", "eSR-TR": "esr-tr", "eSR-CNN": "esr-cnn"}
OPENCV_MODELS = {"ESPCN": "espcn", "FSRCNN": "fsrcnn", "FSRCNN-small": "fsrcnn-small"}


@dataclass
class Contender:
    """One row: ``upscale`` maps LR uint8 RGB ``(h, w, 3)`` to SR uint8 RGB ``(s h, s w, 3)``;
    ``remote`` contenders are timed in the OpenCV worker instead."""

    name: str
    runtime: str
    weights: str
    upscale: Callable[[np.ndarray], np.ndarray] | None = None
    remote: tuple[str, str, int] | None = None  # (pb path, algorithm, scale)
    paper_key: str | None = None
    times: dict[str, list[float]] = field(default_factory=dict)
    outputs: dict[str, list[np.ndarray]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)


def build_contenders(
    scale: int, weights_root: Path, cv4_worker: opencv_parity.OpenCVWorker | None
) -> list[Contender]:
    """Every contender that can run here (see the module docstring)."""
    import cv2

    import srplug

    third = weights_root / "third_party"
    rows = [
        Contender(
            "bicubic (cv2.resize)",
            f"OpenCV {cv2.__version__}",
            "-",
            lambda lr: cv2.resize(
                lr, (lr.shape[1] * scale, lr.shape[0] * scale), interpolation=cv2.INTER_CUBIC
            ),
        ),
        Contender(
            "bicubic (MATLAB imresize)",
            "srplug",
            "-",
            srplug.get("bicubic", scale=scale),
            paper_key=f"Bicubic_s{scale}",
        ),
    ]
    for label, stem in ESR_FILES.items():
        path = third / "esr_model_files" / f"{stem}.model"
        if scale == 2 and path.is_file():
            up = srplug.get(ESR_MODELS[label], scale=2, weights=str(path))
            rows.append(Contender(label, "srplug (fused kernel)", stem, up, paper_key=stem))
    for label, model in OPENCV_MODELS.items():
        pb = third / "opencv_dnn_superres" / f"{label}_x{scale}.pb"
        if not pb.is_file():
            continue
        if cv4_worker is not None:
            rows.append(
                Contender(
                    label,
                    f"OpenCV {cv4_worker.hello['ready']} dnn_superres",
                    pb.name,
                    remote=(str(pb), opencv_parity.algorithm_and_scale(pb.stem)[0], scale),
                )
            )
        rows.append(Contender(label, "srplug", pb.name, srplug.get(model, scale, str(pb))))
    fsrcnn = third / "fsrcnn_yjn870" / f"fsrcnn_x{scale}.pth"
    if fsrcnn.is_file():
        up = srplug.get("fsrcnn", scale, str(fsrcnn))
        rows.append(Contender("FSRCNN", "srplug", f"fsrcnn_yjn870/{fsrcnn.name}", up))
    return rows


def _time_local(
    fn: Callable[[np.ndarray], np.ndarray], lr: np.ndarray, repeats: int
) -> tuple[np.ndarray, list[float]]:
    out = fn(lr)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(lr)
        times.append(time.perf_counter() - start)
    return out, times


def measure(
    contenders: list[Contender],
    dataset_name: str,
    scale: int,
    repeats: int,
    data_root: Path,
    cv4_worker: opencv_parity.OpenCVWorker | None,
    tmp: Path,
) -> Any:
    """Time every contender on every image of the data set (interleaved); keep outputs."""
    from srplug.datasets import BenchmarkDataset

    ds = BenchmarkDataset(dataset_name, scale, data_root=data_root)
    for c in contenders:
        c.times[ds.name], c.outputs[ds.name] = [], []
    loaded: str | None = None
    for i in range(len(ds)):
        item = ds[i]
        order = contenders if i % 2 == 0 else contenders[::-1]
        np.save(tmp / "lr.npy", np.ascontiguousarray(item.lr[..., ::-1]))  # BGR for OpenCV
        for c in order:
            if c.remote is not None:
                assert cv4_worker is not None
                pb, algo, s = c.remote
                if loaded != pb:
                    cv4_worker.ask(cmd="load", path=pb, algo=algo, scale=s)
                    loaded = pb
                reply = cv4_worker.ask(
                    cmd="run",
                    input=str(tmp / "lr.npy"),
                    output=str(tmp / "out.npy"),
                    repeats=repeats,
                    clock="wall",
                )
                out = np.ascontiguousarray(np.load(tmp / "out.npy")[..., ::-1])
                times = reply["times"]
            else:
                assert c.upscale is not None
                out, times = _time_local(c.upscale, item.lr, repeats)
            c.times[ds.name].append(statistics.median(times))
            c.outputs[ds.name].append(out)
        print(f"  {ds.name} {i + 1}/{len(ds)} {item.name}", file=sys.stderr, flush=True)
    return ds


def score(contenders: list[Contender], ds: Any, lpips: Any) -> None:
    """PSNR / SSIM / LPIPS of the kept outputs through srplug.evaluation.evaluate."""
    from srplug.evaluation import evaluate

    pixels = sum(ds[i].hr.shape[0] * ds[i].hr.shape[1] for i in range(len(ds)))
    for c in contenders:
        outputs = iter(c.outputs[ds.name])
        res = evaluate(lambda _lr, it=outputs: next(it), ds, lpips=lpips)
        seconds = sum(c.times[ds.name])
        c.results[ds.name] = {
            "psnr": res.psnr,
            "ssim": res.ssim,
            "lpips": res.lpips,
            "mpix_per_s": pixels / seconds / 1e6,
            "ms_per_image": 1e3 * seconds / len(ds),
        }
        c.outputs[ds.name] = []  # free


def paper_figures(weights_root: Path) -> dict[str, dict[str, str]]:
    """The edge-SR authors' published scores (esr_authors_results.csv), by model key."""
    import csv

    path = weights_root / "third_party" / "esr_authors_results.csv"
    if not path.is_file():
        return {}
    with path.open() as f:
        return {row["model"]: row for row in csv.DictReader(f)}


PAPER_SETS = {"Set5": "Set5", "Set14": "Set14", "B100": "BSDS100"}


def markdown(
    contenders: list[Contender],
    datasets: list[str],
    meta: dict[str, Any],
    paper: dict[str, dict[str, str]],
    rcan: dict[str, Any] | None,
    conv: dict[str, Any] | None,
    notes: list[str],
) -> str:
    """BENCHMARKS.md."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `benchmarks/suite.py` "
        f"(`{meta['command']}`), {meta['date']}. Machine: {meta['machine']}; "
        f"{meta['threads']} thread(s); torch {meta['torch']}. The machine was shared with other "
        "work while measuring: times are medians of interleaved runs, but treat them as "
        "relative, not absolute.",
        "",
        "## Quality against speed, x2",
        "",
        "Input: MATLAB-bicubic LR of each image; PSNR and SSIM on Y (border of 2 shaved), "
        "LPIPS-VGG on RGB (lower is better). Speed: megapixels of output per second, numpy "
        f"uint8 RGB in and out, median of {meta['repeats']} timed calls per image after a "
        "warm-up. Paper PSNR: the edge-SR authors' published figure for the same weights file "
        "on the same set (their protocol differs slightly: their bicubic x2 Set5 is 33.73 dB, "
        "the standard one 33.66 dB).",
        "",
    ]
    for name in datasets:
        lines += [
            f"### {name}",
            "",
            "| model | runtime | weights | PSNR (dB) | SSIM | LPIPS | MP/s | ms/image "
            "| paper PSNR |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c in sorted(contenders, key=lambda c: -c.results[name]["mpix_per_s"]):
            r = c.results[name]
            ref = paper.get(c.paper_key or "", {}).get(f"psnr_{PAPER_SETS.get(name, name)}", "")
            lp = "" if r["lpips"] is None else f"{r['lpips']:.4f}"
            paper_psnr = f"{float(ref):.2f}" if ref else ""
            lines.append(
                f"| {c.name} | {c.runtime} | {c.weights} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                f"{lp} | {r['mpix_per_s']:.2f} | {r['ms_per_image']:.1f} | {paper_psnr} |"
            )
        lines.append("")
    lines += ["![quality against speed](benchmarks/pareto.png)", ""]
    if rcan is not None:
        lines += [
            "## RCAN x4: srplug against spandrel",
            "",
            f"`benchmarks/rcan_vs_spandrel.py`: the same random RCAN weights (official layout, "
            f"10 groups x 20 RCABs, 64 features) saved once as `.pt` and loaded from that file "
            f"by both; input {tuple(rcan['input'])} float32; {rcan['threads']} thread(s); "
            f"{rcan['rounds']} interleaved rounds; spandrel {rcan['spandrel_version']} in its own "
            "venv (worker process; its times taken inside the worker).",
            "",
            "| contender | median ms | min ms |",
            "|---|---:|---:|",
        ]
        for k, v in rcan["median_ms"].items():
            lines.append(f"| {k} | {v:.1f} | {rcan['min_ms'][k]:.1f} |")
        lines += [
            "",
            f"- spandrel / srplug upsampler (public call, defaults): "
            f"**{rcan['ratio_spandrel_over_srplug_upsampler']:.2f}x**; spandrel in "
            f"channels_last / the same: {rcan['ratio_spandrel_cl_over_srplug_upsampler']:.2f}x "
            f"(srplug kernels: {rcan['kernels']})",
            f"- spandrel / srplug upsampler with `kernels='eager'`: "
            f"{rcan['ratio_spandrel_over_srplug_eager']:.2f}x; spandrel in channels_last / "
            f"srplug eager model in channels_last: "
            f"{rcan['ratio_spandrel_cl_over_srplug_model_cl']:.2f}x",
            f"- spandrel / srplug `precision='auto'` ({rcan['auto_precision']}): "
            f"{rcan['ratio_spandrel_over_srplug_auto']:.2f}x",
            f"- max |srplug - spandrel|: {rcan['max_abs_diff']:.1e} (public call, against "
            f"spandrel's output clamped to [0, 1]), {rcan['max_abs_diff_eager']:.1e} (eager), "
            f"{rcan['max_abs_diff_channels_last']:.1e} (eager model)",
            "",
            "Target: srplug >= 1.3x faster than spandrel. "
            + (
                "Met."
                if rcan["ratio_spandrel_over_srplug_upsampler"] >= 1.3
                else "Not met in this run."
            ),
            "",
        ]
    if conv is not None:
        lines += [
            "## EDSR-baseline x2 against the convolution ceiling",
            "",
            "`benchmarks/conv_throughput.py`: the ceiling is the best median GFLOP/s of one "
            "3x3 64->64 convolution (fp32, channels_last, inference mode) over inputs "
            f"{', '.join(s + chr(178) for s in conv['ceiling_gflops_per_size'])}; EDSR-baseline "
            "x2 (random weights) convolution FLOPs counted analytically (2 k^2 C_in C_out "
            f"H_out W_out per conv) on {tuple(conv['edsr_input'])}, timed interleaved with the "
            f"ceiling runs; {conv['threads']} thread(s), {conv['rounds']} rounds.",
            "",
            "| figure | GFLOP/s | of ceiling |",
            "|---|---:|---:|",
            f"| ceiling (best median) | {conv['ceiling_gflops']:.1f} | 100% |",
            f"| ceiling (best single call) | {conv['ceiling_gflops_best_single_call']:.1f} | |",
            f"| EDSR-baseline eager model, channels_last | {conv['edsr_model_gflops']:.1f} | "
            f"{100 * conv['efficiency_model']:.0f}% |",
            f"| EDSR-baseline upsampler, `kernels='eager'` | "
            f"{conv['edsr_upsampler_eager_gflops']:.1f} | "
            f"{100 * conv['efficiency_upsampler_eager']:.0f}% |",
            f"| EDSR-baseline upsampler (public call, fused kernels; effective: direct-conv "
            f"FLOPs / time) | {conv['edsr_upsampler_gflops']:.1f} | "
            f"{100 * conv['efficiency_upsampler']:.0f}% |",
            "",
            "Target: >= 80% of the ceiling. "
            + ("Met." if conv["efficiency_model"] >= 0.8 else "Not met in this run."),
            "",
        ]
    notes = [
        *notes,
        "SRCNN: the Lornatang/SRCNN-PyTorch files give a nearly constant output (Set5 x2 "
        "PSNR about 8 dB, also with an independent `F.conv2d` forward of the file), so no "
        "trained SRCNN weights were at hand.",
        "RCAN, EDSR and the other deep models have no trained weights here: they are "
        "measured for speed only, with random weights (the two sections above).",
    ]
    if notes:
        lines += ["## Not measured", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats in both speed (x) and quality (y), sorted by x."""
    front = [p for p in points if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(front)


def plot(contenders: list[Contender], dataset: str, path: Path) -> None:
    """PSNR and LPIPS against megapixels/s (log x), Pareto fronts dashed; points are
    numbered, the legend names them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 5.6))
    metrics = (
        ("psnr", "PSNR on Y (dB), higher is better", 1),
        ("lpips", "LPIPS-VGG, lower is better", -1),
    )
    cmap = plt.get_cmap("tab20")
    for ax, (key, label, sign) in zip(axes, metrics, strict=True):
        pts = []
        for n, c in enumerate(contenders, start=1):
            r = c.results[dataset]
            if r[key] is None:
                continue
            x, y = r["mpix_per_s"], r[key]
            pts.append((x, sign * y))
            marker = "s" if "OpenCV 4" in c.runtime else "o"
            ax.scatter(
                [x],
                [y],
                marker=marker,
                s=44,
                color=cmap(n % 20),
                label=f"{n}: {c.name} ({c.runtime})",
            )
            ax.annotate(str(n), (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
        front = pareto_front(pts)
        if front:
            ax.plot([p[0] for p in front], [sign * p[1] for p in front], "k--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("output megapixels / s (CPU, log scale)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(
        f"{dataset} x2: quality against speed (squares: OpenCV 4 dnn_superres; "
        "dashed: Pareto front)"
    )
    fig.tight_layout(rect=(0, 0, 0.76, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="Set5 only, 3 repeats, short RCAN/EDSR runs"
    )
    parser.add_argument("--datasets", nargs="+", default=None, help="default Set5 Set14 B100")
    parser.add_argument("--data", type=Path, default=SHARED / "data", help="data root")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights", help="weights root")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per image")
    parser.add_argument("--threads", type=int, default=1, help="torch and cv2 threads")
    parser.add_argument("--cv4-python", default="/tmp/cv4/bin/python", help="OpenCV 4.x python")
    parser.add_argument("--spandrel-python", default="/tmp/spv/bin/python", help="spandrel python")
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    parser.add_argument("--skip-rcan", action="store_true", help="skip RCAN against spandrel")
    parser.add_argument("--skip-conv", action="store_true", help="skip the EDSR/ceiling run")
    parser.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--plot", type=Path, default=HERE / "pareto.png")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    datasets = args.datasets or (["Set5"] if args.quick else ["Set5", "Set14", "B100"])
    repeats = args.repeats or (3 if args.quick else 7)

    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    notes: list[str] = []
    cv4 = None
    if Path(args.cv4_python).is_file():
        cv4 = opencv_parity.OpenCVWorker(args.cv4_python, args.threads)
    else:
        notes.append(f"OpenCV 4.x dnn_superres rows: no OpenCV 4 python at {args.cv4_python}")
    lpips = None
    if not args.no_lpips:
        from srplug.perceptual import LPIPS

        lpips = LPIPS(
            args.weights / "lpips_vgg_lin_v0.1.safetensors",
            args.weights / "vgg16_imagenet_features.safetensors",
        )
    start = time.time()
    contenders = build_contenders(2, args.weights, cv4)
    try:
        with tempfile.TemporaryDirectory(prefix="srplug-suite-") as tmp:
            for name in datasets:
                ds = measure(contenders, name, 2, repeats, args.data, cv4, Path(tmp))
                torch.set_num_threads(max(args.threads, torch.get_num_threads()))
                score(contenders, ds, lpips)
                torch.set_num_threads(args.threads)
    finally:
        if cv4 is not None:
            cv4.close()
    print(f"quality/speed table done in {time.time() - start:.0f} s", file=sys.stderr)

    rcan = None
    if not args.skip_rcan and Path(args.spandrel_python).is_file():
        rcan = rcan_vs_spandrel.run(
            args.spandrel_python, rounds=5 if args.quick else 11, threads=args.threads
        )
        print(rcan_vs_spandrel.format_result(rcan))
    elif not args.skip_rcan:
        notes.append(f"RCAN against spandrel: no spandrel python at {args.spandrel_python}")
    conv = None
    if not args.skip_conv:
        conv = conv_throughput.run(
            threads=args.threads,
            rounds=5 if args.quick else 11,
            size=64 if args.quick else 96,
            ceiling_sizes=(128, 256) if args.quick else (128, 256, 384),
        )
        print(conv_throughput.format_result(conv))

    meta = {
        "command": " ".join(
            ["python benchmarks/suite.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": f"{platform.machine()}, {_cpu_name()}",
        "threads": args.threads,
        "torch": torch.__version__,
        "repeats": repeats,
    }
    text = markdown(contenders, datasets, meta, paper_figures(args.weights), rcan, conv, notes)
    args.markdown.write_text(text)
    print(text)
    try:
        plot(contenders, datasets[0], args.plot)
    except ImportError:
        print("matplotlib not installed: no plot written", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "rows": [
                        {"name": c.name, "runtime": c.runtime, "weights": c.weights, **c.results}
                        for c in contenders
                    ],
                    "rcan_vs_spandrel": rcan,
                    "conv_throughput": conv,
                },
                indent=2,
            )
        )
    return 0


def _cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
