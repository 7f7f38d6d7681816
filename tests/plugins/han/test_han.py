"""The han plugin: parameter counts, the authors' layout against an independent functional
forward (layer attention and channel-spatial attention as in wwlCape/HAN)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from srplug_han.convert import convert_state_dict
from torch.nn import functional as F

import srplug
from srplug.errors import WeightsError
from tests.plugins.rcan.functional import (
    RandomState,
    conv,
    head,
    max_abs_diff,
    n_params,
    rcab,
    run_model,
    tail,
)

GROUPS, BLOCKS, FEATS, REDUCTION = 2, 2, 16, 4


def official_state(scale: int, seed: int) -> dict[str, torch.Tensor]:
    """A HAN state dict in the layout of wwlCape/HAN ``src/model/han.py`` (with
    ``last_conv`` taking ``(GROUPS + 1) * FEATS`` channels; 11 * 64 officially)."""
    rs = RandomState(seed)
    rs.head(FEATS)
    rs.rcan_body(GROUPS, BLOCKS, FEATS, REDUCTION)
    rs.add("csa.conv.weight", 1, 1, 3, 3, 3, std=0.2)
    rs.add("csa.conv.bias", 1)
    rs.add("csa.gamma", 1, std=0.5)
    rs.add("la.gamma", 1, std=0.5)
    rs.conv("last_conv.", FEATS, FEATS * (GROUPS + 1), 3)
    rs.conv("last.", FEATS, FEATS * 2, 3)
    rs.tail(scale, FEATS)
    return rs.state


def lam(x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    b, n, c, h, w = x.size()
    query = x.view(b, n, -1)
    energy = torch.bmm(query, query.permute(0, 2, 1))
    energy = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
    out = torch.bmm(F.softmax(energy, dim=-1), query).view(b, n, c, h, w)
    return (gamma * out + x).view(b, -1, h, w)


def csam(x: torch.Tensor, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    b, _, h, w = x.size()
    out = torch.sigmoid(
        F.conv3d(x.unsqueeze(1), sd["csa.conv.weight"], sd["csa.conv.bias"], padding=1)
    )
    out = (sd["csa.gamma"] * out).view(b, -1, h, w)
    return x * out + x


def official_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, scale: int) -> torch.Tensor:
    x = head(x, sd)
    res = x
    res1 = None
    for g in range(GROUPS + 1):
        if g < GROUPS:
            y = res
            for b in range(BLOCKS):
                y = rcab(y, sd, f"body.{g}.body.{b}.")
            res = conv(y, sd, f"body.{g}.body.{BLOCKS}.") + res
        else:
            res = conv(res, sd, f"body.{GROUPS}.")
        res1 = res.unsqueeze(1) if res1 is None else torch.cat([res.unsqueeze(1), res1], 1)
    out2 = conv(lam(res1, sd["la.gamma"]), sd, "last_conv.")
    out = conv(torch.cat([csam(res, sd), out2], 1), sd, "last.") + x
    return tail(out, sd, scale)


@pytest.mark.parametrize(
    "scale,expected", [(2, 15_924_057), (3, 16_108_697), (4, 16_071_769), (8, 16_219_481)]
)
def test_parameter_count(scale: int, expected: int) -> None:
    """RCAN backbone 10 x 20 plus LAM / CSAM and the fusion convs: HAN ~16M (x4: 16.07M)."""
    model = srplug.info("han").build(scale=scale)
    assert n_params(model) == expected


@pytest.mark.parametrize("scale,size", [(2, (9, 7)), (3, (5, 8)), (4, (7, 7)), (8, (5, 3))])
def test_official_layout_matches_functional_forward(
    tmp_path: Path, scale: int, size: tuple[int, int]
) -> None:
    sd = official_state(scale, seed=20 + scale)
    path = tmp_path / f"HAN_BIX{scale}.pt"
    torch.save({k: v.float() for k, v in sd.items()}, path)
    up = srplug.get("han", weights=path)  # channels_last on CPU: the 3-D conv must allow it
    assert up.scale == scale
    model = up.model.double()
    model.load_state_dict(sd)
    x = torch.rand(2, 3, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    got = run_model(model, x)
    assert got.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert max_abs_diff([got], [official_forward(sd, x, scale)]) < 1e-5


def test_state_dict_keeps_the_official_3d_kernel_shape() -> None:
    model = srplug.info("han").build(scale=2, n_resgroups=1, n_resblocks=1, n_feats=16)
    state = model.state_dict()
    assert state["csa.conv.weight"].shape == (1, 1, 3, 3, 3)
    assert state["csa.conv.bias"].shape == (1,)
    state["csa.conv.weight"] = torch.arange(27.0).view(1, 1, 3, 3, 3)
    model.load_state_dict(state)
    assert torch.equal(model.state_dict()["csa.conv.weight"], state["csa.conv.weight"])


def test_other_layouts_are_refused() -> None:
    with pytest.raises(WeightsError, match="SAN checkpoint.*use model 'san'"):
        convert_state_dict(
            {"RG.0.x": torch.zeros(1), "non_local.non_local.theta.weight": torch.zeros(1)}
        )
    with pytest.raises(WeightsError, match="not a HAN checkpoint"):
        convert_state_dict({"conv.weight": torch.zeros(1)})
