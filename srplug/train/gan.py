"""Perceptual/GAN training (recipe ``kind = "gan"``): SRGAN-style generator losses and the
discriminator trained alongside.

Generator loss per step (weights from ``[gan]``)::

    pixel_weight * pixel(sr, hr)                         # [loss] kind (l1/l2/charbonnier)
    + feature_weight * crit(a * VGG(sr), a * VGG(hr))   # VGG16 layer, a = feature_scale
    + adversarial_weight * adv_G(D(sr), D(hr))

then one discriminator step on ``hr`` (real) and the detached ``sr`` (fake). The two-phase
SRGAN recipe: train ``srresnet`` with the pixel loss (``recipes/srresnet_x4.toml``), then
this objective from its weights (``recipes/srgan_x4.toml``, ``model.init``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from srplug.errors import InputError
from srplug.layout import to_memory_format
from srplug.perceptual import VGG16Features
from srplug.train.distributed import DistContext
from srplug.train.objectives import Objective
from srplug.train.precision import Precision, autocast
from srplug.train.recipe import Recipe
from srplug.train.schedules import build_scheduler

__all__ = [
    "Discriminator",
    "GanObjective",
    "VGGFeatureLoss",
    "adversarial_loss",
    "build_discriminator",
]


class Discriminator(nn.Module):
    """SRGAN's VGG-style discriminator (Ledig et al. 2017, fig. 4).

    ``(B, 3, H, W)`` float RGB in [0, 1] -> ``(B, 1)`` logits (real > 0). A 3x3 conv and
    LeakyReLU(0.2), then seven conv-BN-LeakyReLU blocks with ``base`` x (1, 2, 2, 4, 4, 8, 8)
    channels, strides alternating 2 and 1 (H, W shrink by 16 in all), an adaptive average
    pool to ``pool x pool`` (the paper's 96px patches give 6x6 without it), a dense layer of
    ``dense`` units, LeakyReLU, and one output unit.
    """

    def __init__(
        self, in_channels: int = 3, base: int = 64, dense: int = 1024, pool: int = 6
    ) -> None:
        super().__init__()
        if min(in_channels, base, dense, pool) < 1:
            raise InputError("Discriminator sizes (in_channels, base, dense, pool) must be >= 1")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = base
        for mult, stride in ((1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2)):
            out = base * mult
            layers += [
                nn.Conv2d(channels, out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * pool * pool, dense),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(dense, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x * 2.0 - 1.0)))


def build_discriminator(name: str, options: Mapping[str, Any]) -> nn.Module:
    """``"default"`` (:class:`Discriminator`) or ``"package.module:Class"`` built with
    ``options``."""
    if name == "default":
        cls: Any = Discriminator
    else:
        module_name, _, attr = name.partition(":")
        if not module_name or not attr:
            raise InputError(
                f"gan.discriminator {name!r} must be 'default' or 'package.module:Class'"
            )
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise InputError(
                f"gan.discriminator {name!r} cannot be imported ({exc}); install the package "
                "that provides it or use 'default'"
            ) from exc
    try:
        module = cls(**dict(options))
    except TypeError as exc:
        raise InputError(f"gan.discriminator_options do not fit {name!r}: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise InputError(f"gan.discriminator {name!r} is not a torch nn.Module class")
    return module


def adversarial_loss(
    kind: str, real: torch.Tensor, fake: torch.Tensor, *, for_discriminator: bool
) -> torch.Tensor:
    """Scalar adversarial loss from discriminator logits ``real``/``fake`` (``(B, 1)``).

    ``"vanilla"``: binary cross-entropy (the generator's non-saturating form);
    ``"lsgan"``: least squares to 1/0; ``"ragan"``: relativistic average (ESRGAN), which
    uses both logits for both players. For the generator ``real`` may be detached.
    """
    if kind == "ragan":
        r = real - fake.mean()
        f = fake - real.mean()
        if for_discriminator:
            r_t, f_t = torch.ones_like(r), torch.zeros_like(f)
        else:
            r_t, f_t = torch.zeros_like(r), torch.ones_like(f)
        return 0.5 * (
            F.binary_cross_entropy_with_logits(r, r_t) + F.binary_cross_entropy_with_logits(f, f_t)
        )
    if kind == "vanilla":
        if for_discriminator:
            return F.binary_cross_entropy_with_logits(
                real, torch.ones_like(real)
            ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "lsgan":
        if for_discriminator:
            return 0.5 * (((real - 1.0) ** 2).mean() + (fake**2).mean())
        return 0.5 * ((fake - 1.0) ** 2).mean()
    raise InputError(f"unknown gan_type {kind!r}: use 'vanilla', 'lsgan' or 'ragan'")


class VGGFeatureLoss(nn.Module):
    """``crit(scale * VGG16_layer(sr), scale * VGG16_layer(hr))`` on RGB in [0, 1].

    ``(B, 3, H, W)`` or ``(B, 1, H, W)`` (Y, repeated to 3 channels) float tensors -> scalar.
    The target's features are computed without gradient.
    """

    def __init__(
        self,
        layer: str = "relu5_3",
        weights: str | None = None,
        *,
        criterion: str = "l2",
        scale: float = 1.0,
        state_dict: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if criterion not in ("l1", "l2"):
            raise InputError(f"feature criterion must be 'l1' or 'l2', got {criterion!r}")
        self.layer = layer
        self.vgg = VGG16Features((layer,), weights, state_dict=state_dict)
        self.criterion = F.l1_loss if criterion == "l1" else F.mse_loss
        self.scale = scale

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.vgg(x)[self.layer] * self.scale

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self._features(hr)
        return self.criterion(self._features(sr).float(), target.float())


class GanObjective(Objective):
    """``kind = "gan"``: see the module doc. Trains the discriminator in :meth:`after_step`."""

    def __init__(
        self, recipe: Recipe, model: nn.Module, pixel_loss: nn.Module, ctx: DistContext
    ) -> None:
        super().__init__(recipe, model, pixel_loss, ctx)
        g = recipe.gan
        fmt = torch.channels_last if ctx.device.type == "cpu" else torch.contiguous_format
        self.discriminator = to_memory_format(
            build_discriminator(g.discriminator, g.discriminator_options).to(
                device=ctx.device, dtype=torch.float32
            ),
            fmt,
        )
        self.discriminator.train()
        self.d_train = ctx.wrap(self.discriminator)
        self.d_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=g.d_lr, betas=g.d_betas
        )
        s = recipe.schedule
        self.d_scheduler = build_scheduler(
            self.d_optimizer,
            s.kind,
            s.steps,
            warmup=s.warmup,
            milestones=s.milestones,
            gamma=s.gamma,
            min_lr=s.min_lr * g.d_lr / recipe.optim.lr,
        )
        self.features: VGGFeatureLoss | None = None
        if g.feature_weight > 0:
            self.features = VGGFeatureLoss(
                g.feature_layer,
                g.vgg_weights,
                criterion=g.feature_criterion,
                scale=g.feature_scale,
            ).to(ctx.device)
        self.d_scaler: torch.amp.GradScaler | None = None
        self._fake: torch.Tensor | None = None
        self._real: torch.Tensor | None = None

    def generator_loss(
        self, module: nn.Module, lr: torch.Tensor, hr: torch.Tensor, precision: Precision
    ) -> tuple[torch.Tensor, dict[str, float]]:
        g = self.recipe.gan
        d = self.discriminator
        d.requires_grad_(False)
        terms: dict[str, float] = {}
        with autocast(precision, self.ctx.device):
            sr = module(lr)
            total = sr.new_zeros((), dtype=torch.float32)
            if g.pixel_weight > 0:
                pix = self.pixel_loss(sr.float(), hr)
                total = total + g.pixel_weight * pix
                terms["pixel"] = pix.detach().item()
            if self.features is not None:
                feat = self.features(sr, hr)
                total = total + g.feature_weight * feat
                terms["feature"] = feat.detach().item()
            if g.adversarial_weight > 0:
                fake_logits = d(_rgb(sr)).float()
                real_logits = d(_rgb(hr)).float().detach() if g.gan_type == "ragan" else None
                adv = adversarial_loss(
                    g.gan_type,
                    real_logits if real_logits is not None else fake_logits.detach(),
                    fake_logits,
                    for_discriminator=False,
                )
                total = total + g.adversarial_weight * adv
                terms["adversarial"] = adv.detach().item()
        d.requires_grad_(True)
        self._fake, self._real = sr.detach(), hr
        return total, terms

    def after_step(self, step: int, precision: Precision) -> dict[str, float]:
        if self._fake is None or self._real is None:
            return {}
        if self.recipe.gan.adversarial_weight == 0:  # no adversarial term: D stays untrained
            return {}
        if precision == "fp16" and self.d_scaler is None:
            self.d_scaler = torch.amp.GradScaler("cuda")
        fake, real = _rgb(self._fake), _rgb(self._real)
        self._fake = self._real = None
        with autocast(precision, self.ctx.device):
            logits = self.d_train(torch.cat([real, fake.float()], dim=0)).float()
        real_logits, fake_logits = logits.chunk(2, dim=0)
        loss = adversarial_loss(
            self.recipe.gan.gan_type, real_logits, fake_logits, for_discriminator=True
        )
        self.d_optimizer.zero_grad(set_to_none=True)
        if self.d_scaler is not None:
            self.d_scaler.scale(loss).backward()
            self.d_scaler.step(self.d_optimizer)
            self.d_scaler.update()
        else:
            loss.backward()
            self.d_optimizer.step()
        self.d_scheduler.step()
        with torch.no_grad():
            real_ok = (real_logits > 0).float().mean().item()
            fake_ok = (fake_logits < 0).float().mean().item()
        return {"d_loss": loss.detach().item(), "d_acc": 0.5 * (real_ok + fake_ok)}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "discriminator": self.discriminator.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "d_scheduler": self.d_scheduler.state_dict(),
        }
        if self.d_scaler is not None:
            state["d_scaler"] = self.d_scaler.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "discriminator" not in state:
            raise InputError(
                "the checkpoint holds no discriminator state; it was not written by a "
                "kind = 'gan' run: start a new run with model.init pointing at its weights"
            )
        self.discriminator.load_state_dict(state["discriminator"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.d_scheduler.load_state_dict(state["d_scheduler"])
        if "d_scaler" in state:
            self.d_scaler = torch.amp.GradScaler("cuda")
            self.d_scaler.load_state_dict(state["d_scaler"])


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """Y batches ``(B, 1, H, W)`` repeated to 3 channels; RGB unchanged."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
