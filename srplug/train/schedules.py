"""Learning-rate schedules: constant, step and cosine, each with optional linear warmup."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from srplug.errors import InputError

__all__ = ["LRFactor", "build_scheduler"]


class LRFactor:
    """The learning-rate multiplier for 0-based optimizer step ``k`` (a picklable callable,
    so ``LambdaLR`` stores it in its state dict).

    Warmup: ``(k + 1) / warmup`` for ``k < warmup``. Then, with ``t = k - warmup`` over
    ``span = steps - warmup``: ``constant`` 1; ``step`` ``gamma`` to the number of
    milestones ``<= k``; ``cosine`` from 1 down to ``min_factor`` at the last step
    (``k = steps - 1``).
    """

    def __init__(
        self,
        kind: str,
        steps: int,
        *,
        warmup: int = 0,
        milestones: Sequence[int] = (),
        gamma: float = 0.5,
        min_factor: float = 0.0,
    ) -> None:
        if kind not in ("constant", "step", "cosine"):
            raise InputError(f"unknown schedule {kind!r}: use 'constant', 'step' or 'cosine'")
        if steps < 1 or not 0 <= warmup < steps:
            raise InputError(
                f"schedule needs steps >= 1 and 0 <= warmup < steps, got {steps}, {warmup}"
            )
        self.kind = kind
        self.steps = steps
        self.warmup = warmup
        self.milestones = list(milestones)
        self.gamma = gamma
        self.min_factor = min_factor

    def __call__(self, k: int) -> float:
        if k < self.warmup:
            return (k + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        if self.kind == "step":
            return self.gamma ** sum(1 for m in self.milestones if k >= m)
        span = self.steps - self.warmup - 1
        t = min(1.0, (k - self.warmup) / span) if span > 0 else 1.0
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    kind: str,
    steps: int,
    *,
    warmup: int = 0,
    milestones: Sequence[int] = (),
    gamma: float = 0.5,
    min_lr: float = 0.0,
    base_lr: float | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :class:`LRFactor` to every group's base rate;
    call ``step()`` after every optimizer step. Every parameter group follows the same
    factor; ``min_lr`` is relative to ``base_lr`` (default: the first group's rate)."""
    if base_lr is None:
        base_lr = optimizer.param_groups[0]["lr"]
    factor = LRFactor(
        kind,
        steps,
        warmup=warmup,
        milestones=milestones,
        gamma=gamma,
        min_factor=min(1.0, min_lr / base_lr),
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
