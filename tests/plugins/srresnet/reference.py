"""SRResNet-family generators written independently: random state dicts in leftthomas/SRGAN's
and BasicSR's key layouts, and functional forwards over such state dicts."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

StateDict = dict[str, torch.Tensor]


def _conv(state: StateDict, name: str, c_in: int, c_out: int, k: int, g: torch.Generator) -> None:
    state[f"{name}.weight"] = torch.randn(c_out, c_in, k, k, generator=g) * (
        0.5 / math.sqrt(c_in * k * k)
    )
    state[f"{name}.bias"] = torch.randn(c_out, generator=g) * 0.1


def _bn(state: StateDict, name: str, c: int, g: torch.Generator, counters: bool) -> None:
    state[f"{name}.weight"] = 1 + 0.1 * torch.randn(c, generator=g)
    state[f"{name}.bias"] = 0.1 * torch.randn(c, generator=g)
    state[f"{name}.running_mean"] = 0.1 * torch.randn(c, generator=g)
    state[f"{name}.running_var"] = 0.5 + torch.rand(c, generator=g)
    if counters:
        state[f"{name}.num_batches_tracked"] = torch.tensor(1000)


def _prelu(state: StateDict, name: str, g: torch.Generator) -> None:
    state[f"{name}.weight"] = 0.25 + 0.05 * torch.randn(1, generator=g)


def leftthomas_state(
    scale: int, blocks: int = 5, post_bn: bool = False, feats: int = 64, seed: int = 0
) -> StateDict:
    """leftthomas/SRGAN ``Generator`` keys: block1.{0,1} (9x9 conv, PReLU),
    block2..block<blocks+1>.{conv1,bn1,prelu,conv2,bn2}, block<blocks+2>.{0,1} (conv, then
    PReLU or BN), block<blocks+3>.<i>.{conv,prelu} x2 steps, block<blocks+3>.<n> (9x9 conv).
    No ``num_batches_tracked`` (files saved by old torch)."""
    g = torch.Generator().manual_seed(seed)
    s: StateDict = {}
    _conv(s, "block1.0", 3, feats, 9, g)
    _prelu(s, "block1.1", g)
    for b in range(2, blocks + 2):
        _conv(s, f"block{b}.conv1", feats, feats, 3, g)
        _bn(s, f"block{b}.bn1", feats, g, counters=False)
        _prelu(s, f"block{b}.prelu", g)
        _conv(s, f"block{b}.conv2", feats, feats, 3, g)
        _bn(s, f"block{b}.bn2", feats, g, counters=False)
    post, tail = blocks + 2, blocks + 3
    _conv(s, f"block{post}.0", feats, feats, 3, g)
    if post_bn:
        _bn(s, f"block{post}.1", feats, g, counters=False)
    else:
        _prelu(s, f"block{post}.1", g)
    steps = int(math.log2(scale))
    for i in range(steps):
        _conv(s, f"block{tail}.{i}.conv", feats, feats * 4, 3, g)
        _prelu(s, f"block{tail}.{i}.prelu", g)
    _conv(s, f"block{tail}.{steps}", feats, 3, 9, g)
    return s


def _c(x: torch.Tensor, s: StateDict, name: str) -> torch.Tensor:
    w = s[f"{name}.weight"].double()
    return F.conv2d(x, w, s[f"{name}.bias"].double(), padding=w.shape[-1] // 2)


def _bn_eval(x: torch.Tensor, s: StateDict, name: str) -> torch.Tensor:
    d = {k: s[f"{name}.{k}"].double() for k in ("running_mean", "running_var", "weight", "bias")}
    return F.batch_norm(
        x, d["running_mean"], d["running_var"], d["weight"], d["bias"], False, 0.0, 1e-5
    )


def _pr(x: torch.Tensor, s: StateDict, name: str) -> torch.Tensor:
    return F.prelu(x, s[f"{name}.weight"].double())


def leftthomas_forward(s: StateDict, x: torch.Tensor, tanh: bool = True) -> torch.Tensor:
    """leftthomas/SRGAN's generator in eval mode: ``(tanh(block8(block1 + block7)) + 1) / 2``
    (without the tanh mapping: the paper's SRResNet with a linear output)."""
    numbers = sorted({int(k.split(".")[0][5:]) for k in s})
    post, tail = numbers[-2], numbers[-1]
    b1 = _pr(_c(x.double(), s, "block1.0"), s, "block1.1")
    y = b1
    for b in numbers[1:-2]:
        r = _pr(_bn_eval(_c(y, s, f"block{b}.conv1"), s, f"block{b}.bn1"), s, f"block{b}.prelu")
        y = y + _bn_eval(_c(r, s, f"block{b}.conv2"), s, f"block{b}.bn2")
    y = _c(y, s, f"block{post}.0")
    y = (
        _bn_eval(y, s, f"block{post}.1")
        if f"block{post}.1.running_mean" in s
        else _pr(y, s, f"block{post}.1")
    )
    y = b1 + y
    steps = sum(1 for k in s if k.startswith(f"block{tail}.") and k.endswith(".conv.weight"))
    for i in range(steps):
        y = _pr(F.pixel_shuffle(_c(y, s, f"block{tail}.{i}.conv"), 2), s, f"block{tail}.{i}.prelu")
    out = _c(y, s, f"block{tail}.{steps}")
    return (torch.tanh(out) + 1) / 2 if tanh else out


def basicsr_msrresnet_state(
    scale: int, blocks: int = 16, feats: int = 64, seed: int = 0
) -> StateDict:
    """BasicSR ``MSRResNet`` keys: conv_first, body.N.conv{1,2}, upconv1 (x2: 4F, x3: 9F),
    upconv2 (x4 only), conv_hr, conv_last."""
    g = torch.Generator().manual_seed(seed)
    s: StateDict = {}
    _conv(s, "conv_first", 3, feats, 3, g)
    for i in range(blocks):
        _conv(s, f"body.{i}.conv1", feats, feats, 3, g)
        _conv(s, f"body.{i}.conv2", feats, feats, 3, g)
    if scale in (2, 3):
        _conv(s, "upconv1", feats, feats * scale * scale, 3, g)
    else:
        _conv(s, "upconv1", feats, feats * 4, 3, g)
        _conv(s, "upconv2", feats, feats * 4, 3, g)
    _conv(s, "conv_hr", feats, feats, 3, g)
    _conv(s, "conv_last", feats, 3, 3, g)
    return s


def basicsr_msrresnet_forward(s: StateDict, x: torch.Tensor, scale: int) -> torch.Tensor:
    x = x.double()
    lrelu = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
    y = lrelu(_c(x, s, "conv_first"))
    blocks = sum(1 for k in s if k.startswith("body.") and k.endswith(".conv1.weight"))
    for i in range(blocks):
        y = y + _c(F.relu(_c(y, s, f"body.{i}.conv1")), s, f"body.{i}.conv2")
    if scale == 4:
        y = lrelu(F.pixel_shuffle(_c(y, s, "upconv1"), 2))
        y = lrelu(F.pixel_shuffle(_c(y, s, "upconv2"), 2))
    else:
        y = lrelu(F.pixel_shuffle(_c(y, s, "upconv1"), scale))
    y = _c(lrelu(_c(y, s, "conv_hr")), s, "conv_last")
    return y + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
