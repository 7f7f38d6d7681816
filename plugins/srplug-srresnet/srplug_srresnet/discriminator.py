"""SRGAN's VGG-style discriminator (Ledig et al., CVPR 2017, Fig. 4), for GAN training."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srplug.errors import InputError

__all__ = ["SRGANDiscriminator"]

#: (output channels, stride) of the conv + BN + LeakyReLU blocks after the first conv.
BLOCKS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (2, 1),
    (2, 2),
    (4, 1),
    (4, 2),
    (8, 1),
    (8, 2),
)


class SRGANDiscriminator(nn.Module):
    """Tells real HR patches from generated ones.

    3x3 conv (``features``, stride 1) + LeakyReLU(0.2), then seven 3x3 conv + BN +
    LeakyReLU(0.2) blocks with ``features * (1, 2, 2, 4, 4, 8, 8)`` channels and strides
    ``(2, 1, 2, 1, 2, 1, 2)``, then dense 1024 + LeakyReLU(0.2) and dense 1. Convs followed
    by BN have no bias. As in the paper the image is mapped to [-1, 1] first.

    The paper's dense layer sees the ``512 x 6 x 6`` map of a 96x96 patch; other sizes are
    average-pooled to ``pool x pool`` (``input_size // 16``; the identity for
    ``input_size`` patches), so any patch of at least 16x16 works.

    ``forward`` takes RGB ``(B, 3, H, W)`` float in [0, 1] and returns logits ``(B, 1)``
    (no sigmoid: use ``binary_cross_entropy_with_logits``).

    Args:
        features: channels of the first conv (64).
        input_size: the training patch size the dense layer is built for (96).
        in_channels: image channels (3).
    """

    def __init__(self, features: int = 64, input_size: int = 96, in_channels: int = 3) -> None:
        super().__init__()
        for name, value in (
            ("features", features),
            ("input_size", input_size),
            ("in_channels", in_channels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"SRGANDiscriminator {name} must be a positive int, got {value}")
        if input_size < 16:
            raise InputError(f"SRGANDiscriminator input_size must be >= 16, got {input_size}")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, features, 3, padding=1),
            nn.LeakyReLU(0.2),
        ]
        c_in = features
        for mult, stride in BLOCKS:
            c_out = features * mult
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = input_size // 16
        self.dense1 = nn.Linear(c_in * self.pool * self.pool, 1024)
        self.dense2 = nn.Linear(1024, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> logits ``(B, 1)``; H, W >= 16."""
        if x.ndim != 4 or min(x.shape[-2:]) < 16:
            raise InputError(
                f"SRGANDiscriminator takes (B, C, H, W) with H, W >= 16, got {tuple(x.shape)}"
            )
        y = self.features(x * 2 - 1)
        y = F.adaptive_avg_pool2d(y, self.pool).flatten(1)
        return self.dense2(F.leaky_relu(self.dense1(y), 0.2))
