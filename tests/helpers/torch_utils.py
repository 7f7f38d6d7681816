"""Small torch helpers shared by tests: one intra-op thread, float64 runs, saved checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

import srplug


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread (fast and steady on a busy machine), then
    restore the previous count. Test modules wrap it in an autouse fixture."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_double(up: srplug.Upsampler, x: torch.Tensor) -> torch.Tensor:
    """``up``'s model in float64 on ``x`` ``(N, C, h, w)`` (cast to float64), without
    autograd; the model is converted in place."""
    model = up.model.double()
    with torch.no_grad():
        return model(x.double())


def save_checkpoint(state: dict, path: Path) -> Path:
    """``torch.save(state, path)``; returns ``path``."""
    torch.save(state, path)
    return path
