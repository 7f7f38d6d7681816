"""Compute precision for training: float32, bfloat16 autocast, float16 AMP, or measured.

Weights, optimizer state and the loss stay float32; only the forward/backward pass of the
network runs in the lower precision. ``auto`` times a few forward+backward steps on a probe
batch in float32 and in the candidate low precision (bfloat16; float16 on GPUs without it)
and keeps the low precision only when it is faster and its loss stays close.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from srplug.precision import Precision, candidate, resolve_fixed, time_interleaved

__all__ = ["Precision", "ProbeResult", "autocast", "probe_precision", "resolve_fixed"]

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: Precision, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for ``precision`` on ``device`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


@dataclass(frozen=True)
class ProbeResult:
    """What the ``auto`` probe measured and chose (times: median ms per fwd+bwd step)."""

    chosen: Precision
    candidate: Precision
    fp32_ms: float
    low_ms: float
    loss_fp32: float
    loss_low: float
    grad_cosine: float

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.low_ms

    @property
    def loss_change(self) -> float:
        return abs(self.loss_low - self.loss_fp32) / max(abs(self.loss_fp32), 1e-12)

    def describe(self) -> str:
        return (
            f"precision auto -> {self.chosen}: {self.candidate} step {self.low_ms:.2f} ms vs "
            f"fp32 {self.fp32_ms:.2f} ms (median; {self.speedup:.2f}x), probe loss change "
            f"{100 * self.loss_change:.3f} %, gradient cosine {self.grad_cosine:.5f}"
        )


def _step(
    model: nn.Module,
    lr: torch.Tensor,
    hr: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    precision: Precision,
) -> tuple[float, torch.Tensor]:
    """One forward+backward; returns the loss and the flattened float32 gradient."""
    model.zero_grad(set_to_none=True)
    with autocast(precision, lr.device):
        out = model(lr)
    loss = loss_fn(out.float(), hr)
    loss.backward()
    grads = [p.grad.flatten().float() for p in model.parameters() if p.grad is not None]
    return loss.detach().item(), torch.cat(grads) if grads else torch.zeros(1)


def probe_precision(
    model: nn.Module,
    lr: torch.Tensor,
    hr: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    steps: int = 5,
    min_speedup: float = 1.1,
    max_loss_change: float = 0.01,
    min_grad_cosine: float = 0.99,
) -> ProbeResult:
    """Time fp32 against the candidate low precision on a copy of ``model`` (left untouched).

    ``lr``/``hr`` is a training batch on the model's device, laid out as in training. The
    low precision is chosen when it is ``min_speedup`` times faster (median of ``steps``
    interleaved timings after one warm-up each), its loss differs by at most
    ``max_loss_change`` (relative) and its gradient has cosine >= ``min_grad_cosine`` with
    the fp32 one. Uses no global RNG.
    """
    low = candidate(lr.device)
    probe = copy.deepcopy(model).train()
    results = {}
    for mode in ("fp32", low):  # warm-up; also the loss/gradient comparison
        results[mode] = _step(probe, lr, hr, loss_fn, mode)
    times = time_interleaved(
        {mode: (lambda m=mode: _step(probe, lr, hr, loss_fn, m)) for mode in ("fp32", low)},
        steps,
        lr.device,
    )
    (loss32, g32), (loss_low, g_low) = results["fp32"], results[low]
    cosine = float(nn.functional.cosine_similarity(g32, g_low, dim=0))
    result = ProbeResult(
        chosen="fp32",
        candidate=low,
        fp32_ms=times["fp32"],
        low_ms=times[low],
        loss_fp32=loss32,
        loss_low=loss_low,
        grad_cosine=cosine,
    )
    good = (
        result.speedup >= min_speedup
        and result.loss_change <= max_loss_change
        and cosine >= min_grad_cosine
    )
    return result if not good else ProbeResult(**{**result.__dict__, "chosen": low})
