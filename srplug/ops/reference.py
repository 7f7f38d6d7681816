"""Pure-PyTorch references of the fused ops: the definitions the kernels are tested against,
the fallback when no extension is built, and the backward of every op (autograd through the
reference, recomputed from the saved inputs).

All functions take and return float tensors on any device, in any memory format; they are
plain compositions of differentiable torch ops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "ACTIVATIONS",
    "REDUCTIONS",
    "activate",
    "channel_attention",
    "conv2d_act",
    "conv3x3",
    "esr_upscale",
    "pixel_shuffle",
]

REDUCTIONS: dict[str, int] = {"max": 1, "tm": 2, "tr": 3, "cnn": 2}
"""edge-SR reduction name -> number of filter groups ``G`` (value, match/query, key)."""

ACTIVATIONS = ("none", "relu", "leaky_relu", "tanh", "sigmoid", "prelu")


def esr_upscale(x: torch.Tensor, weight: torch.Tensor, scale: int, reduction: str) -> torch.Tensor:
    """edge-SR head: ``k x k`` conv -> pixel shuffle -> reduction over the ``C`` candidates.

    Args:
        x: ``(N, Cin, h, w)`` float (the Y plane for eSR-MAX/TM/TR, eSR-CNN's hidden maps).
        weight: ``(G*C*s*s, Cin, k, k)``, odd ``k``, zero padding ``k // 2``, no bias.
        scale: ``s``.
        reduction: ``"max"`` (``max_c v``), ``"tm"`` (``sum_c v * softmax_c(m)``), ``"tr"``
            (``sum_c v * softmax_c(q * k)``) or ``"cnn"`` (``sum_c v * softmax_c(k * k)``).

    Returns:
        ``(N, 1, h*s, w*s)``, dtype of ``x``. The groups are read in pixel-shuffle order:
        channel ``(g*C + c)*s*s + i*s + j`` is phase ``(i, j)`` of candidate ``c`` of group ``g``.
    """
    groups = REDUCTIONS[reduction]
    features = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    shuffled = F.pixel_shuffle(features, scale)  # (N, G*C, h*s, w*s)
    parts = shuffled.unflatten(1, (groups, -1)).unbind(1)
    if reduction == "max":
        return parts[0].amax(dim=1, keepdim=True)
    if reduction == "tm":
        logits = parts[1]
    elif reduction == "tr":
        logits = parts[1] * parts[2]
    else:
        logits = parts[1] * parts[1]
    return (parts[0] * torch.softmax(logits, dim=1)).sum(dim=1, keepdim=True)


def pixel_shuffle(
    x: torch.Tensor,
    scale: int,
    bias: torch.Tensor | None = None,
    activation: str = "none",
    negative_slope: float = 0.01,
    prelu_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``act(pixel_shuffle(x + bias))``: ``(N, C*s*s, H, W)`` -> ``(N, C, H*s, W*s)``.

    ``bias`` (``C*s*s`` values) is the bias of the convolution before the shuffle;
    ``activation`` one of :data:`ACTIVATIONS` (``prelu`` takes ``prelu_weight`` with 1 or ``C``
    values, ``leaky_relu`` takes ``negative_slope``).
    """
    if bias is not None:
        x = x + bias.reshape(1, -1, 1, 1)
    return activate(F.pixel_shuffle(x, scale), activation, negative_slope, prelu_weight)


def activate(
    y: torch.Tensor,
    activation: str,
    negative_slope: float = 0.01,
    prelu_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``activation`` (one of :data:`ACTIVATIONS`) applied to ``(N, C, H, W)`` ``y``;
    ``prelu`` takes ``prelu_weight`` (1 or ``C`` slopes), ``leaky_relu`` ``negative_slope``."""
    if activation == "relu":
        return F.relu(y)
    if activation == "leaky_relu":
        return F.leaky_relu(y, negative_slope)
    if activation == "tanh":
        return torch.tanh(y)
    if activation == "sigmoid":
        return torch.sigmoid(y)
    if activation == "prelu":
        assert prelu_weight is not None
        return F.prelu(y, prelu_weight.reshape(-1))
    return y


def channel_attention(
    x: torch.Tensor,
    w_down: torch.Tensor,
    b_down: torch.Tensor,
    w_up: torch.Tensor,
    b_up: torch.Tensor,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """RCAN channel attention: ``x * sigmoid(up(relu(down(avgpool(x))))) (+ residual)``.

    Args:
        x: ``(N, C, H, W)`` float.
        w_down: ``(C//r, C)`` or ``(C//r, C, 1, 1)``; ``b_down``: ``(C//r,)``.
        w_up: ``(C, C//r)`` or ``(C, C//r, 1, 1)``; ``b_up``: ``(C,)``.
        residual: optional ``(N, C, H, W)`` added at the end (the RCAB skip).
    """
    pooled = x.mean(dim=(2, 3))  # (N, C)
    hidden = F.relu(F.linear(pooled, w_down.flatten(1), b_down))
    gate = torch.sigmoid(F.linear(hidden, w_up.flatten(1), b_up))
    out = x * gate[:, :, None, None]
    return out if residual is None else out + residual


def conv3x3(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str = "none",
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """``act(conv3x3(x, weight) + bias) (+ residual)``, stride 1, zero padding 1.

    Args:
        x: ``(N, C, H, W)`` float.
        weight: ``(K, C, 3, 3)``; ``bias``: ``(K,)`` or None.
        activation: ``"none"`` or ``"relu"``.
        residual: optional ``(N, K, H, W)`` added after the activation.
    """
    y = activate(F.conv2d(x, weight, bias, padding=1), activation)
    return y if residual is None else y + residual


def conv2d_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    activation: str = "none",
    prelu_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``act(conv2d(pad(x), weight) + bias)``.

    Args:
        x: ``(N, C, H, W)`` float.
        weight: ``(K, C, kh, kw)``; ``bias``: ``(K,)`` or None.
        stride: the stride of both axes.
        padding: zeros added ``(top, bottom, left, right)``.
        activation: ``"none"``, ``"relu"`` or ``"prelu"`` (slopes ``prelu_weight``: 1 or
            ``K`` values).
    """
    top, bottom, left, right = padding
    y = F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias, stride=stride)
    return activate(y, activation, prelu_weight=prelu_weight)
