"""Score srplug's shipped edge-SR weights beside the authors' files of the same configuration.

    python scripts/esr_vs_authors.py --data ../shared/data \
        --authors ../shared/weights/third_party/esr_model_files [--sets Set5 Set14 B100]

For each family (eSR-MAX K7 C13, eSR-TM K7 C16, eSR-TR K7 C13, eSR-CNN C8 D3 S9) and scale
(2, 3, 4) both networks are scored with srplug's standard protocol (Y PSNR / SSIM, MATLAB
bicubic LR, border = scale) and printed as a Markdown table with the difference
(srplug - authors). Rows without a shipped weight or an authors' file are left out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import srplug
from srplug.evaluation import evaluate
from srplug.train.validation import CachedBenchmark

CONFIGS = {
    "esr-max": "eSR-MAX_s{s}_K7_C13",
    "esr-tm": "eSR-TM_s{s}_K7_C16",
    "esr-tr": "eSR-TR_s{s}_K7_C13",
    "esr-cnn": "eSR-CNN_s{s}_C8_D3_S9",
}


def score(up: srplug.Upsampler, datasets: list[CachedBenchmark]) -> list[float]:
    """PSNR per set, in order."""
    return [evaluate(up, dataset).psnr for dataset in datasets]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder holding Set5, Set14, B100")
    parser.add_argument("--authors", required=True, type=Path, help="the authors' .model files")
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14", "B100"])
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 3, 4])
    parser.add_argument("--models", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    # each set read and shrunk once per scale, then shared by every network scored at it
    datasets = {
        scale: [CachedBenchmark(name, scale, data_root=args.data) for name in args.sets]
        for scale in args.scales
    }
    rows = []
    header = " | ".join(f"{s} ours / authors" for s in args.sets)
    print(f"| model | scale | {header} | steps |")
    print("|---|---|" + "---|" * (len(args.sets) + 1))
    for name in args.models:
        pattern = CONFIGS[name]
        for scale in args.scales:
            shipped = srplug.info(name).weights_for(scale)
            file = args.authors / (pattern.format(s=scale) + ".model")
            if not shipped or not file.is_file():
                continue
            ours = score(srplug.get(name, scale, weights=shipped[0].tag), datasets[scale])
            theirs = score(srplug.get(name, scale, weights=file), datasets[scale])
            cells = " | ".join(
                f"{a:.2f} / {b:.2f} ({a - b:+.2f})" for a, b in zip(ours, theirs, strict=True)
            )
            print(f"| {name} | x{scale} | {cells} | {shipped[0].card.steps} |", flush=True)
            rows.append(
                {
                    "model": name,
                    "scale": scale,
                    "sets": args.sets,
                    "ours": ours,
                    "authors": theirs,
                    "steps": shipped[0].card.steps,
                }
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
