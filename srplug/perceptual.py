"""Perceptual networks: a VGG16 feature extractor and the LPIPS-VGG distance.

Neither ships weights. :class:`VGG16Features` reads the convolutions of an ImageNet VGG16
from a safetensors file in torchvision's layout (``features.N.weight`` / ``features.N.bias``,
N in 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28), given by path or by the environment
variable ``SRPLUG_VGG16_WEIGHTS``. :class:`LPIPS` adds the five 1x1 linear layers of LPIPS
v0.1 (Zhang et al., CVPR 2018; keys ``lin{0..4}.model.1.weight``), by path or
``SRPLUG_LPIPS_WEIGHTS``.

LPIPS(x, y), as defined in the paper (v0.1 settings): both images scaled to [-1, 1], then
shifted and scaled per channel by the ImageNet statistics LPIPS uses; VGG16 features at
relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3; each feature vector divided by its L2 norm
over channels; squared difference; weighted sum over channels by the 1x1 linear layer;
mean over space; sum over the five layers. 0 for identical images, larger = more different.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from srplug.errors import InputError, WeightsError

__all__ = [
    "LPIPS",
    "LPIPS_ENV",
    "VGG16_ENV",
    "VGG16_LAYERS",
    "VGG16Features",
    "lpips_weights_path",
    "vgg16_weights_path",
]

VGG16_ENV = "SRPLUG_VGG16_WEIGHTS"
LPIPS_ENV = "SRPLUG_LPIPS_WEIGHTS"

#: VGG16 conv blocks: output channels of each 3x3 conv, "M" = 2x2 max pool (torchvision order).
_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip
#: Layer name -> index in torchvision's ``features`` (ReLU outputs and the pools).
VGG16_LAYERS: dict[str, int] = {}


def _layer_names() -> None:
    index, block, conv = 0, 1, 1
    for item in _CFG:
        if item == "M":
            VGG16_LAYERS[f"pool{block}"] = index
            index += 1
            block, conv = block + 1, 1
        else:
            VGG16_LAYERS[f"conv{block}_{conv}"] = index
            VGG16_LAYERS[f"relu{block}_{conv}"] = index + 1
            index += 2
            conv += 1


_layer_names()

#: LPIPS v0.1's input normalisation, applied to images in [-1, 1]: (x - shift) / scale.
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
#: torchvision's ImageNet normalisation for images in [0, 1]: (x - mean) / std.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


def _resolve(path: str | os.PathLike[str] | None, env: str, what: str) -> Path:
    value = path if path is not None else os.environ.get(env)
    if not value:
        raise WeightsError(
            f"no {what} weights given: pass a safetensors file path or set ${env} to one "
            "(srplug ships no ImageNet weights)"
        )
    file = Path(value).expanduser()
    if not file.is_file():
        raise WeightsError(f"{what} weights file {file} does not exist; check the path or ${env}")
    return file


def vgg16_weights_path(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$SRPLUG_VGG16_WEIGHTS``; WeightsError when neither names a file."""
    return _resolve(path, VGG16_ENV, "VGG16")


def lpips_weights_path(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$SRPLUG_LPIPS_WEIGHTS``; WeightsError when neither names a file."""
    return _resolve(path, LPIPS_ENV, "LPIPS linear-layer")


def _read(file: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(file), device="cpu")
    except Exception as exc:  # safetensors raises its own error types and OSError
        raise WeightsError(
            f"cannot read {file} as safetensors ({exc}); pass an intact .safetensors file"
        ) from exc


class VGG16Features(nn.Module):
    """ImageNet VGG16 convolutions up to the deepest requested layer, frozen, in eval mode.

    ``forward(x)`` takes ``(B, 3, H, W)`` float RGB and returns a dict ``{layer: (B, C, h,
    w)}`` for each name in ``layers`` (``"relu2_2"``, ``"conv5_4"`` is not VGG16: see
    :data:`VGG16_LAYERS`). With ``normalize=True`` (default) the input is in [0, 1] and gets
    torchvision's ImageNet mean/std normalisation; with ``False`` it is passed as it is.

    Args:
        layers: layer names to return, e.g. ``("relu5_3",)`` or :data:`LPIPS_LAYERS`.
        weights: torchvision-layout safetensors file; default ``$SRPLUG_VGG16_WEIGHTS``.
        normalize: apply ImageNet normalisation to [0, 1] input.
        state_dict: ready ``features.N.*`` tensors instead of a file (tests, conversions).
    """

    def __init__(
        self,
        layers: Sequence[str] = ("relu5_3",),
        weights: str | os.PathLike[str] | None = None,
        *,
        normalize: bool = True,
        state_dict: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if not layers:
            raise InputError("VGG16Features needs at least one layer name, e.g. 'relu5_3'")
        unknown = [name for name in layers if name not in VGG16_LAYERS]
        if unknown:
            raise InputError(
                f"unknown VGG16 layer {unknown[0]!r}; use one of {', '.join(VGG16_LAYERS)}"
            )
        self.layers = tuple(layers)
        self.normalize = normalize
        last = max(VGG16_LAYERS[name] for name in self.layers)
        modules: list[nn.Module] = []
        channels = 3
        for item in _CFG:
            if len(modules) > last:
                break
            if item == "M":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                modules.append(nn.Conv2d(channels, int(item), 3, padding=1))
                modules.append(nn.ReLU(inplace=False))
                channels = int(item)
        self.features = nn.Sequential(*modules[: last + 1])
        self.register_buffer(
            "mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if state_dict is None:
            file = vgg16_weights_path(weights)
            state_dict, source = _read(file), str(file)
        else:
            source = "the given state dict"
        self._load(state_dict, source)
        self.requires_grad_(False)
        self.eval()

    def _load(self, state: Mapping[str, torch.Tensor], source: str) -> None:
        own = self.features.state_dict()
        missing = [f"features.{k}" for k in own if f"features.{k}" not in state]
        if missing:
            raise WeightsError(
                f"{source} lacks {missing[0]} (and {len(missing) - 1} more); expected "
                "torchvision VGG16 keys features.N.weight/bias"
            )
        for key, tensor in own.items():
            given = state[f"features.{key}"]
            if tuple(given.shape) != tuple(tensor.shape):
                raise WeightsError(
                    f"{source}: features.{key} has shape {tuple(given.shape)}, VGG16 needs "
                    f"{tuple(tensor.shape)}; is this a VGG16 (not VGG19) features file?"
                )
        self.features.load_state_dict({k: state[f"features.{k}"].float() for k in own})

    def train(self, mode: bool = True) -> VGG16Features:
        """Always stays in eval mode (a frozen feature extractor)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"VGG16 takes (B, 3, H, W) RGB, got shape {tuple(x.shape)}")
        if self.normalize:
            x = (x - self.mean) / self.std
        wanted = {VGG16_LAYERS[name]: name for name in self.layers}
        out: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
        return out


def _unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Each feature vector (over dim 1) divided by its L2 norm (+eps, as LPIPS does)."""
    return x / (torch.sqrt(torch.sum(x * x, dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    """LPIPS-VGG v0.1 distance between two RGB batches.

    ``forward(x, y)``: ``(B, 3, H, W)`` float RGB in [0, 1] (``input_range=(0, 1)``, the
    default) or [-1, 1] (``input_range=(-1, 1)``); returns ``(B,)`` float distances, 0 for
    identical images. Frozen and in eval mode; differentiable in its inputs (a loss).

    Args:
        weights: LPIPS linear layers (``lin{0..4}.model.1.weight``); default
            ``$SRPLUG_LPIPS_WEIGHTS``.
        vgg_weights: VGG16 features file; default ``$SRPLUG_VGG16_WEIGHTS``.
        input_range: value range of the inputs.
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        vgg_weights: str | os.PathLike[str] | None = None,
        *,
        input_range: tuple[float, float] = (0.0, 1.0),
        lin_state_dict: Mapping[str, torch.Tensor] | None = None,
        vgg_state_dict: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if tuple(input_range) not in ((0.0, 1.0), (-1.0, 1.0)):
            raise InputError(f"input_range must be (0, 1) or (-1, 1), got {input_range!r}")
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.vgg = VGG16Features(
            LPIPS_LAYERS, vgg_weights, normalize=False, state_dict=vgg_state_dict
        )
        if lin_state_dict is None:
            file = lpips_weights_path(weights)
            lin_state_dict, source = _read(file), str(file)
        else:
            source = "the given state dict"
        channels = (64, 128, 256, 512, 512)
        lins = []
        for i, c in enumerate(channels):
            key = f"lin{i}.model.1.weight"
            if key not in lin_state_dict:
                raise WeightsError(
                    f"{source} lacks {key}; expected the LPIPS v0.1 VGG linear layers "
                    "(lpips package weights/v0.1/vgg.pth, converted to safetensors)"
                )
            w = lin_state_dict[key].float()
            if tuple(w.shape) != (1, c, 1, 1):
                raise WeightsError(
                    f"{source}: {key} has shape {tuple(w.shape)}, LPIPS-VGG needs (1, {c}, 1, 1)"
                )
            lins.append(w)
        self.lin = nn.ParameterList([nn.Parameter(w, requires_grad=False) for w in lins])
        shift = torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1)
        scale = torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1)
        self.register_buffer("shift", shift, persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        """Always stays in eval mode (a fixed metric)."""
        return super().train(False)

    def _prepare(self, x: torch.Tensor, name: str) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"LPIPS takes (B, 3, H, W) RGB, got {name} of shape {tuple(x.shape)}")
        x = x.float()
        if self.input_range == (0.0, 1.0):
            x = x * 2.0 - 1.0
        return (x - self.shift) / self.scale

    def layer_distances(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(B, 5)``: the contribution of each VGG layer (their sum is the distance)."""
        if x.shape != y.shape:
            raise InputError(f"LPIPS inputs differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
        fx = self.vgg(self._prepare(x, "x"))
        fy = self.vgg(self._prepare(y, "y"))
        parts = []
        for name, w in zip(LPIPS_LAYERS, self.lin, strict=True):
            d = (_unit_normalize(fx[name]) - _unit_normalize(fy[name])) ** 2
            parts.append(nn.functional.conv2d(d, w).mean(dim=(1, 2, 3)))
        return torch.stack(parts, dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.layer_distances(x, y).sum(dim=1)
