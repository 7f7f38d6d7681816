"""Training objectives: what one optimizer step of the trainer minimises.

The :class:`~srplug.train.trainer.DefaultTrainer` owns the data, the generator's optimizer,
schedule, EMA, precision and checkpoints; an :class:`Objective` (picked by the recipe's
``kind``) supplies the generator loss of a batch and may train a second network (the GAN
discriminator) after each generator step. Its extra state travels in the checkpoint.

- ``"pixel"``: :class:`PixelObjective`, the pixel loss of ``[loss]``;
- ``"gan"``: :class:`srplug.train.gan.GanObjective` (SRGAN/ESRGAN-style);
- ``"dual"``: :class:`srplug.train.dual.DualObjective` (DRN dual regression).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from srplug.errors import InputError
from srplug.train.distributed import DistContext
from srplug.train.precision import Precision, autocast
from srplug.train.recipe import Recipe

__all__ = ["Objective", "PixelObjective", "build_objective"]


class Objective:
    """Base class: the pixel loss between ``model(lr)`` and ``hr``.

    Subclasses override :meth:`generator_loss` and, when they train another network,
    :meth:`after_step`, :meth:`state_dict` and :meth:`load_state_dict`.

    Args:
        recipe: the run's recipe.
        model: the generator being trained (not wrapped in DDP).
        pixel_loss: ``(sr, hr) -> scalar`` built from ``[loss]``.
        ctx: the process group context (device, DDP wrapping).
    """

    def __init__(
        self, recipe: Recipe, model: nn.Module, pixel_loss: nn.Module, ctx: DistContext
    ) -> None:
        self.recipe = recipe
        self.model = model
        self.pixel_loss = pixel_loss
        self.ctx = ctx

    @property
    def paired(self) -> bool:
        """True when batches hold real HR targets (False: LR-only, ``hr`` is a placeholder)."""
        return True

    def extra_parameters(self) -> list[nn.Parameter]:
        """Parameters outside ``model`` that the generator optimizer also trains."""
        return []

    def training_module(self) -> nn.Module:
        """The module the trainer wraps in DDP and calls as ``module(lr)``."""
        return self.model

    def generator_loss(
        self, module: nn.Module, lr: torch.Tensor, hr: torch.Tensor, precision: Precision
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The scalar loss to minimise and its named terms (floats, for the log).

        ``module`` is :meth:`training_module`, possibly DDP-wrapped; ``lr``/``hr`` are the
        batch on the device, float in [0, 1], ``(B, C, h, w)`` / ``(B, C, h*s, w*s)``.
        """
        with autocast(precision, self.ctx.device):
            out = module(lr)
        return self.pixel_loss(out.float(), hr), {}

    def after_step(self, step: int, precision: Precision) -> dict[str, float]:
        """Called after each generator step (``step`` = steps done); returns log terms."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Extra checkpoint state (plain data and tensors); empty when there is none."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""


class PixelObjective(Objective):
    """``kind = "pixel"``: the pixel loss of ``[loss]`` only."""


def build_objective(
    recipe: Recipe, model: nn.Module, pixel_loss: nn.Module, ctx: DistContext
) -> Objective:
    """The objective for ``recipe.kind``."""
    if recipe.kind == "pixel":
        return PixelObjective(recipe, model, pixel_loss, ctx)
    if recipe.kind == "gan":
        from srplug.train.gan import GanObjective

        return GanObjective(recipe, model, pixel_loss, ctx)
    if recipe.kind == "dual":
        from srplug.train.dual import DualObjective

        return DualObjective(recipe, model, pixel_loss, ctx)
    raise InputError(f"unknown recipe kind {recipe.kind!r}: use 'pixel', 'gan' or 'dual'")


def parameters_of(modules: Iterable[nn.Module]) -> list[nn.Parameter]:
    """Distinct parameters of ``modules``, in order."""
    seen: set[int] = set()
    out = []
    for m in modules:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out
