"""``srplug train``: run a recipe, or resume a run from its checkpoint.

Registered as a core plugin, so it is there whenever srplug is installed. Under
``torchrun --nproc_per_node=N -m srplug.cli train RECIPE`` every process runs it and they
train together.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from srplug.errors import InputError
from srplug.hookspecs import hookimpl

DEFAULT_RUNS = "runs"


def _cmd_train(args: argparse.Namespace) -> int:
    from srplug.train.checkpoint import load_training_checkpoint
    from srplug.train.recipe import load_recipe
    from srplug.train.trainer import DefaultTrainer

    if args.threads is not None:
        import torch

        if args.threads < 1:
            raise InputError(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    trainer = DefaultTrainer(progress=not args.no_progress, data_root=args.data)
    if args.resume:
        if args.output:
            raise InputError("--output does not apply to --resume: the run continues in place")
        if args.recipe:
            stored = load_training_checkpoint(args.resume)["recipe"]
            given = load_recipe(args.recipe).to_dict()
            if given != stored:
                raise InputError(
                    f"recipe {args.recipe} differs from the one stored in {args.resume}; drop "
                    "RECIPE to resume with the stored recipe (use --steps to train longer)"
                )
        result = trainer.resume(args.resume, steps=args.steps, stop_at=args.stop_at)
    else:
        if not args.recipe:
            raise InputError("srplug train needs a RECIPE file (or --resume CHECKPOINT)")
        output = args.output or str(Path(DEFAULT_RUNS) / Path(args.recipe).stem)
        result = trainer.fit(args.recipe, output_dir=output, steps=args.steps, stop_at=args.stop_at)
    if os.environ.get("RANK", "0") != "0":  # one report under torchrun
        return 0
    if args.json:
        print(
            json.dumps(
                {
                    "checkpoint": str(result.checkpoint),
                    "weights": None if result.weights is None else str(result.weights),
                    "steps": result.steps,
                    "metrics": dict(result.metrics),
                },
                indent=2,
            )
        )
    elif result.weights is None:
        print(
            f"stopped at step {result.steps}; resume with: srplug train --resume "
            f"{result.checkpoint}"
        )
    else:
        print(f"trained {result.steps} steps; weights: {result.weights}")
    return 0


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model from a recipe (TOML/YAML), or resume a run",
        description="Train a model from a recipe, writing checkpoints, a log, the weights "
        "(safetensors) and a model card into the output folder. Run it under "
        "`torchrun --nproc_per_node=N -m srplug.cli train ...` to use N processes.",
    )
    p.add_argument("recipe", nargs="?", default=None, metavar="RECIPE", help="recipe file")
    p.add_argument(
        "--output",
        "-o",
        default=None,
        metavar="DIR",
        help=f"output folder (default {DEFAULT_RUNS}/<recipe name>)",
    )
    p.add_argument(
        "--resume", metavar="CKPT", default=None, help="continue from a checkpoint (last.pt)"
    )
    p.add_argument("--steps", type=int, default=None, help="override the total step count")
    p.add_argument(
        "--stop-at",
        type=int,
        default=None,
        metavar="STEP",
        help="stop after this step with a checkpoint (resume later)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="data root for set names (default: with --resume the run's own, else the "
        "recipe's data.root, else $SRPLUG_DATA)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per process (default: torch's choice; 1 is best on a busy machine)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_train)
