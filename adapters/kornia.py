"""srplug models and SR degradations as Kornia-style modules (``srplug.adapters.kornia``).

- :class:`SuperResolution`: an ``nn.Module`` upscaling ``(B, C, H, W)`` float tensors in
  [0, 1], differentiable end to end (gradients reach the input, and the network's weights
  when ``trainable=True``), on any device; usable inside ``kornia.augmentation``'s
  ``ImageSequential`` / ``AugmentationSequential``.
- Degradations that turn HR images into LR ones for training on real-world inputs, built on
  Kornia's filters and differentiable JPEG: :class:`GaussianBlur` (isotropic),
  :class:`AnisotropicGaussianBlur`, :class:`GaussianNoise`, :class:`JPEG`,
  :class:`Downscale` (MATLAB bicubic, :func:`srplug.resize.imresize`) and :class:`Quantize`,
  composed by :class:`Degradation`; :func:`build_degradation` makes one from a preset name or
  a list of op tables (the trainer's ``data.degradation`` recipe key).

Every degradation op draws its random parameters per sample from an optional
``torch.Generator`` (``op(x, generator=g)``), so a data pipeline can be exactly reproducible;
without one it uses torch's global RNG, as Kornia's augmentations do.

Kornia is an optional dependency: ``pip install 'srplug[kornia]'``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

import srplug
from srplug.errors import InputError, SrplugError
from srplug.resize import imresize
from srplug.upsampler import TensorUpsampler, upscale_color


class KorniaMissingError(SrplugError, ImportError):
    """Kornia is not installed (also an ``ImportError``)."""


try:
    import kornia
except ImportError as _exc:  # pragma: no cover - exercised only without kornia
    raise KorniaMissingError(
        "srplug.adapters.kornia needs Kornia: pip install 'srplug[kornia]' (or pip install kornia)"
    ) from _exc

__all__ = [
    "JPEG",
    "PRESETS",
    "AnisotropicGaussianBlur",
    "Degradation",
    "DegradationOp",
    "Downscale",
    "GaussianBlur",
    "GaussianNoise",
    "KorniaMissingError",
    "Quantize",
    "SuperResolution",
    "build_degradation",
]

Range = tuple[float, float]


def _check_image(x: Any, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"{what} expects a float tensor (B, C, H, W) in [0, 1], got {shape}")
    if x.shape[1] not in (1, 3):
        raise InputError(
            f"{what} expects 1 (gray) or 3 (RGB) channels, got {x.shape[1]} in {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise InputError(f"{what} got an empty batch of shape {tuple(x.shape)}")
    return x


# ------------------------------------------------------------------------------ SR transform


class SuperResolution(nn.Module):
    """Upscale a batch with a srplug model, differentiably.

    Args:
        name: a registered model name (``srplug.list()``), or an existing srplug upsampler
            (``srplug.get(...)``) whose network is then shared.
        scale, weights, options: as :func:`srplug.get` (``weights=None``: random init).
        clamp: clamp the output to [0, 1] (gradients are zero where it clips).
        trainable: let the network's parameters receive gradients and follow
            ``.train()``; by default they are frozen and the network stays in eval mode,
            while gradients still flow to the input.

    ``forward`` maps float ``(B, C, H, W)`` in [0, 1], C = 3 (RGB) or 1 (gray), to
    ``(B, C, H*s, W*s)`` of the same dtype on the same device. Y-channel networks get
    BT.601 luma and the chroma is enlarged with MATLAB bicubic, as srplug's upsamplers do;
    gray input is treated as R = G = B. Move it with ``.to(device)`` like any module.
    """

    def __init__(
        self,
        name: str | TensorUpsampler,
        scale: int | None = None,
        weights: Any = "default",
        *,
        clamp: bool = True,
        trainable: bool = False,
        **options: Any,
    ) -> None:
        super().__init__()
        if isinstance(name, TensorUpsampler):
            up = name
        elif isinstance(name, str):
            up = srplug.get(name, scale, weights, **options)
        else:
            raise InputError(
                f"SuperResolution takes a model name or a srplug upsampler, got {name!r}"
            )
        if scale is not None and up.scale != scale:
            raise InputError(f"the upsampler given is x{up.scale}, not x{scale}")
        self.model_name = up.name
        self.scale = up.scale
        self.channels = up.channels
        self.clamp = clamp
        self.trainable = trainable
        self.net: nn.Module | None = up.model
        self._operator = up if up.model is None else None  # parameter-free (bicubic)
        if self.net is not None:
            self.net.float()
            self.net.requires_grad_(trainable)
            self.net.train(trainable and self.training)

    def extra_repr(self) -> str:
        return (
            f"name={self.model_name!r}, scale={self.scale}, channels={self.channels!r}, "
            f"clamp={self.clamp}, trainable={self.trainable}"
        )

    def train(self, mode: bool = True) -> SuperResolution:
        """As ``nn.Module.train``; a frozen network stays in eval mode."""
        super().train(mode)
        if self.net is not None and not self.trainable:
            self.net.eval()
        return self

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` in the network's channels -> ``(B, C, h*s, w*s)``, float32."""
        if self.net is None:
            assert self._operator is not None
            return self._operator.upscale_tensor(x.float())
        param = next(self.net.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        out = self.net(x.to(dtype)).float()
        expected = (x.shape[0], x.shape[1], x.shape[2] * self.scale, x.shape[3] * self.scale)
        if tuple(out.shape) != expected:
            raise InputError(
                f"model {self.model_name!r} returned {tuple(out.shape)} for {tuple(x.shape)}"
            )
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` float in [0, 1] -> ``(B, C, H*s, W*s)``, same dtype."""
        x = _check_image(x, "SuperResolution")
        out = upscale_color(x.float(), self._network, channels=self.channels, scale=self.scale)
        if self.clamp:
            out = out.clamp(0.0, 1.0)
        return out.to(x.dtype)


# ----------------------------------------------------------------------------- degradations


def _range(name: str, value: float | Sequence[float], low: float = 0.0) -> Range:
    """``(a, b)`` from a number or a pair, checked ``low <= a <= b``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        pair = (float(value), float(value))
    elif (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        pair = (float(value[0]), float(value[1]))
    else:
        raise InputError(f"{name} must be a number or a [low, high] pair, got {value!r}")
    if not (low <= pair[0] <= pair[1]) or not all(math.isfinite(v) for v in pair):
        raise InputError(f"{name} must satisfy {low} <= low <= high, got {list(pair)}")
    return pair


def _uniform(rng: Range, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` float32 draws from U(rng), on the CPU."""
    u = torch.rand(n, generator=generator)
    return rng[0] + (rng[1] - rng[0]) * u


def _odd_kernel(kernel_size: int) -> int:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
        raise InputError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
    if kernel_size % 2 == 0:
        raise InputError(f"kernel_size must be odd (a centred kernel), got {kernel_size}")
    return kernel_size


def _border(x: torch.Tensor, kernel_size: int) -> str:
    """``"reflect"``, or ``"replicate"`` for images too small to reflect a ``kernel_size``
    kernel's half width."""
    return "reflect" if min(x.shape[-2:]) > kernel_size // 2 else "replicate"


class DegradationOp(nn.Module):
    """Base class: one random degradation on ``(B, C, H, W)`` float images in [0, 1].

    Args:
        p: probability that a sample is degraded by this op (per sample).

    Subclasses implement :meth:`apply` ``(x, generator) -> y`` on the whole batch with
    parameters drawn per sample.
    """

    changes_size = False

    def __init__(self, p: float = 1.0) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise InputError(f"p must be a probability in [0, 1], got {p!r}")
        if self.changes_size and p != 1.0:
            raise InputError(f"{type(self).__name__} changes the size: it needs p = 1")
        self.p = float(p)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Degrade every sample of ``x``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(B, C, H, W)`` -> degraded ``(B, C, H', W')`` (samples kept with prob. 1 - p)."""
        x = _check_image(x, type(self).__name__)
        if self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], generator=generator) >= self.p
        y = self.apply(x, generator)
        if self.p == 1.0 or not bool(keep.any()):
            return y
        mask = keep.to(x.device).view(-1, 1, 1, 1)
        return torch.where(mask, x, y)


class GaussianBlur(DegradationOp):
    """Isotropic Gaussian blur, ``sigma`` (pixels) drawn per sample from a range, reflect
    border (:func:`kornia.filters.filter2d`)."""

    def __init__(
        self, sigma: float | Sequence[float] = (0.2, 3.0), kernel_size: int = 21, p: float = 1.0
    ) -> None:
        super().__init__(p)
        self.sigma = _range("GaussianBlur sigma", sigma, low=1e-3)
        self.kernel_size = _odd_kernel(kernel_size)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        s = _uniform(self.sigma, x.shape[0], generator)
        sigma = torch.stack([s, s], dim=1).to(device=x.device, dtype=x.dtype)
        k = self.kernel_size
        kernel = kornia.filters.get_gaussian_kernel2d((k, k), sigma)
        return kornia.filters.filter2d(x, kernel, border_type=_border(x, k))

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, kernel_size={self.kernel_size}, p={self.p}"


class AnisotropicGaussianBlur(DegradationOp):
    """Anisotropic Gaussian blur: per sample, standard deviations along two axes drawn from
    ``sigma`` and the first axis rotated by an angle drawn from ``angle`` (radians); the
    kernel ``exp(-x^T S^-1 x / 2)`` is normalised to sum 1 and applied with
    :func:`kornia.filters.filter2d` (reflect border)."""

    def __init__(
        self,
        sigma: float | Sequence[float] = (0.2, 3.0),
        angle: float | Sequence[float] = (0.0, math.pi),
        kernel_size: int = 21,
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        self.sigma = _range("AnisotropicGaussianBlur sigma", sigma, low=1e-3)
        self.angle = _range("AnisotropicGaussianBlur angle", angle, low=-2 * math.pi)
        self.kernel_size = _odd_kernel(kernel_size)

    def kernels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` float32 kernels ``(n, k, k)`` (each sums to 1), on the CPU."""
        sx = _uniform(self.sigma, n, generator)
        sy = _uniform(self.sigma, n, generator)
        theta = _uniform(self.angle, n, generator)
        c, s = torch.cos(theta), torch.sin(theta)
        rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (n, 2, 2)
        cov = rot @ torch.diag_embed(torch.stack([sx, sy], -1) ** 2) @ rot.transpose(-1, -2)
        half = self.kernel_size // 2
        r = torch.arange(-half, half + 1, dtype=torch.float32)
        grid = torch.stack(torch.meshgrid(r, r, indexing="xy"), -1)  # (k, k, 2) as (x, y)
        inv = torch.linalg.inv(cov)
        quad = torch.einsum("ijc,ncd,ijd->nij", grid, inv, grid)
        kernel = torch.exp(-0.5 * quad)
        return kernel / kernel.sum(dim=(-1, -2), keepdim=True)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        kernel = self.kernels(x.shape[0], generator).to(device=x.device, dtype=x.dtype)
        return kornia.filters.filter2d(x, kernel, border_type=_border(x, self.kernel_size))

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, angle={self.angle}, kernel_size={self.kernel_size}, p={self.p}"


class GaussianNoise(DegradationOp):
    """Additive Gaussian noise, standard deviation drawn per sample from ``sigma`` (on the
    [0, 1] scale: 25/255 is strong); with probability ``gray_prob`` a sample gets the same
    noise in every channel."""

    def __init__(
        self,
        sigma: float | Sequence[float] = (1 / 255, 25 / 255),
        gray_prob: float = 0.0,
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        self.sigma = _range("GaussianNoise sigma", sigma)
        if not 0.0 <= gray_prob <= 1.0:
            raise InputError(f"gray_prob must lie in [0, 1], got {gray_prob!r}")
        self.gray_prob = float(gray_prob)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        b, c, h, w = x.shape
        sigma = _uniform(self.sigma, b, generator).view(b, 1, 1, 1)
        gray = (torch.rand(b, generator=generator) < self.gray_prob).view(b, 1, 1, 1)
        noise = torch.randn(b, c, h, w, generator=generator)
        noise = torch.where(gray, noise[:, :1].expand(-1, c, -1, -1), noise)
        return x + (sigma * noise).to(device=x.device, dtype=x.dtype)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, gray_prob={self.gray_prob}, p={self.p}"


class JPEG(DegradationOp):
    """JPEG compression with Kornia's differentiable codec
    (:func:`kornia.enhance.jpeg_codec_differentiable`), quality drawn per sample from
    ``quality`` (1..100). Input is clamped to [0, 1]; gray input is coded as R = G = B."""

    def __init__(self, quality: float | Sequence[float] = (30.0, 95.0), p: float = 1.0) -> None:
        super().__init__(p)
        self.quality = _range("JPEG quality", quality, low=1.0)
        if self.quality[1] > 100:
            raise InputError(f"JPEG quality must lie in [1, 100], got {list(self.quality)}")

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        q = _uniform(self.quality, x.shape[0], generator).to(device=x.device, dtype=x.dtype)
        rgb = x.clamp(0.0, 1.0).expand(-1, 3, -1, -1) if x.shape[1] == 1 else x.clamp(0.0, 1.0)
        out = kornia.enhance.jpeg_codec_differentiable(rgb, q)
        return out.mean(dim=1, keepdim=True) if x.shape[1] == 1 else out

    def extra_repr(self) -> str:
        return f"quality={self.quality}, p={self.p}"


class Downscale(DegradationOp):
    """MATLAB-bicubic shrinking by an integer ``scale`` (:func:`srplug.resize.imresize`,
    antialiased): ``(H, W)`` -> ``(ceil(H/s), ceil(W/s))``; differentiable."""

    changes_size = True

    def __init__(self, scale: int, antialias: bool = True) -> None:
        super().__init__(1.0)
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise InputError(f"Downscale scale must be a positive integer, got {scale!r}")
        self.scale = scale
        self.antialias = antialias

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.scale == 1:
            return x
        return imresize(x, 1.0 / self.scale, antialias=self.antialias)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, antialias={self.antialias}"


class Quantize(DegradationOp):
    """Clamp to [0, 1] and round to the 256 levels of an 8-bit image; the gradient passes
    straight through the rounding."""

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = x.clamp(0.0, 1.0)
        return x + (torch.round(x * 255.0) / 255.0 - x).detach()


class Degradation(nn.Module):
    """HR -> LR: the ops in order, then clamping to [0, 1] (and :class:`Quantize` when
    ``quantize``).

    Exactly one op must be a :class:`Downscale`; its factor is :attr:`scale`. ``forward``
    maps float ``(B, C, H, W)`` in [0, 1] (H, W multiples of the scale) to
    ``(B, C, H/s, W/s)``; :meth:`pair` returns ``(lr, hr)``.
    """

    def __init__(self, ops: Sequence[DegradationOp], *, quantize: bool = True) -> None:
        super().__init__()
        ops = list(ops)
        if not all(isinstance(op, DegradationOp) for op in ops):
            raise InputError("Degradation takes DegradationOp modules (GaussianBlur, ...)")
        downs = [op for op in ops if isinstance(op, Downscale)]
        if len(downs) != 1:
            raise InputError(
                f"a Degradation needs exactly one Downscale op, got {len(downs)}; add "
                "Downscale(scale) where the image should shrink"
            )
        self.ops = nn.ModuleList(ops)
        self.scale = downs[0].scale
        self.quantize = Quantize() if quantize else None

    def forward(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(B, C, H, W)`` HR -> ``(B, C, H/s, W/s)`` LR in [0, 1]."""
        hr = _check_image(hr, "Degradation")
        h, w = hr.shape[-2:]
        if h % self.scale or w % self.scale:
            raise InputError(
                f"HR size {h}x{w} is not a multiple of the scale {self.scale}; crop it first "
                "(srplug.resize.modcrop)"
            )
        x = hr
        for op in self.ops:
            x = op(x, generator=generator)
        return self.quantize(x, generator) if self.quantize is not None else x.clamp(0.0, 1.0)

    def pair(
        self, hr: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lr, hr)`` for a batch of HR images."""
        return self(hr, generator), hr


# ------------------------------------------------------------------------------ from recipes


def _preset_ops(name: str, scale: int) -> list[DegradationOp]:
    if name == "bicubic":
        return [Downscale(scale)]
    if name == "blur":
        return [GaussianBlur((0.2, 2.0)), Downscale(scale)]
    if name == "noise":
        return [Downscale(scale), GaussianNoise((1 / 255, 15 / 255))]
    if name == "jpeg":
        return [Downscale(scale), JPEG((40.0, 95.0))]
    # "real": a one-pass blur / shrink / noise / JPEG chain in the spirit of Real-ESRGAN
    return [
        GaussianBlur((0.2, 3.0), p=0.4),
        AnisotropicGaussianBlur((0.2, 3.0), p=0.4),
        Downscale(scale),
        GaussianNoise((1 / 255, 20 / 255), gray_prob=0.4, p=0.8),
        JPEG((30.0, 95.0), p=0.8),
    ]


PRESETS = ("bicubic", "blur", "noise", "jpeg", "real")
"""Preset names :func:`build_degradation` takes."""

_OPS: dict[str, type[DegradationOp]] = {
    "blur": GaussianBlur,
    "aniso_blur": AnisotropicGaussianBlur,
    "noise": GaussianNoise,
    "jpeg": JPEG,
    "downscale": Downscale,
}


def build_degradation(
    spec: str | Sequence[Mapping[str, Any]] | Degradation, scale: int
) -> Degradation:
    """A :class:`Degradation` for the SR factor ``scale`` from a recipe value.

    Args:
        spec: a preset name (:data:`PRESETS`), a ready :class:`Degradation`, or a list of
            op tables ``{"op": NAME, ...arguments}`` with NAME ``"blur"``
            (``sigma``, ``kernel_size``, ``p``), ``"aniso_blur"`` (``sigma``, ``angle``,
            ``kernel_size``, ``p``), ``"noise"`` (``sigma``, ``gray_prob``, ``p``),
            ``"jpeg"`` (``quality``, ``p``) or ``"downscale"`` (``scale`` defaults to
            ``scale``). Ranges are ``[low, high]`` lists.
        scale: the model's scale; the degradation must shrink by exactly that.

    Raises:
        InputError: unknown names or arguments, or a shrink factor other than ``scale``.
    """
    if isinstance(spec, Degradation):
        result = spec
    elif isinstance(spec, str):
        if spec not in PRESETS:
            raise InputError(f"unknown degradation preset {spec!r}; use one of {PRESETS}")
        result = Degradation(_preset_ops(spec, scale))
    elif isinstance(spec, Sequence):
        ops = []
        for i, table in enumerate(spec):
            if not isinstance(table, Mapping) or "op" not in table:
                raise InputError(
                    f"degradation step {i} must be a table with an 'op' key, got {table!r}"
                )
            args = {k: v for k, v in table.items() if k != "op"}
            kind = table["op"]
            if kind not in _OPS:
                raise InputError(
                    f"degradation step {i}: unknown op {kind!r}; use one of {sorted(_OPS)}"
                )
            if kind == "downscale":
                args.setdefault("scale", scale)
            try:
                ops.append(_OPS[kind](**args))
            except TypeError as exc:
                raise InputError(f"degradation step {i} ({kind}): {exc}") from None
        result = Degradation(ops)
    else:
        raise InputError(
            f"a degradation is a preset name {PRESETS} or a list of op tables, got {spec!r}"
        )
    if result.scale != scale:
        raise InputError(f"the degradation shrinks by {result.scale}, but the model is x{scale}")
    return result
