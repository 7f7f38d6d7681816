"""The C++ kernels against the references: parity (fp32, bf16), gradcheck (fp64), checks."""

from __future__ import annotations

import pytest
import torch

import srplug.ops
from srplug.errors import InputError
from srplug.ops import reference
from tests.ops.conftest import rel_err

pytestmark = pytest.mark.usefixtures("ops_ext", "one_thread")

FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def _esr_inputs(reduction: str, scale: int, cin: int, k: int, C: int = 5, dtype=torch.float32):
    G = reference.REDUCTIONS[reduction]
    x = torch.randn(2, cin, 13, 37, dtype=dtype)  # odd sizes, batch 2, width > one block
    weight = torch.randn(G * C * scale * scale, cin, k, k, dtype=dtype) * 0.3
    return x, weight


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize(("cin", "k"), [(1, 7), (1, 3), (1, 5), (3, 3), (2, 9)])
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("reduction", list(reference.REDUCTIONS))
def test_esr_parity_fp32(reduction: str, scale: int, cin: int, k: int, fmt: str) -> None:
    torch.manual_seed(scale * 100 + k)
    x, weight = _esr_inputs(reduction, scale, cin, k)
    x = x.contiguous(memory_format=FORMATS[fmt])
    got = srplug.ops.esr_upscale(x, weight, scale, reduction, impl="cpp")
    want = reference.esr_upscale(x, weight, scale, reduction)
    assert got.shape == want.shape and got.dtype == torch.float32
    assert rel_err(got, want) <= 1e-5


@pytest.mark.parametrize("reduction", list(reference.REDUCTIONS))
def test_esr_parity_bf16(reduction: str) -> None:
    torch.manual_seed(1)
    x, weight = _esr_inputs(reduction, 2, 1, 5, dtype=torch.bfloat16)
    got = srplug.ops.esr_upscale(x, weight, 2, reduction, impl="cpp")
    want = reference.esr_upscale(x.float(), weight.float(), 2, reduction)
    assert got.dtype == torch.bfloat16
    assert rel_err(got, want) <= 1e-2  # bf16 keeps 8 bits of mantissa


def test_esr_gradcheck() -> None:
    torch.manual_seed(2)
    for reduction in reference.REDUCTIONS:
        x, weight = _esr_inputs(reduction, 2, 2, 3, C=2, dtype=torch.float64)
        x = x[:, :, :4, :5].clone().requires_grad_()
        weight.requires_grad_()

        def f(a, b, red=reduction):
            return srplug.ops.esr_upscale(a, b, 2, red, impl="cpp")

        assert torch.autograd.gradcheck(f, (x, weight)), reduction


def test_esr_large_candidate_count_and_k1() -> None:
    torch.manual_seed(3)
    x = torch.randn(1, 1, 5, 70)
    for reduction, C, k in (("tm", 37, 1), ("max", 1, 11)):
        G = reference.REDUCTIONS[reduction]
        weight = torch.randn(G * C * 4, 1, k, k)
        got = srplug.ops.esr_upscale(x, weight, 2, reduction, impl="cpp")
        assert rel_err(got, reference.esr_upscale(x, weight, 2, reduction)) <= 1e-5


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("activation", reference.ACTIVATIONS)
@pytest.mark.parametrize("scale", [2, 3])
def test_pixel_shuffle_parity(scale: int, activation: str, fmt: str) -> None:
    torch.manual_seed(4)
    C = 3
    x = torch.randn(2, C * scale * scale, 7, 11).contiguous(memory_format=FORMATS[fmt])
    bias = torch.randn(C * scale * scale)
    prelu = torch.rand(C)
    got = srplug.ops.pixel_shuffle(
        x, scale, bias, activation, negative_slope=0.1, prelu_weight=prelu, impl="cpp"
    )
    want = reference.pixel_shuffle(x, scale, bias, activation, 0.1, prelu)
    assert got.shape == want.shape
    assert got.is_contiguous(memory_format=FORMATS[fmt])
    assert rel_err(got, want) <= 1e-5


def test_pixel_shuffle_without_bias_and_bf16() -> None:
    torch.manual_seed(5)
    x = torch.randn(2, 8, 5, 3, dtype=torch.bfloat16)
    got = srplug.ops.pixel_shuffle(x, 2, activation="relu", impl="cpp")
    assert torch.equal(got, reference.pixel_shuffle(x, 2, None, "relu"))


def test_pixel_shuffle_gradcheck() -> None:
    torch.manual_seed(6)
    x = torch.randn(2, 8, 3, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(8, dtype=torch.float64, requires_grad=True)
    prelu = torch.rand(2, dtype=torch.float64, requires_grad=True)
    for activation in ("tanh", "prelu", "sigmoid"):

        def f(a, b, p, act=activation):
            return srplug.ops.pixel_shuffle(a, 2, b, act, prelu_weight=p, impl="cpp")

        assert torch.autograd.gradcheck(f, (x, bias, prelu)), activation


def _ca_inputs(C: int = 64, R: int = 4, dtype=torch.float32):
    x = torch.randn(3, C, 9, 13, dtype=dtype)
    params = (
        torch.randn(R, C, 1, 1, dtype=dtype) * 0.2,
        torch.randn(R, dtype=dtype),
        torch.randn(C, R, 1, 1, dtype=dtype) * 0.2,
        torch.randn(C, dtype=dtype),
    )
    return x, params


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize(("C", "R"), [(64, 4), (7, 1)])
def test_channel_attention_parity(C: int, R: int, fmt: str, residual: bool) -> None:
    torch.manual_seed(7)
    x, params = _ca_inputs(C, R)
    x = x.contiguous(memory_format=FORMATS[fmt])
    skip = torch.randn_like(x) if residual else None
    got = srplug.ops.channel_attention(x, *params, skip, impl="cpp")
    want = reference.channel_attention(x, *params, skip)
    assert got.is_contiguous(memory_format=FORMATS[fmt])
    assert rel_err(got, want) <= 1e-5


def test_channel_attention_large_plane_and_bf16() -> None:
    torch.manual_seed(8)
    x, params = _ca_inputs(16, 2)
    x = torch.randn(2, 16, 67, 129).contiguous(memory_format=torch.channels_last)
    got = srplug.ops.channel_attention(x, *params, x, impl="cpp")
    assert rel_err(got, reference.channel_attention(x, *params, x)) <= 1e-5
    xb = x.bfloat16()
    got = srplug.ops.channel_attention(xb, *[p.bfloat16() for p in params], xb, impl="cpp")
    want = reference.channel_attention(xb.float(), *[p.bfloat16().float() for p in params], xb)
    assert got.dtype == torch.bfloat16 and rel_err(got, want) <= 1e-2


def test_channel_attention_gradcheck() -> None:
    torch.manual_seed(9)
    x, params = _ca_inputs(6, 2, dtype=torch.float64)
    x = x[:2, :, :3, :4].clone().requires_grad_()
    params = tuple(p.requires_grad_() for p in params)
    skip = torch.randn_like(x, requires_grad=True)

    def f(*args):
        return srplug.ops.channel_attention(*args, impl="cpp")

    assert torch.autograd.gradcheck(f, (x, *params, skip))
    assert torch.autograd.gradcheck(lambda *a: f(*a, None), (x, *params))


def test_channel_attention_module_keys_and_parity() -> None:
    torch.manual_seed(10)
    module = srplug.ops.ChannelAttention(32, 16, impl="cpp")
    assert list(module.state_dict()) == [
        "conv_du.0.weight",
        "conv_du.0.bias",
        "conv_du.2.weight",
        "conv_du.2.bias",
    ]
    x = torch.randn(2, 32, 5, 6)
    down, up = module.conv_du[0], module.conv_du[2]
    want = reference.channel_attention(x, down.weight, down.bias, up.weight, up.bias, x)
    with torch.no_grad():
        assert rel_err(module(x, residual=x), want) <= 1e-5
    module(x).sum().backward()  # gradients reach the parameters
    assert down.weight.grad is not None and down.weight.grad.abs().sum() > 0


def test_auto_uses_the_kernel_and_ref_the_reference() -> None:
    cpu = torch.device("cpu")
    assert srplug.ops.resolve_impl("auto", cpu) == "ext"
    assert srplug.ops.resolve_impl("cpp", cpu) == "ext"
    assert srplug.ops.resolve_impl("ref", cpu) == "ref"


def test_impl_and_argument_errors() -> None:
    x = torch.randn(1, 1, 4, 4)
    x4 = x.expand(1, 4, 4, 4)
    w = torch.randn(4, 1, 3, 3)
    cases = [
        (lambda: srplug.ops.esr_upscale(x, w, 2, "max", impl="fast"), "impl must be one of"),
        (lambda: srplug.ops.esr_upscale(x, w, 2, "max", impl="cuda"), "CUDA tensors"),
        (lambda: srplug.ops.esr_upscale(x, w, 2, "mean"), "reduction must be one of"),
        (lambda: srplug.ops.esr_upscale(x, w, 3, "max"), "needs a multiple of 1*3*3 = 9"),
        (lambda: srplug.ops.esr_upscale(x, w[:, :, :2], 2, "max"), "odd k"),
        (lambda: srplug.ops.esr_upscale(x.int(), w, 2, "max"), "float32, bfloat16"),
        (lambda: srplug.ops.esr_upscale(x[0], w, 2, "max"), "x must be (N, Cin, h, w)"),
        (lambda: srplug.ops.pixel_shuffle(x4, 2, activation="gelu"), "activation must be"),
        (
            lambda: srplug.ops.pixel_shuffle(x4, 2, activation="prelu"),
            "needs prelu_weight",
        ),
        (lambda: srplug.ops.pixel_shuffle(x, 2), "x must be (N, C*2*2, H, W)"),
        (lambda: srplug.ops.channel_attention(x, w, w[:, 0, 0, 0], w, w), "w_down must be"),
        (
            lambda: srplug.ops.channel_attention(
                x, torch.ones(1, 1), torch.ones(1), torch.ones(1, 1), torch.ones(1), x[:, :, :2]
            ),
            "residual must have the shape",
        ),
    ]
    for call, message in cases:
        with pytest.raises(InputError) as info:
            call()
        assert message in str(info.value)
