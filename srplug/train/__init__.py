"""srplug's default trainer: recipes, paired patch data, losses, EMA, schedules, checkpoints.

The recipe's ``kind`` picks the objective: ``"pixel"``, ``"gan"`` (VGG feature +
adversarial loss with a discriminator, :mod:`srplug.train.gan`) or ``"dual"`` (DRN dual
regression, also on LR-only images, :mod:`srplug.train.dual`).

>>> from srplug.train import DefaultTrainer, load_recipe
>>> result = DefaultTrainer().fit("recipes/tiny.toml", output_dir="runs/tiny")
>>> DefaultTrainer().resume(result.checkpoint)   # continue an interrupted run exactly

The command line does the same: ``srplug train RECIPE -o DIR``, ``srplug train --resume
CKPT``, and ``torchrun --nproc_per_node=N -m srplug.cli train RECIPE`` for several processes.

The names below are imported on first use, so registering the ``train`` command (which
imports this package) costs nothing until training is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from srplug.train.recipe import Recipe, load_recipe
    from srplug.train.trainer import DefaultTrainer, StepEvent

__all__ = ["DefaultTrainer", "Recipe", "StepEvent", "load_recipe"]

_HOMES = {
    "DefaultTrainer": "srplug.train.trainer",
    "StepEvent": "srplug.train.trainer",
    "Recipe": "srplug.train.recipe",
    "load_recipe": "srplug.train.recipe",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'srplug.train' has no attribute {name!r}")
