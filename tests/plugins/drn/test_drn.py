"""The drn plugin: parameter counts of DRN-S / DRN-L, the authors' primal and dual layouts
against an independent functional forward, the training API (forward_all, dual)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from srplug_drn import DRN, build_drn_l, load_dual_weights
from srplug_drn.convert import convert_state_dict
from torch.nn import functional as F

import srplug
from srplug.errors import InputError, WeightsError
from tests.plugins.rcan.functional import (
    RandomState,
    conv,
    max_abs_diff,
    n_params,
    rcab,
    run_model,
    upsample,
)

BLOCKS, FEATS = 2, 8  # reduced depth and width; the layout is the official one


def official_state(scale: int, seed: int) -> dict[str, torch.Tensor]:
    """A DRN primal state dict in the layout of guoyongcs/DRN ``model/drn.py``."""
    phases = scale.bit_length() - 1
    rs = RandomState(seed)
    rs.mean_shifts()
    rs.conv("head.", FEATS, 3, 3)
    for p in range(phases):
        c = FEATS * 2**p
        rs.conv(f"down.{p}.dual_module.0.0.", c, c, 3, bias=False)
        rs.conv(f"down.{p}.dual_module.1.", 2 * c, c, 3, bias=False)
    for i in range(phases):
        c = FEATS * 2 ** (phases if i == 0 else phases - i + 1)
        for b in range(BLOCKS):
            rs.rcab(f"up_blocks.{i}.{b}.", c, 16)
        rs.conv(f"up_blocks.{i}.{BLOCKS}.0.", 4 * c, c, 3)
        rs.conv(f"up_blocks.{i}.{BLOCKS + 1}.", FEATS * 2 ** (phases - i - 1), c, 1)
    rs.conv("tail.0.", 3, FEATS * 2**phases, 3)
    for k, p in enumerate(range(phases, 0, -1), start=1):
        rs.conv(f"tail.{k}.", 3, FEATS * 2**p, 3)
    return rs.state


def dual_states(scale: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """The authors' dual file: a list of ``log2(scale)`` DownBlock(3 -> n_feats -> 3) dicts."""
    out = []
    for i in range(scale.bit_length() - 1):
        rs = RandomState(seed + i)
        rs.conv("dual_module.0.0.", FEATS, 3, 3, bias=False)
        rs.conv("dual_module.1.", 3, FEATS, 3, bias=False)
        out.append(rs.state)
    return out


def down_block(x: torch.Tensor, sd: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    x = F.leaky_relu(conv(x, sd, prefix + "dual_module.0.0.", stride=2), 0.2)
    return conv(x, sd, prefix + "dual_module.1.")


def official_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, scale: int) -> list:
    phases = scale.bit_length() - 1
    x = F.interpolate(x * 255.0, scale_factor=scale, mode="bicubic", align_corners=False)
    x = conv(conv(x, sd, "sub_mean."), sd, "head.")
    copies = []
    for p in range(phases):
        copies.append(x)
        x = down_block(x, sd, f"down.{p}.")
    results = [conv(conv(x, sd, "tail.0."), sd, "add_mean.") / 255.0]
    for i in range(phases):
        for b in range(BLOCKS):
            x = rcab(x, sd, f"up_blocks.{i}.{b}.")
        x = upsample(x, sd, f"up_blocks.{i}.{BLOCKS}.", 2)
        x = conv(x, sd, f"up_blocks.{i}.{BLOCKS + 1}.")
        x = torch.cat((x, copies[phases - i - 1]), 1)
        results.append(conv(conv(x, sd, f"tail.{i + 1}."), sd, "add_mean.") / 255.0)
    return results


@pytest.mark.parametrize(
    "name,scale,primal,dual",
    [
        ("drn-s", 4, 4_804_065, 1_728),
        ("drn-s", 8, 5_403_000, 1_296),
        ("drn-l", 4, 9_825_893, 2_160),
        ("drn-l", 8, 10_004_018, 1_620),
    ],
)
def test_parameter_count(name: str, scale: int, primal: int, dual: int) -> None:
    """Published (primal network, as the authors count): DRN-S 4.8M / 5.4M, DRN-L 9.8M /
    10.0M at x4 / x8."""
    model = srplug.info(name).build(scale=scale)
    assert n_params(model) - n_params(model.dual_models) == primal
    assert n_params(model.dual_models) == dual
    assert (
        round(primal / 1e6, 1)
        == {4: {"drn-s": 4.8, "drn-l": 9.8}, 8: {"drn-s": 5.4, "drn-l": 10.0}}[scale][name]
    )


@pytest.mark.parametrize("name,scale,size", [("drn-s", 4, (7, 5)), ("drn-l", 8, (5, 3))])
def test_official_layout_matches_functional_forward(
    tmp_path: Path, name: str, scale: int, size: tuple[int, int]
) -> None:
    sd = official_state(scale, seed=30 + scale)
    path = tmp_path / f"DRNx{scale}.pt"
    torch.save({k: v.float() for k, v in sd.items()}, path)
    up = srplug.get(name, weights=path)  # scale, depth and width from the tensors
    assert up.scale == scale
    model = up.model
    assert len(model.dual_models) == 0  # a primal file: no dual networks
    model = model.double()
    model.load_state_dict(sd)
    x = torch.rand(2, 3, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    expected = official_forward(sd, x, scale)
    with torch.no_grad():
        every = model.eval().forward_all(x)
    assert [t.shape[-2:] for t in every] == [
        (size[0] * 2**k, size[1] * 2**k) for k in range(len(every))
    ]
    assert max_abs_diff(every, expected) < 1e-5
    assert max_abs_diff([run_model(model, x)], [expected[-1]]) < 1e-5

    # the authors' dual file: a list of state dicts
    duals = dual_states(scale, seed=40)
    dual_path = tmp_path / f"DRNx{scale}_dual_model.pt"
    torch.save([{k: v.float() for k, v in d.items()} for d in duals], dual_path)
    load_dual_weights(up.model, dual_path)
    model = up.model.double()
    for block, state in zip(model.dual_models, duals, strict=True):
        block.load_state_dict(state)
    with torch.no_grad():
        back = model.dual(every)
    reference = [down_block(sr, duals[i], "") for i, sr in enumerate(expected[1:])]
    assert [t.shape for t in back] == [t.shape for t in every[:-1]]
    assert max_abs_diff(back, reference) < 1e-5


def test_own_files_keep_the_dual_networks(tmp_path: Path) -> None:
    up = srplug.get("drn-s", scale=4, weights=None, n_blocks=1, n_feats=8)
    assert len(up.model.dual_models) == 2
    path = tmp_path / "drn.pt"
    torch.save(up.model.state_dict(), path)
    again = srplug.get("drn-s", weights=path)
    assert len(again.model.dual_models) == 2
    x = torch.rand(1, 3, 5, 6, dtype=torch.float64)
    assert torch.equal(run_model(up.model, x), run_model(again.model, x))
    load_dual_weights(again.model, up.model.state_dict())  # our keys in one mapping work too


def test_other_variant_is_refused_with_the_right_name(tmp_path: Path) -> None:
    path = tmp_path / "DRNL4x.pt"
    torch.save(build_drn_l(4, dual=False).state_dict(), path)
    with pytest.raises(WeightsError, match="DRN-L x4 checkpoint.*use model 'drn-l'"):
        srplug.get("drn-s", weights=path)


def test_dual_file_errors(tmp_path: Path) -> None:
    model = DRN(4, n_blocks=1, n_feats=8, dual=False)
    with pytest.raises(InputError, match="no dual networks"):
        model.dual([torch.zeros(1, 3, 4, 4)] * 3)
    path = tmp_path / "DRNx8_dual_model.pt"
    torch.save([{k: v.float() for k, v in d.items()} for d in dual_states(8, 1)], path)
    with pytest.raises(WeightsError, match="expected 2 dual-network state dicts"):
        load_dual_weights(model, path)
    with pytest.raises(WeightsError, match="dual-network state dict, not the primal"):
        convert_state_dict(dual_states(4, 1)[0])


def test_training_api_gives_gradients_to_both_networks() -> None:
    model = DRN(4, n_blocks=1, n_feats=8)
    lr = torch.rand(2, 3, 6, 5)
    sr = model.forward_all(lr)
    loss = sum(t.abs().mean() for t in sr) + sum(t.abs().mean() for t in model.dual(sr))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
