"""Independent functional forwards of the RCAN family, written from the official code with
``torch.nn.functional`` on state dicts in the official layout (shared by the RCAN, SAN, HAN
and DRN tests), and random state dicts in that layout."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.nn import functional as F

StateDict = dict[str, torch.Tensor]
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


class RandomState:
    """Collects ``key -> random tensor`` (float64, normal with ``std``) in order."""

    def __init__(self, seed: int, std: float = 0.05) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.std = std
        self.state: StateDict = {}

    def add(self, key: str, *shape: int, std: float | None = None) -> None:
        scale = self.std if std is None else std
        self.state[key] = torch.randn(*shape, generator=self.gen, dtype=torch.float64) * scale

    def conv(self, prefix: str, c_out: int, c_in: int, k: int, bias: bool = True) -> None:
        # He-like scale keeps activations of deep random stacks in range
        self.add(prefix + "weight", c_out, c_in, k, k, std=(1.0 / (c_in * k * k)) ** 0.5)
        if bias:
            self.add(prefix + "bias", c_out)

    def mean_shifts(self, rgb_range: float = 255.0) -> None:
        """Official-looking ``sub_mean`` / ``add_mean`` with a little noise (so that loading
        the file's values, not recomputed ones, is checked)."""
        mean = torch.tensor(DIV2K_MEAN, dtype=torch.float64)
        for name, sign in (("sub_mean", -1), ("add_mean", 1)):
            eye = torch.eye(3, dtype=torch.float64).view(3, 3, 1, 1)
            noise = torch.randn(3, 3, 1, 1, generator=self.gen, dtype=torch.float64) * 1e-3
            self.state[f"{name}.weight"] = eye + noise
            self.state[f"{name}.bias"] = sign * rgb_range * mean + torch.randn(
                3, generator=self.gen, dtype=torch.float64
            )

    def channel_attention(self, prefix: str, channels: int, reduction: int) -> None:
        self.conv(prefix + "conv_du.0.", channels // reduction, channels, 1)
        self.conv(prefix + "conv_du.2.", channels, channels // reduction, 1)

    def upsampler(self, prefix: str, scale: int, channels: int) -> None:
        if scale == 3:
            self.conv(prefix + "0.", 9 * channels, channels, 3)
            return
        index = 0
        while 2 ** (index // 2 + 1) <= scale:
            self.conv(f"{prefix}{index}.", 4 * channels, channels, 3)
            index += 2

    def rcab(self, prefix: str, channels: int, reduction: int) -> None:
        self.conv(prefix + "body.0.", channels, channels, 3)
        self.conv(prefix + "body.2.", channels, channels, 3)
        self.channel_attention(prefix + "body.3.", channels, reduction)

    def head(self, feats: int) -> None:
        """``sub_mean`` / ``add_mean`` and ``head.0`` (RGB -> ``feats``)."""
        self.mean_shifts()
        self.conv("head.0.", feats, 3, 3)

    def rcan_body(self, groups: int, blocks: int, feats: int, reduction: int) -> None:
        """RCAN's ``body``: ``groups`` residual groups of ``blocks`` RCABs and a conv each,
        then the body conv ``body.{groups}``."""
        for g in range(groups):
            for b in range(blocks):
                self.rcab(f"body.{g}.body.{b}.", feats, reduction)
            self.conv(f"body.{g}.body.{blocks}.", feats, feats, 3)
        self.conv(f"body.{groups}.", feats, feats, 3)

    def tail(self, scale: int, feats: int) -> None:
        """The upsampler ``tail.0`` and the conv to RGB ``tail.1``."""
        self.upsampler("tail.0.", scale, feats)
        self.conv("tail.1.", 3, feats, 3)


def conv(x: torch.Tensor, sd: StateDict, prefix: str, stride: int = 1) -> torch.Tensor:
    weight = sd[prefix + "weight"]
    return F.conv2d(
        x, weight, sd.get(prefix + "bias"), stride=stride, padding=weight.shape[-1] // 2
    )


def channel_attention(x: torch.Tensor, sd: StateDict, prefix: str) -> torch.Tensor:
    y = F.adaptive_avg_pool2d(x, 1)
    y = F.relu(conv(y, sd, prefix + "conv_du.0."))
    return x * torch.sigmoid(conv(y, sd, prefix + "conv_du.2."))


def rcab(x: torch.Tensor, sd: StateDict, prefix: str) -> torch.Tensor:
    y = conv(F.relu(conv(x, sd, prefix + "body.0.")), sd, prefix + "body.2.")
    return channel_attention(y, sd, prefix + "body.3.") + x


def upsample(x: torch.Tensor, sd: StateDict, prefix: str, scale: int) -> torch.Tensor:
    if scale == 3:
        return F.pixel_shuffle(conv(x, sd, prefix + "0."), 3)
    index = 0
    while f"{prefix}{index}.weight" in sd:
        x = F.pixel_shuffle(conv(x, sd, f"{prefix}{index}."), 2)
        index += 2
    return x


def head(x: torch.Tensor, sd: StateDict) -> torch.Tensor:
    """``sub_mean`` then ``head.0`` on ``x`` in [0, 1] scaled to [0, 255]."""
    return conv(conv(x * 255.0, sd, "sub_mean."), sd, "head.0.")


def tail(x: torch.Tensor, sd: StateDict, scale: int) -> torch.Tensor:
    """``tail.0`` (upsampler), ``tail.1`` and ``add_mean``, back to [0, 1]."""
    out = conv(upsample(x, sd, "tail.0.", scale), sd, "tail.1.")
    return conv(out, sd, "add_mean.") / 255.0


def run_model(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model`` in float64 eval mode on ``x`` (float64), without autograd."""
    model = model.double().eval().to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        return model(x)


def max_abs_diff(a: Iterable[torch.Tensor], b: Iterable[torch.Tensor]) -> float:
    pairs = list(zip(a, b, strict=True))
    assert all(p.shape == q.shape for p, q in pairs), [(p.shape, q.shape) for p, q in pairs]
    return max(float((p - q).abs().max()) for p, q in pairs)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
