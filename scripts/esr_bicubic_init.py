"""Write an edge-SR init file whose value filters are MATLAB-bicubic phase filters.

    python scripts/esr_bicubic_init.py tm 2 7 16 tm2_init.safetensors [--match-std 0.1]

With it (recipe ``[model] init = "tm2_init.safetensors"``) an eSR-MAX/TM/TR network starts
as bicubic interpolation (Set5 x2 33.65 dB at step 0): every candidate's value filter is
the bicubic filter of its sub-pixel phase (plus ``--noise``), the match / query / key
filters are small random ones, so the softmax starts near uniform. An experiment for the
edge-SR training gap (see CHANGELOG / issue notes), not yet part of any shipped recipe.
"""

from __future__ import annotations

import argparse

import torch

from srplug.weights import save_safetensors

GROUPS = {"max": 1, "tm": 2, "tr": 3}


def cubic(x: float, a: float = -0.5) -> float:
    """Keys' cubic kernel (MATLAB's, a = -0.5)."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def phase_taps(scale: int, phase: int, k: int) -> torch.Tensor:
    """``k`` taps (centred on the LR pixel) giving output phase ``phase`` of ``scale``."""
    offset = (phase + 0.5) / scale - 0.5  # output position relative to its LR pixel
    c = k // 2
    w = torch.tensor([cubic(offset - t) for t in range(-c, c + 1)])
    return w / w.sum()


def bicubic_init(
    family: str, scale: int, k: int, C: int, *, noise: float, match_std: float, seed: int
) -> dict[str, torch.Tensor]:
    """``{"filter.weight": (G*C*s*s, 1, k, k)}`` in the edge-SR plugin's channel order
    (channel ``(g*C + c)*s*s + i*s + j`` = phase ``(i, j)`` of candidate ``c`` in group ``g``)."""
    g = torch.Generator().manual_seed(seed)
    groups = GROUPS[family]
    s2 = scale * scale
    w = torch.empty(groups * C * s2, 1, k, k)
    for group in range(groups):
        for c in range(C):
            for i in range(scale):
                for j in range(scale):
                    ch = (group * C + c) * s2 + i * scale + j
                    if group == 0:
                        base = torch.outer(phase_taps(scale, i, k), phase_taps(scale, j, k))
                        w[ch, 0] = base + noise * torch.randn(k, k, generator=g)
                    else:
                        w[ch, 0] = match_std * torch.randn(k, k, generator=g)
    return {"filter.weight": w}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("family", choices=sorted(GROUPS))
    p.add_argument("scale", type=int)
    p.add_argument("k", type=int)
    p.add_argument("C", type=int)
    p.add_argument("output")
    p.add_argument("--noise", type=float, default=1e-3)
    p.add_argument("--match-std", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    state = bicubic_init(
        args.family,
        args.scale,
        args.k,
        args.C,
        noise=args.noise,
        match_std=args.match_std,
        seed=args.seed,
    )
    save_safetensors(state, args.output)


if __name__ == "__main__":
    main()
