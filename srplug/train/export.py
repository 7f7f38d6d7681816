"""Exporting trained weights: a safetensors file plus a JSON model card beside it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from srplug.atomic import atomic_open
from srplug.evaluation import DatasetResult
from srplug.weights import Metric, ModelCard, save_safetensors

__all__ = ["build_card", "export_weights", "write_json_atomic"]


def write_json_atomic(data: object, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    return Path(path)


def build_card(
    model: nn.Module,
    *,
    recipe: str | None,
    training_data: Sequence[str],
    steps: int,
    results: Sequence[DatasetResult],
    notes: str = "",
) -> ModelCard:
    """The model card of weights trained here: parameter count, recipe, data, steps and the
    standard-protocol scores in ``results``."""
    return ModelCard(
        params=sum(p.numel() for p in model.parameters()),
        recipe=recipe,
        training_data="+".join(training_data),
        steps=steps,
        metrics=tuple(Metric(r.dataset, r.scale, r.psnr, r.ssim) for r in results),
        source="srplug",
        notes=notes,
    )


def export_weights(model: nn.Module, card: ModelCard, path: str | os.PathLike[str]) -> Path:
    """Write ``model``'s state dict to ``path`` (safetensors) and ``card`` to the same name
    with ``.json``; returns the weights path."""
    target = Path(path)
    save_safetensors(model.state_dict(), target, metadata={"format": "pt", "source": "srplug"})
    write_json_atomic(card.to_dict(), target.with_suffix(".json"))
    return target
