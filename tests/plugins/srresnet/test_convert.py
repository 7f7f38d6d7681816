"""Other projects' SRResNet / SRGAN generators load with no renaming and compute what their
modules compute; leftthomas/SRGAN's published files give sensible images."""

from __future__ import annotations

import pytest
import torch
from srplug_srresnet.convert import convert_state_dict, layout_of
from srplug_srresnet.model import MSRResNet, SRResNet

import srplug
from srplug.datasets import BenchmarkDataset
from srplug.errors import WeightsError
from srplug.metrics import psnr
from tests.formats.reference import third_party
from tests.helpers.torch_utils import one_thread, run_double, save_checkpoint
from tests.plugins.srresnet.reference import (
    basicsr_msrresnet_forward,
    basicsr_msrresnet_state,
    leftthomas_forward,
    leftthomas_state,
)

TOL = 1e-5


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def _x(h: int = 7, w: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_leftthomas_layout(tmp_path, scale):
    """leftthomas/SRGAN's generator: 5 blocks, PReLU after the body conv, tanh output."""
    state = leftthomas_state(scale)
    path = save_checkpoint(state, tmp_path / f"netG_epoch_{scale}_100.pth")
    up = srplug.get("srgan", weights=path)
    net = up.model
    assert isinstance(net, SRResNet) and up.scale == scale
    assert (len(net.body), net.after_body_kind, net.output) == (5, "prelu", "tanh")
    x = _x()
    got = run_double(up, x)
    assert got.shape == (1, 3, 7 * scale, 5 * scale)
    assert (got - leftthomas_forward(state, x)).abs().max().item() < TOL


@pytest.mark.parametrize("name", ["srresnet", "srgan"])
def test_paper_srresnet_layout(tmp_path, name):
    """The paper's SRResNet (16 blocks, BN after the body conv) in the same block layout, also
    with srplug's linear output (``output=`` given by the user wins over the file)."""
    state = leftthomas_state(4, blocks=16, post_bn=True)
    path = save_checkpoint(state, tmp_path / "srresnet_x4.pth")
    x = _x(6, 9)
    up = srplug.get(name, weights=path)
    assert (len(up.model.body), up.model.after_body_kind) == (16, "bn")
    assert (run_double(up, x) - leftthomas_forward(state, x)).abs().max().item() < TOL
    linear = srplug.get(name, weights=path, output="linear")
    expected = leftthomas_forward(state, x, tanh=False)
    assert (run_double(linear, x) - expected).abs().max().item() < TOL


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("wrapper", ["params", "params_ema", "module"])
def test_basicsr_msrresnet_layout(tmp_path, scale, wrapper):
    state = basicsr_msrresnet_state(scale)
    if wrapper == "module":
        saved: dict = {f"module.{k}": v for k, v in state.items()}
    else:
        saved = {wrapper: state}
    path = save_checkpoint(saved, tmp_path / f"MSRResNet_x{scale}.pth")
    up = srplug.get("srresnet", weights=path)  # variant detected from the keys
    assert isinstance(up.model, MSRResNet) and up.scale == scale
    x = _x(5, 7)
    expected = basicsr_msrresnet_forward(state, x, scale)
    assert (run_double(up, x) - expected).abs().max().item() < TOL


def test_srplug_files_round_trip(tmp_path):
    from srplug.weights import save_safetensors

    for variant, options in (("srresnet", {"after_body": "prelu"}), ("msrresnet", {})):
        up = srplug.get("srresnet", scale=2, weights=None, variant=variant, blocks=2, **options)
        path = save_safetensors(up.model.state_dict(), tmp_path / f"{variant}.safetensors")
        again = srplug.get("srresnet", weights=path)
        assert type(again.model) is type(up.model) and again.scale == 2
        assert torch.equal(run_double(up, _x()), run_double(again, _x()))


def test_layouts_are_told_apart():
    assert layout_of(leftthomas_state(2)) == "leftthomas"
    assert layout_of(basicsr_msrresnet_state(4, blocks=1)) == "basicsr-msrresnet"
    assert (
        layout_of(srplug.get("srresnet", weights=None, blocks=1).model.state_dict()) == "srresnet"
    )
    with pytest.raises(WeightsError, match="not an SRResNet"):
        convert_state_dict({"head.0.weight": torch.zeros(1)})


def test_missing_bn_counters_are_filled():
    out = convert_state_dict(leftthomas_state(2, blocks=1))
    assert out["body.0.bn1.num_batches_tracked"].item() == 0


# --------------------------------------------------------------- leftthomas's real files


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_leftthomas_real_files_match_their_module(scale):
    """The published files load with no option given and match the functional forward."""
    path = third_party("srgan_leftthomas", f"netG_epoch_{scale}_100.pth")
    state = torch.load(path, map_location="cpu", weights_only=True)
    up = srplug.get("srgan", weights=path)
    assert up.scale == scale
    x = _x(6, 5)
    assert (run_double(up, x) - leftthomas_forward(state, x)).abs().max().item() < TOL


@pytest.mark.data
def test_leftthomas_x4_beats_bicubic_on_set5(data_root):
    """Set5 x4, the two smallest images (whole Set5 in the plugin README: 30.65 dB against
    bicubic's 28.43): far above noise and above bicubic."""
    up = srplug.get("srgan", weights=third_party("srgan_leftthomas", "netG_epoch_4_100.pth"))
    bicubic = srplug.get("bicubic", scale=4)
    data = BenchmarkDataset("Set5", 4, data_root=data_root)
    items = sorted((data[i] for i in range(len(data))), key=lambda it: it.hr.size)[:2]
    for item in items:
        ours = psnr(up(item.lr), item.hr, shave=4)
        base = psnr(bicubic(item.lr), item.hr, shave=4)
        assert ours > 25 and ours > base + 0.5, (item.name, ours, base)
