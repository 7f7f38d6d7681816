"""Transposed convolutions in sub-pixel form (srplug.ops.subpixel) and their use by fuse."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import srplug
import srplug.ops
from srplug.errors import InputError
from srplug.ops.subpixel import deconv_to_subpixel
from tests.ops.conftest import rel_err

FORMS = [(5, 1, 9, 2, 4, 1), (5, 1, 9, 3, 4, 2), (4, 2, 9, 4, 4, 3), (3, 2, 4, 2, 1, 0)]


@pytest.mark.parametrize(("c_in", "c_out", "k", "s", "p", "op"), FORMS)
def test_module_matches_the_transposed_convolution(c_in, c_out, k, s, p, op) -> None:
    torch.manual_seed(k + s)
    deconv = nn.ConvTranspose2d(c_in, c_out, k, stride=s, padding=p, output_padding=op)
    fast = srplug.ops.SubPixelConvTranspose2d.from_deconv(deconv)
    assert fast.weight is deconv.weight and fast.bias is deconv.bias
    assert list(fast.state_dict()) == ["weight", "bias"]
    x = torch.randn(2, c_in, 7, 6)
    with torch.no_grad():
        want = deconv(x)
        assert rel_err(fast(x), want) <= 1e-5
        assert rel_err(fast(x.contiguous(memory_format=torch.channels_last)), want) <= 1e-5
        assert rel_err(deconv_to_subpixel(deconv)(x), want) <= 1e-5
        deconv.weight.mul_(-3)  # in place: the cached sub-pixel weights must follow
        assert rel_err(fast(x), deconv(x)) <= 1e-5


def test_gradients_run_the_transposed_convolution() -> None:
    torch.manual_seed(1)
    deconv = nn.ConvTranspose2d(3, 1, 9, stride=2, padding=4, output_padding=1)
    fast = srplug.ops.SubPixelConvTranspose2d.from_deconv(copy.deepcopy(deconv))
    x = torch.randn(1, 3, 5, 4)
    fast(x).square().sum().backward()
    deconv(x).square().sum().backward()
    assert torch.equal(fast.weight.grad, deconv.weight.grad)


def test_other_forms_are_declined() -> None:
    groups = nn.ConvTranspose2d(4, 4, 3, stride=2, groups=2)
    cropped = nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1)  # output 2h - 1
    for deconv in (groups, cropped, nn.ConvTranspose2d(4, 4, 3, padding=1)):
        assert deconv_to_subpixel(deconv) is None
        assert not srplug.ops.SubPixelConvTranspose2d.eligible(deconv)
    with pytest.raises(InputError, match="exactly stride times its input"):
        srplug.ops.SubPixelConvTranspose2d.from_deconv(cropped)


@pytest.mark.usefixtures("ops_ext", "one_thread")
def test_fuse_swaps_fsrcnns_deconvolution_and_keeps_the_output() -> None:
    torch.manual_seed(2)
    eager = srplug.get("fsrcnn", scale=3, weights=None, kernels="eager")
    fused = srplug.get("fsrcnn", scale=3, weights=None, kernels="fused")
    fused.model.load_state_dict(eager.model.state_dict())
    assert isinstance(fused.model.deconv, srplug.ops.SubPixelConvTranspose2d)
    assert list(fused.model.state_dict()) == list(eager.model.state_dict())
    x = torch.rand(1, 1, 21, 17)
    with torch.inference_mode():
        assert rel_err(fused(x), eager(x)) <= 1e-5
