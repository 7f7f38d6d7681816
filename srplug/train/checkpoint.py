"""Training checkpoints: written atomically, read back with ``weights_only=True``.

A checkpoint is a plain mapping of tensors, numbers, strings, lists and dicts (model,
optimizer, scheduler and EMA state, the step, RNG states, the recipe), so loading it never
runs pickled code. It is written to a temporary file beside the target, flushed to disk and
renamed over it: a crash at any moment leaves either the previous file or the new one.
"""

from __future__ import annotations

import os
import pickle
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srplug.atomic import atomic_open
from srplug.errors import WeightsError

__all__ = [
    "FORMAT_VERSION",
    "capture_rng",
    "load_training_checkpoint",
    "prune_checkpoints",
    "remove_stale_temporaries",
    "restore_rng",
    "save_atomic",
    "step_checkpoint_name",
]

FORMAT_VERSION = 1
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def step_checkpoint_name(step: int) -> str:
    """``step_000100.pt`` for step 100."""
    return f"step_{step:06d}.pt"


def save_atomic(state: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """``torch.save`` ``state`` to ``path`` via a temporary file and ``os.replace``."""
    with atomic_open(path, "wb") as f:
        torch.save(dict(state), f)
    return Path(path)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files a killed writer left in ``folder``; returns them."""
    removed = []
    root = Path(folder)
    if root.is_dir():
        for tmp in root.glob(".*.pt.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def prune_checkpoints(folder: str | os.PathLike[str], keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest ``step_*.pt`` files in ``folder``; returns them."""
    numbered = sorted(
        (int(m.group(1)), p)
        for p in Path(folder).glob("step_*.pt")
        if (m := _STEP_FILE.match(p.name))
    )
    doomed = [p for _, p in numbered[: max(0, len(numbered) - keep)]]
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed


def load_training_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_atomic` (``weights_only=True``, on CPU)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsError(f"checkpoint {file} does not exist; check the path")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(
            f"cannot read checkpoint {file} ({reason}); it is not a srplug training checkpoint "
            "or it is damaged: resume from another one (checkpoints/step_*.pt)"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise WeightsError(
            f"{file} is not a srplug training checkpoint (format {FORMAT_VERSION}); pass the "
            "checkpoints/last.pt of a srplug training run"
        )
    return state


# ---------------------------------------------------------------------------------- RNG


def capture_rng() -> dict[str, Any]:
    """The global RNG states of torch (CPU and CUDA), numpy and ``random``, as tensors,
    lists and numbers (weights-only loadable)."""
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(np_state[0]),
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "state": list(py_state), "gauss_next": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Set the global RNGs from :func:`capture_rng`'s output."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (
            n["kind"],
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
