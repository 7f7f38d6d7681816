"""Memory layout of whole modules.

``nn.Module.to(memory_format=torch.channels_last)`` refuses a module holding any 5-D tensor
(a ``Conv3d`` kernel, as in HAN's channel-spatial attention). srplug converts only the 4-D
parameters and buffers, which are the ones convolutions read in that layout.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["to_memory_format"]


def to_memory_format(module: nn.Module, memory_format: torch.memory_format) -> nn.Module:
    """``module`` (changed in place and returned) with every 4-D parameter and buffer in
    ``memory_format``; tensors of any other rank are left as they are."""

    def convert(t: torch.Tensor) -> torch.Tensor:
        return t.contiguous(memory_format=memory_format) if t.dim() == 4 else t

    return module._apply(convert)
