"""Scaled-down DRN unpaired adaptation on CPU: does dual-loss fine-tuning on LR-only images of
a new degradation raise PSNR on that degradation?

1. ``pretrain``: a tiny ``drn-s`` x4 (``n_blocks``/``n_feats`` below) trained with dual
   regression on bicubic pairs from T91 (recipe ``kind = "dual"``).
2. ``make-lr``: LR-only training images of the new degradation: Gaussian blur (sigma 1.6,
   13x13) then MATLAB bicubic x1/4, uint8, from the first N BSD200 images (their HR is
   never used again).
3. ``finetune``: ``dual.unpaired = true`` on those LR images, the dual loss only; the dual
   mapping is the known degradation (``--dual degradation``) or the pre-trained dual
   networks (``--dual learned``).
4. ``eval``: Y-PSNR/SSIM (standard protocol) on Set5 x4 with blurred LR (same degradation)
   and with bicubic LR, for bicubic interpolation, the pre-trained and the fine-tuned model.

::

    python scripts/demo_drn_unpaired.py pretrain --out runs/demo_drn --steps 1500
    python scripts/demo_drn_unpaired.py make-lr --out runs/demo_drn
    python scripts/demo_drn_unpaired.py finetune --out runs/demo_drn --steps 300
    python scripts/demo_drn_unpaired.py eval --out runs/demo_drn
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import srplug
from srplug.datasets import BenchmarkDataset, BenchmarkItem, read_image
from srplug.evaluation import evaluate
from srplug.io import write_image
from srplug.resize import modcrop
from srplug.train import DefaultTrainer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SMALL = {"n_blocks": 2, "n_feats": 8}
BLUR = [{"op": "blur", "sigma": [1.6, 1.6], "kernel_size": 13}, {"op": "downscale"}]


def degrade(hr: np.ndarray) -> np.ndarray:
    """uint8 RGB HR (multiple of 4) -> uint8 LR: blur sigma 1.6, MATLAB bicubic x1/4."""
    from srplug.adapters.kornia import build_degradation

    t = torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        lr = build_degradation(BLUR, 4)(t, generator=torch.Generator().manual_seed(0))
    return (lr[0].permute(1, 2, 0).clamp(0, 1) * 255.0).round().byte().numpy()


class BlurredBenchmark(BenchmarkDataset):
    """A benchmark folder whose LR images are made by :func:`degrade`."""

    def __getitem__(self, index: int) -> BenchmarkItem:
        path = self.files[index]
        hr = modcrop(read_image(path), self.scale)
        return BenchmarkItem(name=path.stem, hr=hr, lr=degrade(hr))


def recipe(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "kind": "dual",
        "seed": 0,
        "device": "cpu",
        "log_every": 50,
        "model": {"name": "drn-s", "scale": 4, "options": dict(SMALL)},
        "data": {"train": ["T91"], "root": str(args.data), "patch_size": 64, "batch_size": 8},
        "optim": {"lr": 5e-4},
        "schedule": {"steps": args.steps, "kind": "constant"},
        "loss": {"kind": "l1"},
        "dual": {"weight": 0.1},
        "ema": {"enabled": False},
        "checkpoint": {"every": 500, "keep": 0},
        "precision": {"mode": "fp32"},
    }


def pretrain(args: argparse.Namespace) -> None:
    result = DefaultTrainer(progress=False).fit(recipe(args), output_dir=args.out / "pretrain")
    print(f"pre-trained: {result.weights}")


def make_lr(args: argparse.Namespace) -> None:
    folder = args.out / "lr_blur"
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted((args.data / "BSD200").glob("*.png"))[: args.images]
    for f in files:
        write_image(folder / f.name, degrade(modcrop(read_image(f), 4)))
    print(f"{len(files)} blurred LR images in {folder}")


def finetune(args: argparse.Namespace) -> None:
    r = recipe(args)
    r["model"]["init"] = str(args.out / "pretrain" / "drn-s_x4.safetensors")
    r["data"]["train"] = [str(args.out / "lr_blur")]
    r["optim"]["lr"] = args.lr
    r["dual"] = {"unpaired": True}
    if args.dual == "degradation":
        r["dual"]["degradation"] = BLUR
    out = args.out / f"finetune_{args.dual}"
    result = DefaultTrainer(progress=False).fit(r, output_dir=out)
    print(f"fine-tuned: {result.weights}")


def run_eval(args: argparse.Namespace) -> None:
    sets = {
        "blurred LR": BlurredBenchmark(args.data / "Set5", 4),
        "bicubic LR": BenchmarkDataset(args.data / "Set5", 4),
    }
    models = {"bicubic interpolation": srplug.get("bicubic", 4)}
    weights = "drn-s_x4.safetensors"
    for name, path in (
        ("pre-trained (bicubic pairs)", args.out / "pretrain" / weights),
        ("fine-tuned, degradation dual", args.out / "finetune_degradation" / weights),
        ("fine-tuned, learned duals", args.out / "finetune_learned" / weights),
    ):
        if path.is_file():
            models[name] = srplug.get("drn-s", 4, weights=path, **SMALL)
    rows = []
    for name, up in models.items():
        for set_name, ds in sets.items():
            r = evaluate(up, ds)
            rows.append({"model": name, "lr": set_name, "psnr": r.psnr, "ssim": r.ssim})
            print(f"{name:30s} Set5 x4 {set_name}: PSNR {r.psnr:6.2f}  SSIM {r.ssim:.4f}")
    (args.out / "eval.json").write_text(json.dumps(rows, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["pretrain", "make-lr", "finetune", "eval"])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "demo_drn")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate")
    p.add_argument("--images", type=int, default=50, help="BSD200 images made into LR")
    p.add_argument("--dual", choices=["degradation", "learned"], default="degradation")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    {"pretrain": pretrain, "make-lr": make_lr, "finetune": finetune, "eval": run_eval}[args.what](
        args
    )
    print(f"{args.what}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
