"""The rcan plugin: parameter counts, the official and BasicSR layouts against independent
functional forwards, srplug's own files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from srplug_rcan.blocks import ChannelAttention
from srplug_rcan.convert import convert_state_dict

import srplug
from srplug.errors import InputError, WeightsError
from srplug.weights import save_safetensors
from tests.plugins.rcan.functional import (
    DIV2K_MEAN,
    RandomState,
    conv,
    head,
    max_abs_diff,
    n_params,
    rcab,
    run_model,
    tail,
    upsample,
)

# small but official-layout configuration for the forward checks
GROUPS, BLOCKS, FEATS, REDUCTION = 2, 3, 16, 4


def official_state(scale: int, seed: int) -> dict[str, torch.Tensor]:
    """An RCAN state dict in the RCAN repository's layout (EDSR-PyTorch style keys)."""
    rs = RandomState(seed)
    rs.head(FEATS)
    rs.rcan_body(GROUPS, BLOCKS, FEATS, REDUCTION)
    rs.tail(scale, FEATS)
    return rs.state


def official_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, scale: int) -> torch.Tensor:
    """The official RCAN.forward on [0, 255] input, here given [0, 1] and returning [0, 1]."""
    x = head(x, sd)
    res = x
    for g in range(GROUPS):
        y = res
        for b in range(BLOCKS):
            y = rcab(y, sd, f"body.{g}.body.{b}.")
        res = conv(y, sd, f"body.{g}.body.{BLOCKS}.") + res
    res = conv(res, sd, f"body.{GROUPS}.") + x
    return tail(res, sd, scale)


def basicsr_state(scale: int, seed: int) -> dict[str, torch.Tensor]:
    """An RCAN state dict in BasicSR's layout (``rcan_arch.RCAN``)."""
    rs = RandomState(seed)
    rs.conv("conv_first.", FEATS, 3, 3)
    for g in range(GROUPS):
        for b in range(BLOCKS):
            p = f"body.{g}.residual_group.{b}.rcab."
            rs.conv(p + "0.", FEATS, FEATS, 3)
            rs.conv(p + "2.", FEATS, FEATS, 3)
            rs.conv(p + "3.attention.1.", FEATS // REDUCTION, FEATS, 1)
            rs.conv(p + "3.attention.3.", FEATS, FEATS // REDUCTION, 1)
        rs.conv(f"body.{g}.conv.", FEATS, FEATS, 3)
    rs.conv("conv_after_body.", FEATS, FEATS, 3)
    rs.upsampler("upsample.", scale, FEATS)
    rs.conv("conv_last.", 3, FEATS, 3)
    return rs.state


def basicsr_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, scale: int) -> torch.Tensor:
    """BasicSR's RCAN.forward: ``(x - mean) * 255`` in, ``/ 255 + mean`` out."""
    mean = torch.tensor(DIV2K_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    x = conv((x - mean) * 255.0, sd, "conv_first.")
    res = x
    for g in range(GROUPS):
        y = res
        for b in range(BLOCKS):
            p = f"body.{g}.residual_group.{b}.rcab."
            r = conv(torch.relu(conv(y, sd, p + "0.")), sd, p + "2.")
            a = torch.relu(conv(r.mean((2, 3), keepdim=True), sd, p + "3.attention.1."))
            y = r * torch.sigmoid(conv(a, sd, p + "3.attention.3.")) + y
        res = conv(y, sd, f"body.{g}.conv.") + res
    res = conv(res, sd, "conv_after_body.") + x
    out = conv(upsample(res, sd, "upsample.", scale), sd, "conv_last.")
    return out / 255.0 + mean


@pytest.mark.parametrize(
    "scale,expected", [(2, 15_444_667), (3, 15_629_307), (4, 15_592_379), (8, 15_740_091)]
)
def test_parameter_count(scale: int, expected: int) -> None:
    """10 groups x 20 RCABs, 64 features: ~15.4M as published (x2/x4 15.44M/15.59M); the
    count includes the two 1x1 mean shifts (24 parameters), as the official model's does."""
    model = srplug.info("rcan").build(scale=scale)
    assert n_params(model) == expected
    assert round(n_params(model) / 1e6, 1) in (15.4, 15.6, 15.7)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_official_layout_matches_functional_forward(tmp_path: Path, scale: int) -> None:
    sd = official_state(scale, seed=scale)
    path = tmp_path / f"RCAN_BIX{scale}.pt"
    torch.save({k: v.float() for k, v in sd.items()}, path)
    up = srplug.get("rcan", weights=path)  # scale and depth read from the tensors
    assert up.scale == scale
    loaded = up.model.double()
    loaded.load_state_dict(sd)  # exact float64 values for the comparison
    x = torch.rand(2, 3, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = run_model(loaded, x)
    assert got.shape == (2, 3, 9 * scale, 7 * scale)
    assert max_abs_diff([got], [official_forward(sd, x, scale)]) < 1e-5


@pytest.mark.parametrize("scale", [2, 4])
def test_basicsr_layout_matches_its_forward(tmp_path: Path, scale: int) -> None:
    sd = basicsr_state(scale, seed=10 + scale)
    path = tmp_path / f"RCAN_BIX{scale}.pth"
    wrapped = {f"module.{k}": v.float() for k, v in sd.items()}
    torch.save({"params_ema": wrapped, "params": wrapped}, path)
    up = srplug.get("rcan", weights=path)
    assert up.scale == scale
    model = up.model.double()
    model.load_state_dict(convert_state_dict(sd))
    x = torch.rand(1, 3, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert max_abs_diff([run_model(model, x)], [basicsr_forward(sd, x, scale)]) < 1e-5


def test_own_files_round_trip(tmp_path: Path) -> None:
    up = srplug.get(
        "rcan", scale=3, weights=None, n_resgroups=2, n_resblocks=2, n_feats=8, reduction=2
    )
    path = save_safetensors(up.model.state_dict(), tmp_path / "rcan.safetensors")
    again = srplug.get("rcan", weights=path)
    assert again.scale == 3
    x = torch.rand(1, 3, 5, 6)
    assert torch.equal(run_model(up.model, x.double()), run_model(again.model, x.double()))
    with pytest.raises(WeightsError, match="is for x3, not x2"):
        srplug.get("rcan", scale=2, weights=path)


def test_other_layouts_are_refused() -> None:
    with pytest.raises(WeightsError, match="HAN checkpoint.*use model 'han'"):
        convert_state_dict({"head.0.weight": torch.zeros(1), "la.gamma": torch.zeros(1)})
    with pytest.raises(WeightsError, match="not an RCAN checkpoint"):
        convert_state_dict({"features.0.weight": torch.zeros(1)})


def test_options_are_checked() -> None:
    with pytest.raises(InputError, match="n_resgroups must be a positive int"):
        srplug.get("rcan", weights=None, n_resgroups=0)
    with pytest.raises(InputError, match="leaves no channel"):
        srplug.get("rcan", weights=None, n_feats=8, reduction=16)


def test_channel_attention_keys_are_the_official_ones() -> None:
    """The CA layer is its own class with the official keys (for a fused kernel to swap in)."""
    keys = set(ChannelAttention(64, 16).state_dict())
    assert keys == {f"conv_du.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
    model = srplug.get("rcan", weights=None, n_resgroups=1, n_resblocks=1, kernels="eager").model
    assert isinstance(model.body[0].body[0].body[3], ChannelAttention)
