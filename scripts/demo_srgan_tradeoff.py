"""Scaled-down two-phase SRGAN on CPU: does the GAN phase trade PSNR for LPIPS?

Phase 1 trains a small SRResNet x4 (``srresnet`` plugin, ``blocks``/``features`` below) with
the pixel loss; phase 2 starts the ``srgan`` generator from those weights and trains it with
the VGG16 feature loss + 1e-3 adversarial loss against the srresnet plugin's
SRGANDiscriminator (recipe ``kind = "gan"``). ``eval`` scores bicubic, phase 1 and phase 2
on Set5 and the first N B100 images: PSNR/SSIM (Y, standard protocol) and LPIPS-VGG.

Each phase is its own command so every run stays short on a shared 2-core machine::

    export SRPLUG_VGG16_WEIGHTS=../shared/weights/vgg16_imagenet_features.safetensors
    export SRPLUG_LPIPS_WEIGHTS=../shared/weights/lpips_vgg_lin_v0.1.safetensors
    python scripts/demo_srgan_tradeoff.py phase1 --out runs/demo_srgan --steps 3000
    python scripts/demo_srgan_tradeoff.py phase2 --out runs/demo_srgan --steps 1000
    python scripts/demo_srgan_tradeoff.py eval --out runs/demo_srgan --b100 20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

import srplug
from srplug.datasets import BenchmarkDataset
from srplug.evaluation import evaluate
from srplug.perceptual import LPIPS
from srplug.train import DefaultTrainer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SMALL = {"blocks": 4, "features": 32}


def small(args: argparse.Namespace) -> dict[str, Any]:
    """The scaled-down generator's build options (``--variant msrresnet``: BasicSR's no-BN
    variant with a bilinear skip, which learns much faster in a short run)."""
    return {**SMALL, "variant": args.variant}


def base_recipe(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "seed": 0,
        "device": "cpu",
        "log_every": 50,
        "model": {"name": "srresnet", "scale": 4, "options": small(args)},
        "data": {
            "train": args.train,
            "root": str(args.data),
            "patch_size": args.patch,
            "batch_size": args.batch,
        },
        "optim": {"lr": 2e-4},
        "schedule": {"steps": args.steps, "kind": "constant"},
        "loss": {"kind": "l1"},
        "ema": {"enabled": False},
        "checkpoint": {"every": 500, "keep": 0},
        "precision": {"mode": "fp32"},
    }


def phase1(args: argparse.Namespace) -> None:
    recipe = base_recipe(args)
    result = DefaultTrainer(progress=False).fit(recipe, output_dir=args.out / "phase1")
    print(f"phase 1 weights: {result.weights}")


def phase2(args: argparse.Namespace) -> None:
    recipe = base_recipe(args)
    recipe["kind"] = "gan"
    recipe["model"].update(name="srgan", init=str(args.out / "phase1" / "srresnet_x4.safetensors"))
    recipe["optim"]["lr"] = 1e-4
    recipe["gan"] = {
        "discriminator": "srplug_srresnet.discriminator:SRGANDiscriminator",
        "discriminator_options": {"features": 32, "input_size": args.patch},
        "d_lr": 1e-4,
        "adversarial_weight": args.adv_weight,
        "pixel_weight": args.pixel_weight,
        "feature_weight": 1.0,
        "feature_layer": args.layer,
        "feature_scale": 1 / 12.75,
    }
    result = DefaultTrainer(progress=False).fit(recipe, output_dir=args.out / "phase2")
    print(f"phase 2 weights: {result.weights}")


def run_eval(args: argparse.Namespace) -> None:
    metric = LPIPS()
    sets = [BenchmarkDataset(args.data / "Set5", 4), BenchmarkDataset(args.data / "B100", 4)]
    sets[1].files = sets[1].files[: args.b100]
    models = {} if args.no_bicubic else {"bicubic": srplug.get("bicubic", 4)}
    for name, model, phase in (
        ("phase1 SRResNet", "srresnet", "phase1"),
        ("phase2 SRGAN", "srgan", "phase2"),
    ):
        if phase in args.phases:
            path = args.out / phase / f"{model}_x4.safetensors"
            models[name] = srplug.get(model, 4, weights=path, **small(args))
    rows = []
    for name, up in models.items():
        for ds in sets:
            r = evaluate(up, ds, lpips=metric)
            rows.append({"model": name, "set": ds.name, "images": r.images, "psnr": r.psnr,
                         "ssim": r.ssim, "lpips": r.lpips})  # fmt: skip
            print(f"{name:16s} {ds.name:5s} ({r.images:3d}) PSNR {r.psnr:6.2f}  "
                  f"SSIM {r.ssim:.4f}  LPIPS {r.lpips:.4f}", flush=True)  # fmt: skip
    name = "eval_" + "_".join(args.phases) + ".json"
    (args.out / name).write_text(json.dumps(rows, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["phase1", "phase2", "eval"])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "demo_srgan")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--train", nargs="+", default=["T91"], help="training sets under --data")
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--layer", default="relu2_2", help="VGG16 feature-loss layer")
    p.add_argument("--pixel-weight", type=float, default=0.0, help="phase 2 pixel-loss weight")
    p.add_argument("--adv-weight", type=float, default=1e-3, help="phase 2 adversarial weight")
    p.add_argument("--variant", default="srresnet", choices=["srresnet", "msrresnet"])
    p.add_argument("--b100", type=int, default=20, help="first N B100 images")
    p.add_argument("--no-bicubic", action="store_true", help="eval: skip the bicubic rows")
    p.add_argument("--phases", nargs="+", default=["phase1", "phase2"], help="eval: which")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    {"phase1": phase1, "phase2": phase2, "eval": run_eval}[args.what](args)
    print(f"{args.what}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
