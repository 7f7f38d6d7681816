"""Peak resident memory (RSS) of one ``srplug`` upscale, measured in a fresh subprocess.

    python scripts/peak_rss.py rcan --scale 4 --size 4096x2160 --tile 128
    python scripts/peak_rss.py edsr-baseline --scale 4 --size 512x256 --tile 64 -O blocks=1

The child process builds the upsampler (random weights unless ``--weights``), makes a
``HxWx3`` uint8 image (the built-in sample image tiled to the size), upscales it once and
exits; the parent reads the child's peak RSS with ``resource.getrusage(RUSAGE_CHILDREN)``
(Linux reports KiB) and prints one JSON line: model, size, tile, seconds, peak RSS in GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    import srplug
    from srplug.default_commands import _model_options, sample_image_path
    from srplug.io import read_image

    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    sample = read_image(sample_image_path())[:, :, :3]
    reps = (-(-height // sample.shape[0]), -(-width // sample.shape[1]), 1)
    img = np.ascontiguousarray(np.tile(sample, reps)[:height, :width])
    del sample
    weights = None if args.weights == "none" else args.weights
    tile = None if args.tile == "none" else (args.tile if args.tile == "auto" else int(args.tile))
    up = srplug.get(
        args.model,
        scale=args.scale,
        weights=weights,
        tile=tile,
        **_model_options(args.option),
    )
    start = time.perf_counter()
    out = up(img)
    seconds = time.perf_counter() - start
    assert out.shape == (height * args.scale, width * args.scale, 3), out.shape
    print(json.dumps({"seconds": round(seconds, 2), "tile_used": up.last_tile}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--scale", "-s", type=int, default=4)
    parser.add_argument("--size", default="4096x2160", help="WIDTHxHEIGHT of the input")
    parser.add_argument("--tile", default="128", help="N, 'auto' or 'none' (untiled)")
    parser.add_argument("--weights", default="none", help="'none' (random init), tag or path")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    cmd = [sys.executable, __file__, "--child", *sys.argv[1:]]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        return done.returncode
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "model": args.model,
                "scale": args.scale,
                "size": args.size,
                "tile": args.tile,
                "options": args.option,
                **measured,
                "peak_rss_gib": round(peak_kib / 2**20, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
