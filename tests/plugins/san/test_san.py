"""The san plugin: parameter counts, the authors' layout against an independent functional
forward (MPN-COV covariance pooling and Newton-Schulz square root written as officially)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from srplug_san.convert import convert_state_dict
from srplug_san.model import (
    SOCA,
    _exported_window,
    _soca_window,
    covariance_pool,
    sqrtm_newton_schulz,
)
from torch.nn import functional as F

import srplug
from srplug.errors import InputError, WeightsError
from tests.helpers.torch_utils import one_thread
from tests.plugins.rcan.functional import (
    RandomState,
    conv,
    head,
    max_abs_diff,
    n_params,
    run_model,
    tail,
)

GROUPS, BLOCKS, FEATS, REDUCTION = 2, 2, 16, 4


def official_state(scale: int, seed: int) -> dict[str, torch.Tensor]:
    """A SAN state dict in the layout of daitao/SAN ``TestCode/code/model/san.py``."""
    rs = RandomState(seed)
    rs.head(FEATS)
    rs.add("gamma", 1, std=0.5)
    for g in range(GROUPS):
        for b in range(BLOCKS):
            rs.conv(f"RG.{g}.rcab.{b}.conv_first.0.", FEATS, FEATS, 3)
            rs.conv(f"RG.{g}.rcab.{b}.conv_first.2.", FEATS, FEATS, 3)
        rs.channel_attention(f"RG.{g}.soca.", FEATS, REDUCTION)
        rs.conv(f"RG.{g}.conv_last.", FEATS, FEATS, 3)
        rs.add(f"RG.{g}.gamma", 1)
    rs.conv("conv_last.", FEATS, FEATS, 3)
    rs.tail(scale, FEATS)
    rs.channel_attention("non_local.soca.", FEATS, 8)
    inter = FEATS // 8
    rs.conv("non_local.non_local.g.0.", inter, FEATS, 1)
    rs.conv("non_local.non_local.theta.", inter, FEATS, 1)
    rs.conv("non_local.non_local.phi.0.", inter, FEATS, 1)
    rs.conv("non_local.non_local.W.", FEATS, inter, 1)
    return rs.state


def covpool(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    m = h * w
    x = x.reshape(b, c, m)
    i_hat = torch.full((m, m), -1.0 / m / m, dtype=x.dtype) + torch.eye(m, dtype=x.dtype) / m
    return x @ i_hat @ x.transpose(1, 2)


def sqrtm(x: torch.Tensor, n_iter: int = 5) -> torch.Tensor:
    b, d, _ = x.shape
    i3 = 3.0 * torch.eye(d, dtype=x.dtype).view(1, d, d).repeat(b, 1, 1)
    norm = (1.0 / 3.0) * (x * i3).sum(dim=1).sum(dim=1)
    a = x / norm.view(b, 1, 1)
    ys = torch.zeros(b, n_iter, d, d, dtype=x.dtype)
    zs = torch.eye(d, dtype=x.dtype).view(1, 1, d, d).repeat(b, n_iter, 1, 1)
    zy = 0.5 * (i3 - a)
    ys[:, 0] = a @ zy
    zs[:, 0] = zy
    for i in range(1, n_iter - 1):
        zy = 0.5 * (i3 - zs[:, i - 1] @ ys[:, i - 1])
        ys[:, i] = ys[:, i - 1] @ zy
        zs[:, i] = zy @ zs[:, i - 1]
    zy = 0.5 * ys[:, n_iter - 2] @ (i3 - zs[:, n_iter - 2] @ ys[:, n_iter - 2])
    return zy * norm.sqrt().view(b, 1, 1)


def soca(x: torch.Tensor, sd: dict[str, torch.Tensor], prefix: str, h1: int) -> torch.Tensor:
    b, c, h, w = x.shape
    w1 = h1
    if h < h1 and w < w1:
        sub = x
    elif h < h1 and w > w1:
        left = (w - w1) // 2
        sub = x[:, :, :, left : left + w1]
    elif w < w1 and h > h1:
        top = (h - h1) // 2
        sub = x[:, :, top : top + h1, :]
    else:
        top, left = (h - h1) // 2, (w - w1) // 2
        sub = x[:, :, top : top + h1, left : left + w1]
    y = torch.mean(sqrtm(covpool(sub)), 1).view(b, c, 1, 1)
    y = F.relu(conv(y, sd, prefix + "conv_du.0."))
    return torch.sigmoid(conv(y, sd, prefix + "conv_du.2.")) * x


def non_local(x: torch.Tensor, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    p = "non_local.non_local."
    b, _, h, w = x.shape
    inter = sd[p + "theta.weight"].shape[0]
    g = F.max_pool2d(conv(x, sd, p + "g.0."), 2).reshape(b, inter, -1).permute(0, 2, 1)
    theta = conv(x, sd, p + "theta.").reshape(b, inter, -1).permute(0, 2, 1)
    phi = F.max_pool2d(conv(x, sd, p + "phi.0."), 2).reshape(b, inter, -1)
    y = torch.matmul(F.softmax(torch.matmul(theta, phi), dim=-1), g)
    y = y.permute(0, 2, 1).reshape(b, inter, h, w)
    return conv(y, sd, p + "W.") + x


def region_non_local(x: torch.Tensor, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    h1, w1 = int(x.shape[2] / 2), int(x.shape[3] / 2)
    out = torch.zeros_like(x)
    out[:, :, :h1, :w1] = non_local(x[:, :, :h1, :w1], sd)
    out[:, :, h1:, :w1] = non_local(x[:, :, h1:, :w1], sd)
    out[:, :, :h1, w1:] = non_local(x[:, :, :h1, w1:], sd)
    out[:, :, h1:, w1:] = non_local(x[:, :, h1:, w1:], sd)
    return out


def official_forward(
    sd: dict[str, torch.Tensor], x: torch.Tensor, scale: int, window: int = 1000
) -> torch.Tensor:
    x = head(x, sd)
    xx = region_non_local(x, sd)
    residual = xx
    for g in range(GROUPS):
        y = xx
        for b in range(BLOCKS):
            p = f"RG.{g}.rcab.{b}.conv_first."
            y = conv(F.relu(conv(y, sd, p + "0.")), sd, p + "2.") + y
        y = conv(soca(y, sd, f"RG.{g}.soca.", window), sd, f"RG.{g}.conv_last.")
        xx = y + xx + sd["gamma"] * residual
    res = region_non_local(xx, sd) + x
    return tail(res, sd, scale)


@pytest.mark.parametrize(
    "scale,expected", [(2, 15_712_800), (3, 15_897_440), (4, 15_860_512), (8, 16_008_224)]
)
def test_parameter_count(scale: int, expected: int) -> None:
    """20 LSRAGs x 10 blocks, 64 features: SAN ~15.7M as published (x2: 15.71M). The count
    includes the official code's unused (here frozen) parameters: 38,044 at every scale."""
    model = srplug.info("san").build(scale=scale)
    assert n_params(model) == expected
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert frozen == 38_044 + 24  # unused ones + the two mean shifts


@pytest.mark.parametrize(
    "scale,size,window",
    [(2, (9, 7), 1000), (3, (8, 5), 1000), (4, (9, 7), 4), (8, (5, 9), 6), (2, (9, 5), 6)],
)
def test_official_layout_matches_functional_forward(
    tmp_path: Path, scale: int, size: tuple[int, int], window: int
) -> None:
    """Including the official window choice of SOCA (set small here to reach its branches)."""
    sd = official_state(scale, seed=scale + window)
    path = tmp_path / f"SAN_BIX{scale}.pt"
    torch.save({k: v.float() for k, v in sd.items()}, path)
    up = srplug.get("san", weights=path)
    assert up.scale == scale
    model = up.model.double()
    model.load_state_dict(sd)
    for module in model.modules():
        if isinstance(module, SOCA):
            module.window = window
    x = torch.rand(2, 3, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    got = run_model(model, x)
    assert got.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert max_abs_diff([got], [official_forward(sd, x, scale, window)]) < 1e-5


def test_covariance_and_square_root_match_mpncov() -> None:
    x = torch.randn(2, 6, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    cov = covariance_pool(x)
    assert max_abs_diff([cov], [covpool(x)]) < 1e-12
    assert max_abs_diff([sqrtm_newton_schulz(cov)], [sqrtm(cov)]) < 1e-12
    # well-conditioned: 5 iterations approximate the square root
    spd = torch.eye(6, dtype=torch.float64) + 0.1 * cov[0] / cov[0].trace()
    root = sqrtm_newton_schulz(spd[None])[0]
    assert torch.allclose(root @ root, spd, atol=1e-3)


def test_flat_features_give_finite_output() -> None:
    """A flat image makes a zero covariance; the official code divides 0 by 0."""
    up = srplug.get("san", scale=2, weights=None, n_resgroups=1, n_resblocks=1, n_feats=16)
    out = up.upscale_tensor(torch.full((1, 3, 6, 6), 0.5))
    assert out.shape == (1, 3, 12, 12) and torch.isfinite(out).all()


def test_too_small_input_is_refused() -> None:
    up = srplug.get("san", scale=2, weights=None, n_resgroups=1, n_resblocks=1, n_feats=16)
    with pytest.raises(InputError, match="at least 4x4"):
        up.upscale_tensor(torch.rand(1, 3, 3, 8))


def test_unused_parameters_are_frozen_and_get_no_gradient() -> None:
    model = srplug.info("san").build(scale=2, n_resgroups=2, n_resblocks=1, n_feats=16)
    model(torch.rand(1, 3, 8, 8)).mean().backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(model.get_parameter(n).grad is not None for n in trainable)
    assert "RG.0.gamma" not in trainable and "conv_last.weight" not in trainable
    assert "gamma" in trainable  # the share-source weight is used


def test_other_layouts_are_refused() -> None:
    with pytest.raises(WeightsError, match="RCAN checkpoint.*use model 'rcan'"):
        convert_state_dict({"head.0.weight": torch.zeros(1), "body.0.body.0.x": torch.zeros(1)})
    with pytest.raises(WeightsError, match="not a SAN checkpoint"):
        convert_state_dict({"conv.weight": torch.zeros(1)})


@pytest.mark.parametrize("side", [4, 6, 9])
def test_exported_window_bounds_equal_the_eager_branches(side: int) -> None:
    """The tensor-arithmetic window used while exporting selects what the official branches
    (with Python's negative-offset slicing) select, on sizes below, at and above ``side``."""
    for h in range(1, 2 * side + 3):
        for w in range(1, 2 * side + 3):
            x = torch.arange(h * w, dtype=torch.float64).view(1, 1, h, w)
            (top, bottom), (left, right) = (
                _exported_window(h, w, side),
                _exported_window(w, h, side),
            )
            assert torch.equal(x[:, :, top:bottom, left:right], _soca_window(x, side)), (h, w)


@pytest.mark.slow  # one export of a tiny SAN: ~25 s
def test_onnx_export_with_dynamic_size_matches_pytorch(tmp_path: Path) -> None:
    """The region non-local halves and the SOCA window are computed in the graph, so one
    export serves every size: checked on sizes reaching every window branch (window set to 9)
    with all parameters random (the non-local ``W`` is zero-initialised otherwise)."""
    pytest.importorskip("onnx", reason="ONNX export needs the onnx package")
    pytest.importorskip("onnxscript", reason="torch's dynamo ONNX exporter needs onnxscript")
    pytest.importorskip("onnxruntime", reason="the parity check runs in onnxruntime")
    from srplug.export import check_onnx, to_onnx

    up = srplug.get("san", scale=2, weights=None, n_resgroups=1, n_resblocks=1, n_feats=16)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in up.model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    for module in up.model.modules():
        if isinstance(module, SOCA):
            module.window = 9
    with one_thread():
        report = to_onnx(up, tmp_path / "san.onnx")
        # (h, w) vs the window 9: both below, one above, one equal (the negative-offset
        # quirk), both above
        sizes = ((1, 5, 7), (1, 6, 20), (1, 20, 6), (1, 9, 5), (1, 5, 9), (2, 12, 13), (1, 4, 4))
        diff, _ = check_onnx(report.path, up.model.float().eval(), channels=3, scale=2, sizes=sizes)
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4
    assert diff <= 1e-4
