"""edge-SR training step: the networks' training path against the plain formula, side by side.

    python benchmarks/esr_train_step.py [--threads 1] [--rounds 15] [--batch 16] [--lr-size 32]

One step = forward, L2 loss against a random target, backward, on a batch of random LR patches
``(batch, 1, lr_size, lr_size)`` (the recipes' 16 x 32x32). Contenders, on the same weights:

- ``ours``: the network's own forward with gradients tracked (what ``srplug train``
  runs: the last convolution as one matrix product of the unfolded input, its output laid
  out candidate-major so that the reduction combines long contiguous rows);
- ``last``: the same product with the candidates laid out last, ``(N*h*w, G, s*s, C)``, and
  the reduction over that short last dimension (srplug's training path before; PyTorch's
  softmax over a last dimension of 13 is slow);
- ``conv2d``: ``conv2d``, then the reduction over the candidates' dimension of the
  ``(N, C, s*s, h, w)`` views and ``pixel_shuffle`` (srplug's earlier training path);
- ``plain``: ``conv2d -> pixel_shuffle -> reduction`` (:func:`srplug.ops.reference.esr_upscale`,
  the authors' order).

eSR-CNN runs its hidden layers first in all four.

Rounds interleave the contenders; the table gives medians in milliseconds and the ratio of the
medians. Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from harness import interleaved_times, wall_seconds

import srplug
from srplug.layout import to_memory_format
from srplug.ops import reference

MODELS = ("esr-max", "esr-tm", "esr-tr", "esr-cnn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr-size", type=int, default=32)
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"edge-SR training step, batch {args.batch} x (1, {args.lr_size}, {args.lr_size}), "
        f"{args.threads} thread(s), {args.rounds} interleaved rounds, torch {torch.__version__}"
    )
    print(
        "| model | scale | ours ms | last ms | conv2d ms | plain ms "
        "| last / ours | conv2d / ours | plain / ours |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in MODELS:
        for scale in args.scales:
            net = srplug.get(name, scale, weights=None, kernels="eager").model
            net = to_memory_format(net.float(), torch.channels_last).train()
            x = torch.rand(args.batch, 1, args.lr_size, args.lr_size)
            target = torch.rand(args.batch, 1, args.lr_size * scale, args.lr_size * scale)

            def ours(net=net, x=x, target=target) -> None:
                F.mse_loss(net(x), target).backward()

            def last(net=net, x=x, target=target) -> None:
                out = F.pixel_shuffle(candidates_last(net, net.body(x)), net.scale)
                F.mse_loss(out, target).backward()

            def conv(net=net, x=x, target=target) -> None:
                hidden = net.body(x)
                weight = net.last_conv().weight
                features = F.conv2d(hidden, weight, padding=weight.shape[-1] // 2)
                out = F.pixel_shuffle(net.reduce(net._split(features)), net.scale)
                F.mse_loss(out, target).backward()

            def plain(net=net, x=x, target=target) -> None:
                out = reference.esr_upscale(
                    net.body(x), net.last_conv().weight, net.scale, net.reduction
                )
                F.mse_loss(out, target).backward()

            contenders = {"ours": ours, "last": last, "conv": conv, "plain": plain}
            times = interleaved_times(
                {k: wall_seconds(fn) for k, fn in contenders.items()}, args.rounds
            )
            ms = [statistics.median(times[k]) * 1e3 for k in contenders]
            cells = [f"{m:.1f}" for m in ms] + [f"{m / ms[0]:.2f}" for m in ms[1:]]
            print(f"| {name} | x{scale} | " + " | ".join(cells) + " |", flush=True)


def candidates_last(net: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """``(N, Cin, h, w)`` -> ``(N, s*s, h, w)`` phases, the reduction over the last dimension
    of ``(N*h*w, G, s*s, C)`` features (the ``last`` contender)."""
    conv = net.last_conv()
    k = conv.kernel_size[0]
    n, cin, h, w = hidden.shape
    g, c, s2 = net.groups, net.channels, net.scale * net.scale
    filters = conv.weight.reshape(g, c, s2, -1).transpose(1, 2).reshape(g * s2 * c, -1)
    if cin == 1:
        cols = F.unfold(hidden, k, padding=k // 2).transpose(1, 2).reshape(n * h * w, -1)
        features = cols @ filters.t()
    else:
        weight = filters.reshape(-1, cin, k, k).contiguous(memory_format=torch.channels_last)
        hidden = hidden.contiguous(memory_format=torch.channels_last)
        features = F.conv2d(hidden, weight, padding=k // 2).permute(0, 2, 3, 1)
    phases = net.reduce(features.reshape(n * h * w, g, s2, c).unbind(1), dim=-1)
    return phases.view(n, h, w, s2).permute(0, 3, 1, 2)


if __name__ == "__main__":
    main()
