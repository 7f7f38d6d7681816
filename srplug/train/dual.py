"""DRN dual regression (recipe ``kind = "dual"``; Guo et al., CVPR 2020).

The model (the primal network P) must offer

- ``forward_all(lr) -> list[Tensor]``: its outputs from coarse to fine, each ``(B, C, h*k,
  w*k)`` for k = 1 (optional), 2, 4, ..., S;
- ``dual_models``: a sequence of modules, ``dual_models[i]`` mapping the ``2^(i+1)``-x output
  down by 2 (to ``2^i``-x), as DRN's dual networks D do.

Paired training (HR available), with the LR pyramid ``L_k = imresize(hr, 2^k / S)``
(``L_0`` = the LR input)::

    loss = crit(P_S, hr) + sum_{k<n} crit(P_k, L_k) + weight * sum_i crit(D_i(P_(i+1)), L_i)

Unpaired fine-tuning (``dual.unpaired = true``: ``data.train`` holds LR images only, e.g.
real photos of an unknown camera) keeps the dual term alone, mapping every output back to
the LR scale: ``sum_i crit(D_0(...D_i(P_(i+1))), lr)``; or, with ``dual.degradation`` (a
known HR -> LR degradation used as a fixed dual), ``crit(degrade(P_S), lr)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from srplug.datasets import read_image
from srplug.errors import DatasetError, InputError
from srplug.protocols import Channels
from srplug.resize import imresize
from srplug.train.data import augment, draw_patch, list_images, patch_tensor
from srplug.train.distributed import DistContext
from srplug.train.objectives import Objective, parameters_of
from srplug.train.precision import Precision, autocast
from srplug.train.recipe import Recipe

__all__ = ["DualForward", "DualObjective", "LRPatches", "lr_pyramid"]


def lr_pyramid(hr: torch.Tensor, scale: int) -> list[torch.Tensor]:
    """``[L_0, ..., L_(n-1)]`` with ``L_k = imresize(hr, 2^k / scale)`` (MATLAB bicubic, not
    rounded), ``n = log2(scale)``; ``hr`` is ``(B, C, H, W)`` float."""
    n = round(math.log2(scale))
    return [imresize(hr, 2**k / scale) for k in range(n)]


class DualForward(nn.Module):
    """What DDP wraps in dual training: ``forward(lr) -> (outputs, duals)``.

    ``outputs`` is ``{k: P_k}`` by scale factor k (from ``primal.forward_all``); ``duals``
    is ``{i: D_i(P_(2^(i+1)))}`` (paired) or, with ``chain=True``, ``{i: D_0(...D_i(
    P_(2^(i+1))))}`` (everything back at LR scale, for unpaired data).
    """

    def __init__(
        self, primal: nn.Module, dual_models: Sequence[nn.Module] | None, *, chain: bool
    ) -> None:
        super().__init__()
        self.primal = primal
        self.duals = nn.ModuleList(list(dual_models or []))
        self.chain = chain

    def forward(self, lr: torch.Tensor) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
        outs = self.primal.forward_all(lr)
        if isinstance(outs, torch.Tensor) or not isinstance(outs, Sequence) or not outs:
            raise InputError(
                f"{type(self.primal).__name__}.forward_all must return a list of output "
                "tensors (coarse to fine)"
            )
        by_scale: dict[int, torch.Tensor] = {}
        for out in outs:
            k = out.shape[-1] // lr.shape[-1]
            if out.shape[-1] != lr.shape[-1] * k or out.shape[-2] != lr.shape[-2] * k:
                raise InputError(
                    f"forward_all output {tuple(out.shape)} is not an integer multiple of the "
                    f"LR input {tuple(lr.shape)}"
                )
            by_scale[k] = out
        duals: dict[int, torch.Tensor] = {}
        for i, dual in enumerate(self.duals):
            k = 2 ** (i + 1)
            if k not in by_scale:
                raise InputError(
                    f"dual_models[{i}] maps the x{k} output down, but forward_all gave scales "
                    f"{sorted(by_scale)}"
                )
            x = dual(by_scale[k])
            if self.chain:
                for j in range(i - 1, -1, -1):
                    x = self.duals[j](x)
            duals[i] = x
        return by_scale, duals


class DualObjective(Objective):
    """``kind = "dual"``: see the module doc."""

    def __init__(
        self, recipe: Recipe, model: nn.Module, pixel_loss: nn.Module, ctx: DistContext
    ) -> None:
        super().__init__(recipe, model, pixel_loss, ctx)
        d = recipe.dual
        name = recipe.model.name
        if not callable(getattr(model, "forward_all", None)):
            raise InputError(
                f"model {name!r} has no forward_all(lr) returning its multi-scale outputs; "
                "kind = 'dual' needs a DRN-style model (e.g. drn-s, drn-l)"
            )
        self.n = round(math.log2(recipe.model.scale))
        self.degradation: nn.Module | None = None
        duals: Sequence[nn.Module] | None = getattr(model, "dual_models", None)
        if d.unpaired and d.degradation not in (None, "none"):
            from srplug.adapters.kornia import build_degradation

            self.degradation = build_degradation(d.degradation, recipe.model.scale)
            duals = None
        elif duals is None or len(duals) != self.n:
            have = "none" if duals is None else f"{len(duals)}"
            raise InputError(
                f"model {name!r} needs {self.n} dual_models for x{recipe.model.scale} "
                f"(one per x2 step), has {have}; or give dual.degradation for unpaired data"
            )
        own = {id(p) for p in model.parameters()}
        dual_params = parameters_of(duals or [])
        self.external = [p for p in dual_params if id(p) not in own]
        """Dual parameters outside ``model`` (trained and checkpointed here)."""
        self._dual_modules = list(duals or [])
        if not d.train_dual:
            for p in dual_params:
                p.requires_grad_(False)
        self.module = DualForward(model, duals, chain=d.unpaired)

    @property
    def paired(self) -> bool:
        return not self.recipe.dual.unpaired

    def extra_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.external if p.requires_grad]

    def training_module(self) -> nn.Module:
        return self.module

    def generator_loss(
        self, module: nn.Module, lr: torch.Tensor, hr: torch.Tensor, precision: Precision
    ) -> tuple[torch.Tensor, dict[str, float]]:
        crit = self.pixel_loss
        s = self.recipe.model.scale
        with autocast(precision, self.ctx.device):
            outs, duals = module(lr)
        outs = {k: v.float() for k, v in outs.items()}
        duals = {i: v.float() for i, v in duals.items()}
        if s not in outs:
            raise InputError(f"forward_all gave scales {sorted(outs)}, none is x{s}")
        if not self.paired:
            if self.degradation is not None:
                dual = crit(self.degradation(outs[s].clamp(0.0, 1.0)), lr)
            else:
                dual = sum((crit(x, lr) for x in duals.values()), lr.new_zeros(()))
            return dual, {"dual": dual.detach().item()}
        levels = [lr, *lr_pyramid(hr, s)[1:]]
        primal = crit(outs[s], hr)
        for k, level in enumerate(levels):
            if 2**k in outs:
                primal = primal + crit(outs[2**k], level)
        dual = sum((crit(duals[i], levels[i]) for i in duals), lr.new_zeros(()))
        total = primal + self.recipe.dual.weight * dual
        return total, {"primal": primal.detach().item(), "dual": dual.detach().item()}

    def state_dict(self) -> dict[str, Any]:
        if not self.external:
            return {}
        return {"dual_models": [m.state_dict() for m in self._dual_modules]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not self.external:
            return
        saved = state.get("dual_models")
        if saved is None or len(saved) != len(self._dual_modules):
            raise InputError(
                "the checkpoint holds no dual-model state for this run; resume it with the "
                "recipe it was started with"
            )
        for m, sd in zip(self._dual_modules, saved, strict=True):
            m.load_state_dict(sd)


class LRPatches(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Random LR patches from folders of LR-only images (unpaired dual training).

    Item ``v`` is ``(lr, lr)``: float32 ``(C, p/s, p/s)`` in [0, 1] (C = 3, or 1 for
    ``channels="y"``), twice (no HR exists; the second is a placeholder the trainer moves
    along). Crop and augmentation are seeded by ``(seed, v)`` as in
    :class:`~srplug.train.data.TrainPairs`.
    """

    def __init__(
        self,
        folders: Sequence[str | os.PathLike[str]],
        scale: int,
        patch_size: int,
        *,
        channels: Channels = "rgb",
        flip: bool = True,
        rot90: bool = True,
        seed: int = 0,
    ) -> None:
        if patch_size % scale:
            raise InputError(f"patch_size {patch_size} is not a multiple of the scale {scale}")
        self.patch = patch_size // scale
        self.channels: Channels = channels
        self.flip, self.rot90, self.seed = flip, rot90, seed
        files = [f for folder in folders for f in list_images(Path(folder))]
        self.images: list[np.ndarray] = []
        self.skipped: list[str] = []
        for f in files:
            img = read_image(f)
            if min(img.shape[:2]) >= self.patch:
                self.images.append(img)
            else:
                self.skipped.append(f.name)
        if not self.images:
            raise DatasetError(
                f"no LR images of at least {self.patch}px in {', '.join(map(str, folders))}; "
                "lower data.patch_size or check data.train"
            )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, v: int) -> tuple[torch.Tensor, torch.Tensor]:
        v = int(v)
        image = v % len(self.images)
        img, n = self.images[image], self.patch
        p = draw_patch(self.seed, v, image, img.shape[:2], n, flip=self.flip, rot90=self.rot90)
        t = patch_tensor(
            augment(img[p.top : p.top + n, p.left : p.left + n], p.hflip, p.rot), self.channels
        )
        return t, t
