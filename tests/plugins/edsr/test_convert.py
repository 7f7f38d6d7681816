"""EDSR-PyTorch's and BasicSR's checkpoint layouts load with no renaming and compute what the
projects' modules compute (independent functional forwards in ``reference.py``)."""

from __future__ import annotations

import pytest
import torch
from srplug_edsr.convert import convert_edsr, convert_mdsr, layout_of

import srplug
from srplug.errors import WeightsError
from tests.helpers.torch_utils import one_thread, run_double, save_checkpoint
from tests.plugins.edsr.reference import (
    basicsr_edsr_forward,
    basicsr_edsr_state,
    edsr_pytorch_forward,
    edsr_pytorch_state,
    mdsr_pytorch_forward,
    mdsr_pytorch_state,
)

TOL = 1e-5


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.mark.parametrize(
    ("name", "scale", "blocks", "feats", "res_scale", "file"),
    [
        ("edsr-baseline", 2, 16, 64, 1.0, "edsr_baseline_x2-1bc95232.pt"),
        ("edsr-baseline", 3, 16, 64, 1.0, "edsr_baseline_x3-abf2a44e.pt"),
        ("edsr-baseline", 4, 16, 64, 1.0, "edsr_baseline_x4-6b446fab.pt"),
        ("edsr", 2, 32, 256, 0.1, "edsr_x2-0edfb8a3.pt"),
        ("edsr", 4, 2, 256, 0.1, "edsr_x4-4f62e9ef.pt"),  # x4 path; 2 blocks keep it fast
    ],
)
def test_edsr_pytorch_layout(tmp_path, name, scale, blocks, feats, res_scale, file):
    """The full published configurations, random weights, odd input sizes."""
    state = edsr_pytorch_state(scale, blocks, feats)
    path = save_checkpoint(state, tmp_path / file)
    up = srplug.get(name, weights=path)  # scale, blocks, features, res_scale from the file
    assert up.scale == scale
    x = torch.rand(1, 3, 7, 5, generator=torch.Generator().manual_seed(1))
    expected = edsr_pytorch_forward(state, x, scale, res_scale)
    got = run_double(up, x)
    assert got.shape == (1, 3, 7 * scale, 5 * scale)
    assert (got - expected).abs().max().item() < TOL


def test_edsr_pytorch_file_in_the_other_edsr_name(tmp_path):
    """An EDSR-baseline file loads through ``edsr`` too: the options come from the file."""
    state = edsr_pytorch_state(2, 16, 64)
    up = srplug.get("edsr", weights=save_checkpoint(state, tmp_path / "baseline.pt"))
    assert up.model.res_scale == 1.0 and len(up.model.body) == 16
    x = torch.rand(1, 3, 5, 6)
    assert (run_double(up, x) - edsr_pytorch_forward(state, x, 2, 1.0)).abs().max().item() < TOL


def test_rgb_range_read_from_the_mean_shift(tmp_path):
    state = edsr_pytorch_state(2, 2, 8, rgb_range=1.0)
    up = srplug.get("edsr-baseline", weights=save_checkpoint(state, tmp_path / "r1.pt"))
    assert up.model.rgb_range == 1.0
    x = torch.rand(1, 3, 5, 4)
    expected = edsr_pytorch_forward(state, x, 2, 1.0, rgb_range=1.0)
    assert (run_double(up, x) - expected).abs().max().item() < TOL


@pytest.mark.parametrize("wrapper", ["params", "params_ema", "module"])
@pytest.mark.parametrize(
    ("scale", "blocks", "feats", "res_scale"), [(2, 16, 64, 1.0), (3, 4, 32, 1.0), (4, 3, 256, 0.1)]
)
def test_basicsr_layout(tmp_path, wrapper, scale, blocks, feats, res_scale):
    state = basicsr_edsr_state(scale, blocks, feats)
    if wrapper == "module":
        saved = {f"module.{k}": v for k, v in state.items()}
    else:  # BasicSR saves both; the EMA copy is the one to use
        other = {k: torch.zeros_like(v) for k, v in state.items()}
        saved = {wrapper: state, "params" if wrapper == "params_ema" else "params_ema": other}
        if wrapper == "params":
            saved = {"params": state}
    path = save_checkpoint(saved, tmp_path / f"EDSR_x{scale}.pth")
    up = srplug.get("edsr-baseline", weights=path)
    assert up.scale == scale
    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(2))
    expected = basicsr_edsr_forward(state, x, scale, res_scale)
    assert (run_double(up, x) - expected).abs().max().item() < TOL


def test_basicsr_mean_key_is_dropped():
    state = basicsr_edsr_state(2, 1, 8)
    state["mean"] = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
    assert "mean" not in convert_edsr(state)


@pytest.mark.parametrize(
    ("blocks", "file"), [(80, "mdsr-4a78bedf.pt"), (16, "mdsr_baseline-a00cab12.pt")]
)
def test_mdsr_pytorch_layout(tmp_path, blocks, file):
    """One MDSR checkpoint serves every scale; ``scale=`` picks the branch."""
    state = mdsr_pytorch_state(blocks, 64)
    path = save_checkpoint(state, tmp_path / file)
    x = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(3))
    for branch, scale in enumerate((2, 3, 4)):
        up = srplug.get("mdsr", scale=scale, weights=path)
        assert up.model.scale == scale and up.model.scales == (2, 3, 4)
        expected = mdsr_pytorch_forward(state, x, branch, scale)
        got = run_double(up, x)
        assert got.shape == (1, 3, 6 * scale, 5 * scale)
        assert (got - expected).abs().max().item() < TOL


def test_mdsr_branch_order_read_from_the_upsamplers(tmp_path):
    """A checkpoint trained with ``--scale 4+2`` has branch 0 = x4, branch 1 = x2."""
    state = mdsr_pytorch_state(2, 16, scales=(4, 2))
    up = srplug.get("mdsr", scale=2, weights=save_checkpoint(state, tmp_path / "m.pt"))
    assert up.model.scales == (4, 2)
    x = torch.rand(1, 3, 5, 5)
    assert (run_double(up, x) - mdsr_pytorch_forward(state, x, 1, 2)).abs().max().item() < TOL
    with pytest.raises(srplug.InputError, match="supports scales|not 3"):
        srplug.get("mdsr", scale=3, weights=tmp_path / "m.pt")


def test_srplug_files_round_trip(tmp_path):
    from srplug.weights import save_safetensors

    up = srplug.get("mdsr", scale=3, weights=None, blocks=2, features=8)
    path = save_safetensors(up.model.state_dict(), tmp_path / "mdsr_small.safetensors")
    again = srplug.get("mdsr", scale=3, weights=path)
    assert again.model.scales == (2, 3, 4) and len(again.model.body) == 2
    x = torch.rand(1, 3, 4, 5)
    assert torch.equal(run_double(up, x), run_double(again, x))


def test_layouts_are_told_apart():
    assert layout_of(edsr_pytorch_state(2, 1, 8)) == "edsr-pytorch"
    assert layout_of(mdsr_pytorch_state(1, 8)) == "edsr-pytorch-mdsr"
    assert layout_of(basicsr_edsr_state(2, 1, 8)) == "srplug"
    assert layout_of({"conv1.weight": torch.zeros(1)}) == "unknown"


def test_wrong_family_names_the_model_to_use(tmp_path):
    edsr_file = save_checkpoint(edsr_pytorch_state(2, 1, 8), tmp_path / "e.pt")
    mdsr_file = save_checkpoint(mdsr_pytorch_state(1, 8), tmp_path / "m.pt")
    with pytest.raises(WeightsError, match="load it with model 'edsr'"):
        srplug.get("mdsr", weights=edsr_file)
    with pytest.raises(WeightsError, match="load it with model 'mdsr'"):
        srplug.get("edsr", weights=mdsr_file)
    with pytest.raises(WeightsError, match="not an EDSR checkpoint"):
        convert_edsr({"conv1.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match="not an MDSR checkpoint"):
        convert_mdsr({"conv1.weight": torch.zeros(1)})


def test_non_div2k_mean_is_refused(tmp_path):
    state = edsr_pytorch_state(2, 1, 8)
    state["sub_mean.bias"] = -255 * torch.tensor([0.5, 0.5, 0.5])
    state["add_mean.bias"] = 255 * torch.tensor([0.5, 0.5, 0.5])
    with pytest.raises(WeightsError, match="DIV2K"):
        srplug.get("edsr", weights=save_checkpoint(state, tmp_path / "m.pt"))


def test_wrong_scale_request_is_refused(tmp_path):
    path = save_checkpoint(edsr_pytorch_state(4, 1, 8), tmp_path / "edsr_x4.pt")
    with pytest.raises(WeightsError, match="is for x4, not x2"):
        srplug.get("edsr", scale=2, weights=path)
