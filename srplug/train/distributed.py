"""Multi-process training under ``torchrun``: process group, DDP wrapping, collectives.

``torchrun --nproc_per_node=N`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; with them
:func:`setup` joins the process group (gloo on CPU, nccl on CUDA). Without them everything
here degrades to single-process no-ops, so the trainer calls these helpers unconditionally.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from srplug.errors import InputError

__all__ = ["DistContext", "setup", "teardown", "unwrap"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, and its torch ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False
    """True when :func:`setup` created the process group (and :func:`teardown` ends it)."""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, validates and writes files."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in ``DistributedDataParallel`` when distributed, else unchanged."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a tensor over all processes (a copy; unchanged when single)."""
        value = value.detach().clone()
        if self.enabled:
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value /= self.world_size
        return value

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process (picklable objects)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, indexed by rank (``[obj]`` when single)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise InputError(f"environment variable {name}={raw!r} must be an integer") from exc


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"`` as a device for this process."""
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError("recipe device 'cuda' was asked for but torch sees no GPU; use 'auto'")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def setup(device_preference: str = "auto") -> DistContext:
    """Join the ``torchrun`` process group if there is one; pick this process's device."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    device = resolve_device(device_preference, local_rank)
    if world_size <= 1:
        return DistContext(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        # Rank 0 validates and exports while the others wait: allow for a slow final eval.
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(hours=2))
        owns = True
    if dist.get_world_size() != world_size or dist.get_rank() != rank:
        raise InputError(
            "the initialised process group disagrees with RANK/WORLD_SIZE; launch with torchrun"
        )
    return DistContext(rank, world_size, local_rank, device, owns)


def teardown(ctx: DistContext, *, synchronize: bool = True) -> None:
    """Leave the process group if :func:`setup` created it, after a barrier when
    ``synchronize`` (skip it on errors: the other processes may never arrive)."""
    if ctx.owns_group and dist.is_initialized():
        if synchronize:
            dist.barrier()
        dist.destroy_process_group()


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
