"""The default :class:`~srplug.protocols.Trainer`: recipe in, weights and model card out.

A run lives in one output folder::

    OUTPUT/recipe.json                   the resolved recipe
    OUTPUT/train_log.jsonl               {"step", "loss", "lr"[, "terms"]} and {"step", "val"} lines
    OUTPUT/checkpoints/last.pt           newest checkpoint (plus step_000100.pt ... if kept)
    OUTPUT/<model>_x<scale>.safetensors  exported EMA (or raw) weights, once complete
    OUTPUT/<model>_x<scale>.json         its model card

Under ``torchrun`` every process runs the same code; rank 0 alone logs, validates and
writes files.

What a step minimises comes from the recipe's ``kind`` (an
:class:`~srplug.train.objectives.Objective`): the pixel loss, SRGAN-style perceptual/GAN
training with a discriminator (:mod:`srplug.train.gan`), or DRN dual regression, paired or
on LR-only images (:mod:`srplug.train.dual`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import os
import random
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

import srplug
from srplug.datasets import BenchmarkDataset, data_root_or_env, resolve_dataset
from srplug.errors import InputError
from srplug.evaluation import DatasetResult
from srplug.layout import to_memory_format
from srplug.protocols import Channels, RecipeLike, TrainResult
from srplug.train import checkpoint as ckpt
from srplug.train import distributed
from srplug.train.data import PatchStream, TrainPairs, resolve_train_folders
from srplug.train.ema import ModelEMA
from srplug.train.export import build_card, export_weights, write_json_atomic
from srplug.train.losses import build_loss
from srplug.train.objectives import Objective, build_objective
from srplug.train.precision import Precision, probe_precision, resolve_fixed
from srplug.train.recipe import Recipe, load_recipe
from srplug.train.schedules import build_scheduler
from srplug.train.validation import CachedBenchmark, metric_key, score

__all__ = ["DefaultTrainer", "StepEvent"]

LAST = "last.pt"
LOG_FILE = "train_log.jsonl"


@dataclass(frozen=True)
class StepEvent:
    """Given to trainer callbacks after every optimizer step, on every process."""

    step: int
    """Steps done so far (1 after the first)."""
    total: int
    loss: float
    """This process's loss on its share of the batch."""
    lr: float
    """Learning rate the step used."""
    rank: int
    world_size: int
    model: nn.Module
    """The network being trained (unwrapped from DDP)."""
    ema: nn.Module | None


StepCallback = Callable[[StepEvent], None]


@dataclass
class _Run:
    """Everything one fit/resume session works with."""

    recipe: Recipe
    recipe_path: str | None
    output: Path
    ctx: distributed.DistContext
    model: nn.Module
    train_model: nn.Module
    ema: ModelEMA | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    loss_fn: nn.Module
    objective: Objective
    data: TrainPairs | Any
    """:class:`TrainPairs`, or LR-only patches (:class:`~srplug.train.dual.LRPatches`)."""
    train_folders: list[Path]
    val_sets: list[BenchmarkDataset]
    final_sets: list[BenchmarkDataset]
    channels: Channels
    data_root: str | None
    """Absolute data root the set names resolved against (``None``: there was none)."""
    step: int = 0
    precision: Precision = "fp32"
    precision_note: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    scored: dict[int, DatasetResult] = field(default_factory=dict)
    """Results at the current step by ``id(dataset)``, so the final scoring reuses them."""
    scored_step: int = -1
    terms: dict[str, float] = field(default_factory=dict)
    """Named loss terms of the last step (GAN/dual objectives), logged beside the loss."""

    @property
    def memory_format(self) -> torch.memory_format:
        return _memory_format(self.ctx.device)

    @property
    def export_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    @property
    def checkpoint_dir(self) -> Path:
        return self.output / "checkpoints"

    @property
    def weights_path(self) -> Path:
        m = self.recipe.model
        return self.output / f"{m.name}_x{m.scale}.safetensors"

    @property
    def per_rank_batch(self) -> int:
        return self.recipe.data.batch_size // self.ctx.world_size


class DefaultTrainer:
    """srplug's own trainer (see :class:`~srplug.protocols.Trainer`).

    Args:
        progress: show a progress bar (loss, validation PSNR, it/s) on rank 0.
        data_root: folder holding named data sets; overrides the recipe's ``data.root`` and
            the root a resumed run trained with (default: that root, else the recipe's,
            else ``$SRPLUG_DATA``).
        callbacks: called with a :class:`StepEvent` after every optimizer step.
        log: receives the trainer's messages (rank 0 only; default: print to stderr).
    """

    def __init__(
        self,
        *,
        progress: bool = True,
        data_root: str | os.PathLike[str] | None = None,
        callbacks: Sequence[StepCallback] = (),
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.progress = progress
        self.data_root = None if data_root is None else str(data_root)
        self.callbacks = list(callbacks)
        self._log = log
        self._last: _Run | None = None

    # ------------------------------------------------------------------------ public API

    def fit(
        self,
        recipe: RecipeLike | Recipe,
        *,
        output_dir: str | os.PathLike[str],
        steps: int | None = None,
        stop_at: int | None = None,
    ) -> TrainResult:
        """Train from scratch (or from ``model.init``) into ``output_dir``.

        ``steps`` overrides ``schedule.steps``; ``stop_at`` ends this session after that
        step with a checkpoint (the schedule still spans all steps; :meth:`resume` goes on).
        Refuses an ``output_dir`` that already holds a run.
        """
        path = str(recipe) if isinstance(recipe, (str, os.PathLike)) else None
        parsed = load_recipe(recipe)
        if steps is not None:
            parsed = parsed.with_steps(_positive("steps", steps))
        output = Path(output_dir)
        last = output / "checkpoints" / LAST
        if last.exists():
            raise InputError(
                f"{output} already holds a training run; continue it with "
                f"`srplug train --resume {last}` or choose another output folder"
            )
        return self._session(parsed, path, output, None, stop_at)

    def resume(
        self,
        checkpoint: str | os.PathLike[str],
        *,
        steps: int | None = None,
        stop_at: int | None = None,
    ) -> TrainResult:
        """Continue the run that wrote ``checkpoint`` exactly where it stopped, in the same
        output folder (the checkpoint's grandparent).

        Set names resolve under the data root the run trained with, unless this trainer
        was given ``data_root``. ``steps`` changes the total (a cosine schedule then
        stretches from here on);
        ``stop_at`` ends this session early, as in :meth:`fit`.
        """
        state = ckpt.load_training_checkpoint(checkpoint)
        recipe = Recipe.from_dict(state["recipe"])
        if steps is not None:
            if _positive("steps", steps) < state["step"]:
                raise InputError(
                    f"steps={steps} is below the {state['step']} steps the checkpoint has done"
                )
            recipe = recipe.with_steps(steps)
        output = Path(checkpoint).expanduser().resolve().parent.parent
        return self._session(recipe, state.get("recipe_path"), output, state, stop_at)

    def evaluate(
        self, datasets: Sequence[str | os.PathLike[str]], *, scale: int | None = None
    ) -> list[DatasetResult]:
        """Standard-protocol PSNR/SSIM of the last trained weights (EMA when enabled) on
        benchmark folders or set names (under the data root)."""
        run = self._last
        if run is None:
            raise InputError("nothing to evaluate yet: call fit() or resume() first")
        trained = run.recipe.model.scale
        if scale is not None and scale != trained:
            raise InputError(f"the trained network is x{trained}; it cannot be scored at x{scale}")
        sets = [BenchmarkDataset(resolve_dataset(d, run.data_root), trained) for d in datasets]
        return self._score(run, sets)

    # -------------------------------------------------------------------------- session

    def _say(self, run_ctx: distributed.DistContext, message: str) -> None:
        if not run_ctx.is_main:
            return
        if self._log is not None:
            self._log(message)
        else:
            from tqdm.auto import tqdm

            tqdm.write(message, file=sys.stderr)

    def _session(
        self,
        recipe: Recipe,
        recipe_path: str | None,
        output: Path,
        state: Mapping[str, Any] | None,
        stop_at: int | None,
    ) -> TrainResult:
        ctx = distributed.setup(recipe.device)
        clean = False
        try:
            run = self._prepare(recipe, recipe_path, output, ctx, state)
            self._last = run
            end = recipe.schedule.steps if stop_at is None else min(stop_at, recipe.schedule.steps)
            self._train(run, end)
            result = self._finish(run)
            clean = True
            return result
        finally:
            if self._last is not None:
                self._last.train_model = self._last.model  # the DDP wrapper dies with the group
            distributed.teardown(ctx, synchronize=clean)

    def _prepare(
        self,
        recipe: Recipe,
        recipe_path: str | None,
        output: Path,
        ctx: distributed.DistContext,
        state: Mapping[str, Any] | None,
    ) -> _Run:
        torch.manual_seed(recipe.seed)
        np.random.seed(recipe.seed)
        random.seed(recipe.seed)
        m = recipe.model
        if recipe.data.batch_size % ctx.world_size:
            raise InputError(
                f"data.batch_size {recipe.data.batch_size} does not split evenly over "
                f"{ctx.world_size} processes; make it a multiple of the process count"
            )
        spec = srplug.info(m.name)
        # eager modules: training differentiates them directly (fused kernels would
        # recompute their reference in every backward)
        model = srplug.get(m.name, m.scale, weights=m.init, kernels="eager", **m.options).model
        if model is None:
            raise InputError(f"model {m.name!r} has no parameters to train")
        model = to_memory_format(
            model.to(device=ctx.device, dtype=torch.float32), _memory_format(ctx.device)
        )
        model.train()
        ema = (
            ModelEMA(model, recipe.ema.decay, warmup=recipe.ema.warmup)
            if recipe.ema.enabled
            else None
        )
        loss_spec = recipe.loss
        loss_fn = build_loss(
            loss_spec.kind, loss_spec.eps, loss_spec.border, loss_spec.border_weight
        )
        objective = build_objective(recipe, model, loss_fn, ctx)
        optimizer = _build_optimizer(
            [*model.named_parameters(), *(("", p) for p in objective.extra_parameters())],
            recipe,
        )
        s = recipe.schedule
        scheduler = build_scheduler(
            optimizer,
            s.kind,
            s.steps,
            warmup=s.warmup,
            milestones=s.milestones,
            gamma=s.gamma,
            min_lr=s.min_lr,
            base_lr=recipe.optim.lr,
        )
        root = self._data_root(recipe, state)
        val_sets, final_sets, folders, data = self._datasets(recipe, spec.channels, ctx, root)
        run = _Run(
            recipe=recipe,
            recipe_path=recipe_path,
            output=output,
            ctx=ctx,
            model=model,
            train_model=model,
            ema=ema,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=None,
            loss_fn=loss_fn,
            objective=objective,
            data=data,
            train_folders=folders,
            val_sets=val_sets,
            final_sets=final_sets,
            channels=spec.channels,
            data_root=root,
        )
        params = sum(p.numel() for p in model.parameters())
        self._say(
            ctx,
            f"training {m.name} x{m.scale} ({spec.channels}, {params:,} parameters) on "
            f"{len(data)} images from {', '.join(str(f) for f in folders)}"
            + (f" ({len(data.skipped)} smaller than a patch skipped)" if data.skipped else "")
            + f"; {ctx.world_size} process(es) on {ctx.device}",
        )
        if state is not None:
            self._restore(run, state)
        else:
            self._choose_precision(run)
            if ctx.is_main:
                run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
                write_json_atomic(recipe.to_dict(), output / "recipe.json")
                (output / LOG_FILE).unlink(missing_ok=True)
        if run.precision == "fp16":
            run.scaler = torch.amp.GradScaler("cuda")
            if state is not None and "scaler" in state:
                run.scaler.load_state_dict(state["scaler"])
        run.train_model = ctx.wrap(objective.training_module())
        return run

    def _data_root(self, recipe: Recipe, state: Mapping[str, Any] | None) -> str | None:
        """The data root of a session, absolute: ``data_root`` given to the trainer, else
        the root a resumed run trained with, else the recipe's ``data.root``, else
        ``$SRPLUG_DATA``; ``None`` when there is none (set names must then be folders)."""
        root = self.data_root
        if root is None and state is not None:
            root = state.get("data_root")
        if root is None:
            root = data_root_or_env(recipe.data.root or None)
        return None if root is None else str(Path(root).expanduser().resolve())

    def _datasets(
        self, recipe: Recipe, channels: Channels, ctx: distributed.DistContext, root: str | None
    ) -> tuple[list[CachedBenchmark], list[CachedBenchmark], list[Path], Any]:
        """Validation sets, final sets, training folders (none of them a benchmark) and the
        cached training pairs (LR-only patches for unpaired dual training), set names
        resolved under ``root``."""
        scale = recipe.model.scale
        val_sets = [CachedBenchmark(d, scale, data_root=root) for d in recipe.validation.sets]
        final_sets = [
            next((v for v in val_sets if v.root == resolve_dataset(d, root)), None)
            or CachedBenchmark(d, scale, data_root=root)
            for d in recipe.final_sets
        ]
        folders = resolve_train_folders(
            recipe.data.train, root, exclude=[v.root for v in (*val_sets, *final_sets)]
        )
        if recipe.kind == "dual" and recipe.dual.unpaired:
            from srplug.train.dual import LRPatches

            lr_only = LRPatches(
                folders,
                scale,
                recipe.data.patch_size,
                channels=channels,
                flip=recipe.data.flip,
                rot90=recipe.data.rot90,
                seed=recipe.seed,
            )
            return val_sets, final_sets, folders, lr_only
        data = TrainPairs(
            folders,
            scale,
            recipe.data.patch_size,
            channels=channels,
            flip=recipe.data.flip,
            rot90=recipe.data.rot90,
            hr_scales=recipe.data.hr_scales,
            seed=recipe.seed,
            progress=self.progress and ctx.is_main,
            degradation=recipe.data.degradation,
        )
        return val_sets, final_sets, folders, data

    def _choose_precision(self, run: _Run) -> None:
        p = run.recipe.precision
        device = run.ctx.device
        if p.mode != "auto":
            run.precision = resolve_fixed(p.mode, device)
            run.precision_note = f"precision {run.precision} (from the recipe)"
        elif not run.objective.paired:
            run.precision = "fp32"
            run.precision_note = "precision fp32 (auto: the probe needs HR patches; LR-only data)"
        else:
            note = ""
            chosen: Precision = "fp32"
            if run.ctx.is_main:
                lr, hr = self._batch(run, PatchStream(len(run.data), seed=run.recipe.seed))
                result = probe_precision(
                    run.model,
                    lr,
                    hr,
                    run.loss_fn,
                    steps=p.probe_steps,
                    min_speedup=p.min_speedup,
                    max_loss_change=p.max_loss_change,
                )
                chosen, note = result.chosen, result.describe()
            run.precision, run.precision_note = run.ctx.broadcast((chosen, note))
        self._say(run.ctx, run.precision_note)

    def _batch(self, run: _Run, stream: PatchStream) -> tuple[torch.Tensor, torch.Tensor]:
        """The first per-process batch of ``stream``, on the device (for the probe)."""
        items = [run.data[stream.global_index(i)] for i in range(run.per_rank_batch)]
        lr = torch.stack([a for a, _ in items])
        hr = torch.stack([b for _, b in items])
        return self._to_device(run, lr, hr)

    def _to_device(
        self, run: _Run, lr: torch.Tensor, hr: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        fmt = run.memory_format
        dev = run.ctx.device
        return (
            lr.to(dev, non_blocking=True).contiguous(memory_format=fmt),
            hr.to(dev, non_blocking=True).contiguous(memory_format=fmt),
        )

    def _restore(self, run: _Run, state: Mapping[str, Any]) -> None:
        run.model.load_state_dict(state["model"])
        run.objective.load_state_dict(state.get("objective", {}))
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        if run.ema is not None:
            if state.get("ema") is None:
                raise InputError("the recipe enables EMA but the checkpoint holds no EMA state")
            run.ema.load_state_dict(state["ema"])
        run.step = int(state["step"])
        run.precision = state["precision"]
        run.precision_note = f"precision {run.precision} (as when the run started)"
        run.metrics = dict(state.get("metrics", {}))
        rng = state["rng"]
        saved_world = len(rng)
        if saved_world != run.ctx.world_size:
            self._say(
                run.ctx,
                f"warning: the checkpoint was written by {saved_world} process(es), this run "
                f"has {run.ctx.world_size}: training continues, but not bit-exactly",
            )
        ckpt.restore_rng(rng[run.ctx.rank % saved_world])
        if run.ctx.is_main:
            ckpt.remove_stale_temporaries(run.checkpoint_dir)
            _truncate_log(run.output / LOG_FILE, run.step)
        self._say(run.ctx, f"resumed at step {run.step} of {run.recipe.schedule.steps}")
        self._say(run.ctx, run.precision_note)

    def _loader(self, run: _Run) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        stream = PatchStream(
            len(run.data),
            seed=run.recipe.seed,
            rank=run.ctx.rank,
            world_size=run.ctx.world_size,
            start=run.step * run.per_rank_batch,
        )
        workers = run.recipe.data.workers
        loader = DataLoader(
            run.data,
            batch_size=run.per_rank_batch,
            sampler=stream,
            num_workers=workers,
            pin_memory=run.ctx.device.type == "cuda",
            generator=torch.Generator().manual_seed(run.recipe.seed),  # keeps global RNG
            persistent_workers=False,
            prefetch_factor=4 if workers else None,
        )
        return iter(loader)

    def _train(self, run: _Run, end: int) -> None:
        if run.step >= end:
            return
        from tqdm.auto import tqdm

        ctx = run.ctx
        total = run.recipe.schedule.steps
        bar = tqdm(
            total=total,
            initial=run.step,
            desc=f"{run.recipe.model.name} x{run.recipe.model.scale}",
            unit="it",
            dynamic_ncols=True,
            disable=not (self.progress and ctx.is_main),
            file=sys.stderr,
        )
        with contextlib.ExitStack() as stack:
            stack.callback(bar.close)
            log = None
            if ctx.is_main:
                log = stack.enter_context(open(run.output / LOG_FILE, "a", encoding="utf-8"))
            self._loop(run, end, bar, log)

    def _loop(self, run: _Run, end: int, bar: Any, log: Any) -> None:
        total = run.recipe.schedule.steps
        batches = self._loader(run)
        smoothed = math.nan
        while run.step < end:
            lr_used = run.optimizer.param_groups[0]["lr"]
            loss = self._step(run, *next(batches))
            run.step += 1
            smoothed = loss if math.isnan(smoothed) else 0.95 * smoothed + 0.05 * loss
            if run.step % run.recipe.log_every == 0 or run.step == end:
                mean = float(run.ctx.mean(torch.tensor(loss, dtype=torch.float64)))
                record: dict[str, Any] = {"step": run.step, "loss": mean, "lr": lr_used}
                if run.terms:
                    record["terms"] = dict(run.terms)
                _write_line(log, record)
            for callback in self.callbacks:
                callback(self._event(run, loss, lr_used))
            if run.val_sets and (run.step % run.recipe.validation.every == 0 or run.step == total):
                self._validate(run, log)
            if run.step % run.recipe.checkpoint.every == 0 or run.step == end:
                self._save_checkpoint(run)
            postfix = {"loss": f"{smoothed:.4g}"}
            psnr = next((v for k, v in run.metrics.items() if k.endswith("/psnr")), None)
            if psnr is not None:
                postfix["psnr"] = f"{psnr:.2f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)

    def _step(self, run: _Run, lr: torch.Tensor, hr: torch.Tensor) -> float:
        lr, hr = self._to_device(run, lr, hr)
        loss, terms = run.objective.generator_loss(run.train_model, lr, hr, run.precision)
        if not torch.isfinite(loss):
            raise InputError(
                f"loss became {loss.detach().item()} at step {run.step + 1}; lower optim.lr, "
                "enable optim.grad_clip or use precision 'fp32'"
            )
        run.optimizer.zero_grad(set_to_none=True)
        clip = run.recipe.optim.grad_clip
        params = [p for group in run.optimizer.param_groups for p in group["params"]]
        if run.scaler is not None:
            run.scaler.scale(loss).backward()
            if clip:
                run.scaler.unscale_(run.optimizer)
                nn.utils.clip_grad_norm_(params, clip)
            run.scaler.step(run.optimizer)
            run.scaler.update()
        else:
            loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(params, clip)
            run.optimizer.step()
        run.scheduler.step()
        if run.ema is not None:
            run.ema.update(run.model)
        terms.update(run.objective.after_step(run.step + 1, run.precision))
        run.terms = terms
        return loss.detach().item()

    def _event(self, run: _Run, loss: float, lr: float) -> StepEvent:
        return StepEvent(
            step=run.step,
            total=run.recipe.schedule.steps,
            loss=loss,
            lr=lr,
            rank=run.ctx.rank,
            world_size=run.ctx.world_size,
            model=run.model,
            ema=run.ema.module if run.ema is not None else None,
        )

    def _score(self, run: _Run, sets: Sequence[BenchmarkDataset]) -> list[DatasetResult]:
        model = run.export_model
        try:
            return score(model, sets, name=run.recipe.model.name, channels=run.channels)
        finally:
            if model is run.model:
                run.model.train()

    def _score_at_step(self, run: _Run, sets: Sequence[BenchmarkDataset]) -> list[DatasetResult]:
        """Scores of the current weights, reusing those already taken at this step."""
        if run.scored_step != run.step:
            run.scored, run.scored_step = {}, run.step
        todo = [ds for ds in sets if id(ds) not in run.scored]
        for ds, result in zip(todo, self._score(run, todo), strict=True):
            run.scored[id(ds)] = result
            run.metrics[metric_key(result, "psnr")] = result.psnr
            run.metrics[metric_key(result, "ssim")] = result.ssim
        return [run.scored[id(ds)] for ds in sets]

    def _validate(self, run: _Run, log: Any) -> None:
        if not run.ctx.is_main:
            return
        results = self._score_at_step(run, run.val_sets)
        _write_line(log, {"step": run.step, "val": {metric_key(r): r.psnr for r in results}})
        self._say(
            run.ctx,
            f"step {run.step}: "
            + ", ".join(f"{r.dataset} x{r.scale} {r.psnr:.2f} dB" for r in results),
        )

    def _save_checkpoint(self, run: _Run) -> None:
        rng = run.ctx.gather(ckpt.capture_rng())
        if run.ctx.is_main:
            state: dict[str, Any] = {
                "format": ckpt.FORMAT_VERSION,
                "step": run.step,
                "recipe": run.recipe.to_dict(),
                "recipe_path": run.recipe_path,
                "data_root": run.data_root,
                "model": run.model.state_dict(),
                "optimizer": run.optimizer.state_dict(),
                "scheduler": run.scheduler.state_dict(),
                "ema": run.ema.state_dict() if run.ema is not None else None,
                "precision": run.precision,
                "rng": rng,
                "sampler": {
                    "seed": run.recipe.seed,
                    "world_size": run.ctx.world_size,
                    "samples_seen": run.step * run.recipe.data.batch_size,
                },
                "metrics": dict(run.metrics),
            }
            extra = run.objective.state_dict()
            if extra:
                state["objective"] = extra
            if run.scaler is not None:
                state["scaler"] = run.scaler.state_dict()
            ckpt.save_atomic(state, run.checkpoint_dir / LAST)
            keep = run.recipe.checkpoint.keep
            if keep:
                ckpt.save_atomic(state, run.checkpoint_dir / ckpt.step_checkpoint_name(run.step))
                ckpt.prune_checkpoints(run.checkpoint_dir, keep)
        run.ctx.barrier()

    def _finish(self, run: _Run) -> TrainResult:
        last = run.checkpoint_dir / LAST
        done = run.step >= run.recipe.schedule.steps
        weights: Path | None = None
        if done and run.ctx.is_main:
            results = self._score_at_step(run, run.final_sets)
            card = build_card(
                run.export_model,
                recipe=run.recipe_path,
                training_data=[f.name for f in run.train_folders],
                steps=run.step,
                results=results,
                notes=f"{run.precision_note}; EMA "
                + (f"decay {run.recipe.ema.decay}" if run.ema is not None else "off")
                + ("" if run.recipe.kind == "pixel" else f"; recipe kind {run.recipe.kind!r}"),
            )
            weights = export_weights(run.export_model, card, run.weights_path)
            for r in results:
                self._say(run.ctx, f"final: {r}")
            self._say(run.ctx, f"weights: {weights}")
        weights, metrics = run.ctx.broadcast((weights, dict(run.metrics)))
        run.metrics = metrics
        return TrainResult(checkpoint=last, weights=weights, steps=run.step, metrics=metrics)


def _memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CPU (several times faster convolutions), the default elsewhere."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return value


def _build_optimizer(
    named: Sequence[tuple[str, nn.Parameter]], recipe: Recipe
) -> torch.optim.Optimizer:
    """Adam/AdamW over the trainable parameters, one group per ``optim.lr_scale`` factor
    (group 0 at ``optim.lr``); ``named`` pairs each parameter with its name in the model."""
    o = recipe.optim
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    groups = lr_scale_groups([(n, p) for n, p in named if p.requires_grad], o.lr, o.lr_scale)
    return cls(groups, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)


def lr_scale_groups(
    named: Sequence[tuple[str, nn.Parameter]], lr: float, lr_scale: Mapping[str, float]
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the first ``lr_scale`` pattern (``fnmatch`` over the
    parameter name) matching a parameter sets its rate to ``lr * factor``; the rest share
    ``lr`` in the first group, which is always there (possibly empty), so group 0 runs at
    ``lr``. A pattern matching no parameter raises :class:`InputError` listing the names,
    since a mistyped pattern would otherwise change nothing silently; so does an empty
    ``named``, which would train nothing."""
    if not named:
        raise InputError(
            "the model has no trainable parameters (every one has requires_grad=False); "
            "nothing to train"
        )
    by_factor: dict[float, list[nn.Parameter]] = {1.0: []}
    used: set[str] = set()
    for name, param in named:
        factor = 1.0
        for pattern, f in lr_scale.items():
            if fnmatch.fnmatchcase(name, pattern):
                factor = float(f)
                used.add(pattern)
                break
        by_factor.setdefault(factor, []).append(param)
    unused = [p for p in lr_scale if p not in used]
    if unused:
        _refuse_unused_pattern(unused[0], [n for n, _ in named], list(lr_scale))
    groups = [{"params": by_factor.pop(1.0), "lr": lr}]
    return groups + [{"params": ps, "lr": lr * f} for f, ps in by_factor.items()]


def _refuse_unused_pattern(pattern: str, names: Sequence[str], patterns: Sequence[str]) -> None:
    """Raise :class:`InputError` for an ``optim.lr_scale`` pattern that sets no rate: either
    it matches no parameter, or every parameter it matches went to an earlier pattern."""
    matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    if not matched:
        raise InputError(
            f"optim.lr_scale pattern {pattern!r} matches no trainable parameter; "
            f"the model's parameters are: {', '.join(n for n in names if n)}"
        )
    earlier = patterns[: patterns.index(pattern)]
    takers = [q for q in earlier if any(fnmatch.fnmatchcase(n, q) for n in matched)]
    raise InputError(
        f"optim.lr_scale pattern {pattern!r} sets no rate: every parameter it matches "
        f"({', '.join(matched)}) is taken by the earlier pattern(s) {', '.join(map(repr, takers))} "
        "(the first matching pattern wins); move it before them or drop it"
    )


def _write_line(log: Any, record: Mapping[str, Any]) -> None:
    if log is not None:
        log.write(json.dumps(record) + "\n")
        log.flush()


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a resume starts from)."""
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if (line_step := _line_step(line)) is not None and line_step <= step
    ]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    os.replace(tmp, path)


def _line_step(line: str) -> int | None:
    """The step of a log line; None for a torn line a killed run left."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None
