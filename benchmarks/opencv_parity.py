"""Parity and speed of ``srplug.adapters.opencv`` against OpenCV 4.x ``dnn_superres``.

OpenCV 5 cannot run dnn_superres's ``.pb`` graphs and the project does not depend on
opencv-contrib, so OpenCV 4.x runs in a separate Python environment, in a worker subprocess
(this file with ``--worker``, which imports only numpy and cv2)::

    python3 -m venv /tmp/cv4 && /tmp/cv4/bin/pip install "opencv-contrib-python-headless<5" numpy
    .venv/bin/python benchmarks/opencv_parity.py --cv4-python /tmp/cv4/bin/python

For every model (ESPCN, FSRCNN, FSRCNN-small x2/x3/x4 and LapSRN x2/x4/x8 by default) and
every Set5 image, the LR input is the MATLAB-bicubic shrink of the mod-cropped HR image
(srplug's ``imresize_uint8``, identical to Set5_LR_bicubic), passed to both sides as BGR
uint8. Both sides upsample it: one untimed warm-up call, then ``--repeats`` timed calls,
OpenCV and srplug taking turns image by image (and swapping who goes first) so that both
see the same machine load. Both use ``--threads`` threads (torch and cv2). ``--clock cpu``
times the process CPU time instead of the elapsed time: with one thread on a machine shared
with other work it leaves out the waits for a core (with several threads it sums them).

Printed per model: max |srplug - OpenCV| over all pixels and channels, the fraction of
pixel values that differ, the median time of each side and the median over images of the
per-image time ratio srplug / OpenCV; then the overall median ratio. ``--out DIR`` keeps
both outputs as PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
from harness import JsonWorker

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = REPO.parent / "shared" / "weights" / "third_party" / "opencv_dnn_superres"
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_MODELS = (
    [f"ESPCN_x{s}" for s in (2, 3, 4)]
    + [f"FSRCNN_x{s}" for s in (2, 3, 4)]
    + [f"FSRCNN-small_x{s}" for s in (2, 3, 4)]
    + [f"LapSRN_x{s}" for s in (2, 4, 8)]
)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""``wall``: elapsed time (latency). ``cpu``: CPU time of the process, all its threads
together; with one thread it stays meaningful on a machine busy with other work, where the
wall clock mostly measures the waits for a core."""


def algorithm_and_scale(model: str) -> tuple[str, int]:
    """``"FSRCNN-small_x3"`` -> ``("fsrcnn", 3)``: OpenCV's setModel arguments."""
    family, _, scale = model.rpartition("_x")
    return family.lower().removesuffix("-small"), int(scale)


# ------------------------------------------------------------------------ the OpenCV worker


def worker(threads: int) -> None:
    """Serve JSON commands on stdin with OpenCV 4.x dnn_superres (no srplug, no torch)."""
    import cv2

    cv2.setNumThreads(threads)
    sr = None
    print(json.dumps({"ready": cv2.__version__, "threads": cv2.getNumThreads()}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "load":
            sr = cv2.dnn_superres.DnnSuperResImpl_create()
            sr.readModel(cmd["path"])
            sr.setModel(cmd["algo"], cmd["scale"])
            print(json.dumps({"ok": True}), flush=True)
        elif cmd["cmd"] == "run":
            assert sr is not None
            img = np.load(cmd["input"])
            out = sr.upsample(img)  # warm-up (OpenCV sets the network up per input size)
            clock = CLOCKS[cmd["clock"]]
            times = []
            for _ in range(cmd["repeats"]):
                start = clock()
                out = sr.upsample(img)
                times.append(clock() - start)
            np.save(cmd["output"], out)
            print(json.dumps({"times": times}), flush=True)
        else:
            break


class OpenCVWorker(JsonWorker):
    """This file's ``--worker`` mode in its own environment, driven line by line."""

    def __init__(self, python: str, threads: int) -> None:
        super().__init__(
            __file__,
            python,
            threads,
            name="OpenCV",
            env={"OPENCV_LOG_LEVEL": "ERROR"},
            quit_timeout=30.0,
        )


# ------------------------------------------------------------------------------ the driver


def lr_images(data: Path, scale: int) -> dict[str, np.ndarray]:
    """Set5 LR inputs (BGR uint8): MATLAB bicubic of the HR images mod-cropped to ``scale``."""
    import cv2

    from srplug.resize import imresize_uint8, modcrop

    images = {}
    for path in sorted((data / "Set5").glob("*.png")):
        hr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        images[path.stem] = imresize_uint8(modcrop(hr, scale), 1.0 / scale)
    if not images:
        raise SystemExit(f"no Set5 images under {data / 'Set5'}")
    return images


def time_srplug(
    sr: Any, img: np.ndarray, repeats: int, clock: str = "wall"
) -> tuple[np.ndarray, list[float]]:
    out = sr.upsample(img)  # warm-up, as on the OpenCV side
    tick = CLOCKS[clock]
    times = []
    for _ in range(repeats):
        start = tick()
        out = sr.upsample(img)
        times.append(tick() - start)
    return out, times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cv4-python", help="python of an environment with OpenCV 4.x contrib")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding Set5")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="the .pb files")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, metavar="NAME")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per image and side")
    parser.add_argument("--threads", type=int, default=1, help="torch and cv2 threads")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: elapsed time; cpu: process CPU time (steadier on a shared machine)",
    )
    parser.add_argument("--out", type=Path, default=None, help="keep the outputs as PNG here")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.threads)
        return 0
    if not args.cv4_python:
        parser.error("--cv4-python is required (the python of an OpenCV 4.x contrib venv)")

    import cv2
    import torch
    from srplug.adapters.opencv import dnn_superres

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    cv = OpenCVWorker(args.cv4_python, args.threads)
    print(
        f"OpenCV {cv.hello['ready']} ({cv.hello['threads']} thread(s)) vs srplug on torch "
        f"{torch.__version__} ({torch.get_num_threads()} thread(s)); Set5, MATLAB-bicubic LR; "
        f"{args.repeats} timed calls per image after a warm-up, {args.clock} clock"
    )
    header = (
        f"{'model':<16}{'max|diff|':>10}{'differ %':>10}{'OpenCV ms':>11}{'srplug ms':>11}"
        f"{'ratio':>8}{'speed-up':>10}"
    )
    print(header)
    rows = []
    all_ratios = []
    tmp = Path(tempfile.mkdtemp(prefix="srplug-parity-"))
    try:
        for model in args.models:
            algo, scale = algorithm_and_scale(model)
            path = args.weights / f"{model}.pb"
            cv.ask(cmd="load", path=str(path), algo=algo, scale=scale)
            sr = dnn_superres.DnnSuperResImpl_create()
            sr.readModel(str(path))
            sr.setModel(algo, scale)
            worst, differ, total = 0, 0, 0
            t_cv, t_sr, ratios = [], [], []
            for i, (name, lr) in enumerate(lr_images(args.data, scale).items()):
                np.save(tmp / "lr.npy", lr)
                first_cv = i % 2 == 0
                if first_cv:
                    times_cv = cv.ask(
                        cmd="run",
                        input=str(tmp / "lr.npy"),
                        output=str(tmp / "cv.npy"),
                        repeats=args.repeats,
                        clock=args.clock,
                    )["times"]
                out, times_sr = time_srplug(sr, lr, args.repeats, args.clock)
                if not first_cv:
                    times_cv = cv.ask(
                        cmd="run",
                        input=str(tmp / "lr.npy"),
                        output=str(tmp / "cv.npy"),
                        repeats=args.repeats,
                        clock=args.clock,
                    )["times"]
                ref = np.load(tmp / "cv.npy")
                if ref.shape != out.shape:
                    raise SystemExit(f"{model} {name}: OpenCV {ref.shape} vs srplug {out.shape}")
                diff = np.abs(out.astype(np.int16) - ref.astype(np.int16))
                worst = max(worst, int(diff.max()))
                differ += int((diff > 0).sum())
                total += diff.size
                t_cv.append(median(times_cv))
                t_sr.append(median(times_sr))
                ratios.append(t_sr[-1] / t_cv[-1])
                if args.out is not None:
                    args.out.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(args.out / f"{model}_{name}_opencv.png"), ref)
                    cv2.imwrite(str(args.out / f"{model}_{name}_srplug.png"), out)
            ratio = median(ratios)
            all_ratios += ratios
            row = {
                "model": model,
                "max_abs_diff": worst,
                "fraction_differing": differ / total,
                "opencv_ms": 1000 * median(t_cv),
                "srplug_ms": 1000 * median(t_sr),
                "ratio": ratio,
            }
            rows.append(row)
            print(
                f"{model:<16}{worst:>10}{100 * differ / total:>10.4f}{row['opencv_ms']:>11.1f}"
                f"{row['srplug_ms']:>11.1f}{ratio:>8.3f}{1 / ratio:>9.2f}x",
                flush=True,
            )
    finally:
        cv.close()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    overall = median(all_ratios)
    print(
        f"overall: max |diff| {max(r['max_abs_diff'] for r in rows)}, median time ratio "
        f"srplug/OpenCV {overall:.3f} ({1 / overall:.2f}x), {len(all_ratios)} model-image pairs"
    )
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "median_ratio": overall}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
