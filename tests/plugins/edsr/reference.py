"""EDSR-PyTorch's and BasicSR's EDSR / MDSR written independently: random state dicts in each
project's key layout, and a functional forward over such a state dict (torch.nn.functional
only), as the projects' modules compute it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

StateDict = dict[str, torch.Tensor]

MEAN = torch.tensor([0.4488, 0.4371, 0.4040], dtype=torch.float64)


def _conv_params(
    state: StateDict, name: str, c_in: int, c_out: int, k: int, gen: torch.Generator
) -> None:
    std = 0.5 / math.sqrt(c_in * k * k)  # keeps deep random stacks at O(1) values
    state[f"{name}.weight"] = torch.randn(c_out, c_in, k, k, generator=gen) * std
    state[f"{name}.bias"] = torch.randn(c_out, generator=gen) * 0.1


def _up_steps(scale: int) -> list[int]:
    return [3] if scale == 3 else [2] * int(math.log2(scale))


def _mean_shift(state: StateDict, rgb_range: float) -> None:
    eye = torch.eye(3).view(3, 3, 1, 1)
    state["sub_mean.weight"] = eye.clone()
    state["sub_mean.bias"] = -rgb_range * MEAN.float()
    state["add_mean.weight"] = eye.clone()
    state["add_mean.bias"] = rgb_range * MEAN.float()


def edsr_pytorch_state(
    scale: int, blocks: int, feats: int, rgb_range: float = 255.0, seed: int = 0
) -> StateDict:
    """EDSR-PyTorch ``model/edsr.py`` keys: sub_mean, add_mean (MeanShift 1x1 convs),
    head.0, body.N.body.{0,2}, body.<blocks>, tail.0.<2j> (upsampler convs), tail.1."""
    gen = torch.Generator().manual_seed(seed)
    state: StateDict = {}
    _mean_shift(state, rgb_range)
    _conv_params(state, "head.0", 3, feats, 3, gen)
    for i in range(blocks):
        _conv_params(state, f"body.{i}.body.0", feats, feats, 3, gen)
        _conv_params(state, f"body.{i}.body.2", feats, feats, 3, gen)
    _conv_params(state, f"body.{blocks}", feats, feats, 3, gen)
    for j, r in enumerate(_up_steps(scale)):
        _conv_params(state, f"tail.0.{2 * j}", feats, feats * r * r, 3, gen)
    _conv_params(state, "tail.1", feats, 3, 3, gen)
    return state


def mdsr_pytorch_state(
    blocks: int, feats: int, scales: tuple[int, ...] = (2, 3, 4), seed: int = 0
) -> StateDict:
    """EDSR-PyTorch ``model/mdsr.py`` keys: sub_mean, add_mean, head.0,
    pre_process.i.{0,1}.body.{0,2} (5x5), body.N.body.{0,2}, body.<blocks>,
    upsample.i.<2j>, tail.0."""
    gen = torch.Generator().manual_seed(seed)
    state: StateDict = {}
    _mean_shift(state, 255.0)
    _conv_params(state, "head.0", 3, feats, 3, gen)
    for i, _ in enumerate(scales):
        for j in (0, 1):
            _conv_params(state, f"pre_process.{i}.{j}.body.0", feats, feats, 5, gen)
            _conv_params(state, f"pre_process.{i}.{j}.body.2", feats, feats, 5, gen)
    for i in range(blocks):
        _conv_params(state, f"body.{i}.body.0", feats, feats, 3, gen)
        _conv_params(state, f"body.{i}.body.2", feats, feats, 3, gen)
    _conv_params(state, f"body.{blocks}", feats, feats, 3, gen)
    for i, s in enumerate(scales):
        for j, r in enumerate(_up_steps(s)):
            _conv_params(state, f"upsample.{i}.{2 * j}", feats, feats * r * r, 3, gen)
    _conv_params(state, "tail.0", feats, 3, 3, gen)
    return state


def basicsr_edsr_state(scale: int, blocks: int, feats: int, seed: int = 0) -> StateDict:
    """BasicSR ``edsr_arch.EDSR`` keys: conv_first, body.N.conv{1,2}, conv_after_body,
    upsample.<2j>, conv_last (the mean is not a buffer there)."""
    gen = torch.Generator().manual_seed(seed)
    state: StateDict = {}
    _conv_params(state, "conv_first", 3, feats, 3, gen)
    for i in range(blocks):
        _conv_params(state, f"body.{i}.conv1", feats, feats, 3, gen)
        _conv_params(state, f"body.{i}.conv2", feats, feats, 3, gen)
    _conv_params(state, "conv_after_body", feats, feats, 3, gen)
    for j, r in enumerate(_up_steps(scale)):
        _conv_params(state, f"upsample.{2 * j}", feats, feats * r * r, 3, gen)
    _conv_params(state, "conv_last", feats, 3, 3, gen)
    return state


def _c(x: torch.Tensor, state: StateDict, name: str) -> torch.Tensor:
    w = state[f"{name}.weight"].double()
    return F.conv2d(x, w, state[f"{name}.bias"].double(), padding=w.shape[-1] // 2)


def _res(x: torch.Tensor, state: StateDict, a: str, b: str, res_scale: float) -> torch.Tensor:
    return x + _c(F.relu(_c(x, state, a)), state, b) * res_scale


def edsr_pytorch_forward(
    state: StateDict, x: torch.Tensor, scale: int, res_scale: float, rgb_range: float = 255.0
) -> torch.Tensor:
    """EDSR-PyTorch's EDSR on ``x`` in [0, 1] (fed as ``x * rgb_range``, as its loader does),
    result divided by ``rgb_range``; float64."""
    y = F.conv2d(
        x.double() * rgb_range, state["sub_mean.weight"].double(), state["sub_mean.bias"].double()
    )
    head = _c(y, state, "head.0")
    blocks = sum(1 for k in state if k.endswith(".body.0.weight") and k.startswith("body."))
    r = head
    for i in range(blocks):
        r = _res(r, state, f"body.{i}.body.0", f"body.{i}.body.2", res_scale)
    r = _c(r, state, f"body.{blocks}") + head
    for j, f in enumerate(_up_steps(scale)):
        r = F.pixel_shuffle(_c(r, state, f"tail.0.{2 * j}"), f)
    out = _c(r, state, "tail.1")
    out = F.conv2d(out, state["add_mean.weight"].double(), state["add_mean.bias"].double())
    return out / rgb_range


def mdsr_pytorch_forward(
    state: StateDict, x: torch.Tensor, branch: int, scale: int
) -> torch.Tensor:
    """EDSR-PyTorch's MDSR with ``scale_idx = branch``; float64, input/output in [0, 1]."""
    y = F.conv2d(
        x.double() * 255, state["sub_mean.weight"].double(), state["sub_mean.bias"].double()
    )
    h = _c(y, state, "head.0")
    for j in (0, 1):
        p = f"pre_process.{branch}.{j}.body"
        h = _res(h, state, f"{p}.0", f"{p}.2", 1.0)
    blocks = sum(1 for k in state if k.startswith("body.") and k.endswith(".body.0.weight"))
    r = h
    for i in range(blocks):
        r = _res(r, state, f"body.{i}.body.0", f"body.{i}.body.2", 1.0)
    r = _c(r, state, f"body.{blocks}") + h
    for j, f in enumerate(_up_steps(scale)):
        r = F.pixel_shuffle(_c(r, state, f"upsample.{branch}.{2 * j}"), f)
    out = _c(r, state, "tail.0")
    out = F.conv2d(out, state["add_mean.weight"].double(), state["add_mean.bias"].double())
    return out / 255


def basicsr_edsr_forward(
    state: StateDict, x: torch.Tensor, scale: int, res_scale: float, img_range: float = 255.0
) -> torch.Tensor:
    """BasicSR's EDSR: ``(x - mean) * img_range`` in, ``/ img_range + mean`` out; float64."""
    mean = MEAN.view(1, 3, 1, 1)
    y = (x.double() - mean) * img_range
    head = _c(y, state, "conv_first")
    blocks = sum(1 for k in state if k.startswith("body.") and k.endswith(".conv1.weight"))
    r = head
    for i in range(blocks):
        r = _res(r, state, f"body.{i}.conv1", f"body.{i}.conv2", res_scale)
    r = _c(r, state, "conv_after_body") + head
    for j, f in enumerate(_up_steps(scale)):
        r = F.pixel_shuffle(_c(r, state, f"upsample.{2 * j}"), f)
    return _c(r, state, "conv_last") / img_range + mean
