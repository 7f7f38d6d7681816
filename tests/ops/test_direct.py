"""The direct convolution for narrow layers (srplug.ops.conv2d_act / Conv2dAct) and its use
by srplug.ops.fuse."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import srplug.ops
from srplug.errors import InputError
from srplug.ops import reference
from tests.ops.conftest import rel_err

pytestmark = pytest.mark.usefixtures("ops_ext", "one_thread")

# (n, c, k, kh, kw, h, w, stride, padding): first layers, 1x1 layers, narrow 3x3 layers,
# more than 64 output channels (two passes), strides, uneven padding, tiny images where every
# pixel is a border pixel, an image smaller than the filter but padded enough
CASES = [
    (1, 1, 64, 5, 5, 37, 29, 1, 2),
    (2, 12, 12, 3, 3, 17, 23, 1, 1),
    (1, 32, 16, 4, 4, 20, 21, 2, (1, 2, 1, 3)),
    (1, 56, 4, 1, 1, 9, 31, 1, 0),
    (1, 3, 70, 3, 3, 11, 7, 1, 1),
    (1, 5, 130, 3, 5, 6, 40, 3, (0, 4, 2, 2)),
    (1, 2, 3, 7, 7, 3, 3, 1, 3),
    (3, 8, 8, 3, 3, 1, 1, 1, 1),
    (1, 16, 33, 9, 9, 40, 45, 1, 4),
]


def _pads(padding) -> tuple[int, int, int, int]:
    return (padding,) * 4 if isinstance(padding, int) else padding


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("activation", ["none", "relu", "prelu"])
@pytest.mark.parametrize(("n", "c", "k", "kh", "kw", "h", "w", "stride", "padding"), CASES)
def test_parity_fp32(n, c, k, kh, kw, h, w, stride, padding, activation, fmt) -> None:
    torch.manual_seed(n + c + k + kh + h + w + stride)
    x = torch.randn(n, c, h, w).contiguous(memory_format=fmt)
    weight = torch.randn(k, c, kh, kw) / (c * kh * kw) ** 0.5
    bias, slopes = torch.randn(k), torch.rand(k)
    got = srplug.ops.conv2d_act(
        x,
        weight,
        bias,
        stride=stride,
        padding=padding,
        activation=activation,
        prelu_weight=slopes,
        impl="cpp",
    )
    want = reference.conv2d_act(
        x.double(), weight.double(), bias.double(), stride, _pads(padding), activation,
        slopes.double(),
    )  # fmt: skip
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert rel_err(got, want) <= 1e-5  # measured <= 5e-7: a direct sum in float32


def test_matches_nn_conv2d_padding_and_single_slope() -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(6, 20, (3, 5), stride=2, padding=(1, 2))
    act = nn.PReLU()  # one slope for every channel
    x = torch.randn(2, 6, 15, 16)
    with torch.no_grad():
        got = srplug.ops.conv2d_act(
            x, conv.weight, conv.bias, stride=2, padding=(1, 2), activation="prelu",
            prelu_weight=act.weight, impl="cpp",
        )  # fmt: skip
        assert rel_err(got, act(conv(x))) <= 1e-5


def test_other_dtypes_are_computed_in_float32() -> None:
    torch.manual_seed(2)
    x, weight, bias = torch.randn(1, 1, 12, 12), torch.randn(48, 1, 5, 5), torch.randn(48)
    got = srplug.ops.conv2d_act(x.bfloat16(), weight.bfloat16(), bias.bfloat16(), padding=2)
    xb, wb, bb = (t.bfloat16().float() for t in (x, weight, bias))
    assert got.dtype == torch.bfloat16
    assert rel_err(got, F.conv2d(xb, wb, bb, padding=2)) <= 1e-2
    x64 = x.double()  # no float64 kernel: the reference keeps the precision
    got64 = srplug.ops.conv2d_act(x64, weight.double(), padding=2, impl="cpp")
    assert got64.dtype == torch.float64
    assert rel_err(got64, F.conv2d(x64, weight.double(), padding=2)) <= 1e-14


def test_gradients_are_the_references() -> None:
    """float32 kernel forward, reference backward: the same gradients as autograd through
    the reference (float64 runs the reference itself, so gradcheck covers the formula)."""
    torch.manual_seed(3)
    tensors = (torch.randn(2, 3, 6, 5), torch.randn(4, 3, 3, 3), torch.randn(4), torch.rand(4))

    def f(impl, x_, w_, b_, a_):
        return srplug.ops.conv2d_act(
            x_, w_, b_, stride=2, padding=(1, 0, 2, 1), activation="prelu", prelu_weight=a_,
            impl=impl,
        )  # fmt: skip

    grad_out = torch.randn_like(f("ref", *tensors))
    grads = {}
    for impl in ("cpp", "ref"):
        args = [t.clone().requires_grad_() for t in tensors]
        f(impl, *args).backward(grad_out)
        grads[impl] = [a.grad for a in args]
    for got, want in zip(grads["cpp"], grads["ref"], strict=True):
        assert rel_err(got, want) <= 1e-5
    args64 = tuple(t.double().requires_grad_() for t in tensors)
    assert torch.autograd.gradcheck(lambda *a: f("cpp", *a), args64)


def test_module_shares_parameters_and_leaves_the_prelu_where_it_is() -> None:
    torch.manual_seed(4)
    block = nn.Sequential(nn.Conv2d(1, 48, 5, padding=2), nn.PReLU(48))
    keys = list(block.state_dict())
    fast = srplug.ops.Conv2dAct.from_conv(block[0], block[1], impl="cpp")
    assert fast.weight is block[0].weight and fast.bias is block[0].bias
    assert list(fast.state_dict()) == ["weight", "bias"]  # the PReLU is not registered here
    assert fast.prelu is block[1]
    x = torch.randn(2, 1, 11, 9)
    with torch.no_grad():
        want = block(x)
        assert rel_err(fast(x), want) <= 1e-5
        block[1].weight.mul_(-1)  # the slopes are read at every call
        assert rel_err(fast(x), block(x)) <= 1e-5
    block[0] = fast  # the PReLU stays at index 1 (its owner stops applying it)
    assert list(block.state_dict()) == keys
    fast(x).sum().backward()
    assert fast.weight.grad is not None and fast.weight.grad.abs().sum() > 0
    assert not srplug.ops.Conv2dAct.eligible(nn.Conv2d(4, 4, 3, dilation=2))
    assert not srplug.ops.Conv2dAct.eligible(nn.Conv2d(4, 4, 3, groups=2))
    assert not srplug.ops.Conv2dAct.eligible(nn.Conv2d(4, 4, 3, padding="same"))
    with pytest.raises(InputError, match="dilation 1, groups 1"):
        srplug.ops.Conv2dAct.from_conv(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(InputError, match="only nn.ReLU or nn.PReLU"):
        srplug.ops.Conv2dAct.from_conv(nn.Conv2d(4, 4, 3), nn.Tanh())


def test_worth_it_picks_first_layers_from_the_y_plane() -> None:
    worth = srplug.ops.Conv2dAct.worth_it
    assert worth(nn.Conv2d(1, 64, 5, padding=2)) and worth(nn.Conv2d(1, 56, 9, padding=4))
    assert not worth(nn.Conv2d(3, 64, 3, padding=1))  # oneDNN is faster from RGB
    assert not worth(nn.Conv2d(1, 16, 5, padding=2))  # too few outputs to gain
    assert not worth(nn.Conv2d(12, 56, 1)) and not worth(nn.Conv2d(56, 12, 1))
    assert not worth(nn.Conv2d(12, 12, 3, padding=1))
    assert not worth(nn.Conv2d(1, 64, 5, dilation=2))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(1, 64, 5, padding=2), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU())
        self.tail = nn.Conv2d(64, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))


def test_fuse_uses_the_direct_kernel_where_it_wins() -> None:
    torch.manual_seed(5)
    eager = _Net().eval()
    fused = srplug.ops.fuse(copy.deepcopy(eager), impl="cpp")
    assert isinstance(fused.head[0], srplug.ops.Conv2dAct) and fused.head[0].activation == "relu"
    assert isinstance(fused.head[1], nn.Identity)
    assert isinstance(fused.body[0], srplug.ops.Conv3x3)
    assert type(fused.tail) is nn.Conv2d
    assert list(fused.state_dict()) == list(eager.state_dict())
    x = torch.rand(2, 1, 19, 13)
    with torch.no_grad():
        assert rel_err(fused(x), eager(x)) <= 1e-5
    again = srplug.ops.fuse(copy.deepcopy(fused), impl="cpp")
    assert [type(m) for m in again.modules()] == [type(m) for m in fused.modules()]


def test_fsrcnn_fuses_its_prelus_and_keeps_its_keys() -> None:
    from srplug_fsrcnn.model import FSRCNN

    torch.manual_seed(6)
    eager = FSRCNN(scale=3).eval()
    fused = srplug.ops.fuse(copy.deepcopy(eager), impl="cpp")
    assert fused.extract.act_fused and isinstance(fused.extract.conv, srplug.ops.Conv2dAct)
    assert fused.extract.conv.activation == "prelu"
    assert not fused.shrink.act_fused and not fused.expand.act_fused  # 1x1 layers: oneDNN
    assert list(fused.state_dict()) == list(eager.state_dict())
    x = torch.rand(2, 1, 14, 17)
    with torch.no_grad():
        assert rel_err(fused(x), eager(x)) <= 1e-5
        fused.extract.act.weight.fill_(0.5)  # the fused PReLU still owns its slopes
        eager.extract.act.weight.fill_(0.5)
        assert rel_err(fused(x), eager(x)) <= 1e-5


def test_argument_errors() -> None:
    x, weight = torch.randn(1, 4, 5, 5), torch.randn(6, 4, 3, 3)
    cases = [
        (lambda: srplug.ops.conv2d_act(x, weight[:, :3]), r"weight must be \(K, 4, kh, kw\)"),
        (lambda: srplug.ops.conv2d_act(x[0], weight), r"x must be \(N, C, H, W\)"),
        (lambda: srplug.ops.conv2d_act(x, weight, torch.zeros(2)), "one value per filter"),
        (lambda: srplug.ops.conv2d_act(x, weight, stride=0), "stride must be"),
        (lambda: srplug.ops.conv2d_act(x, weight, padding=-1), "padding must be"),
        (lambda: srplug.ops.conv2d_act(x, weight, padding=(1, 2, 3)), "padding must be"),
        (lambda: srplug.ops.conv2d_act(x[:, :, :1, :1], weight), "smaller than the 3x3"),
        (lambda: srplug.ops.conv2d_act(x, weight, activation="tanh"), "activation must be"),
        (lambda: srplug.ops.conv2d_act(x, weight, activation="prelu"), "needs prelu_weight"),
        (
            lambda: srplug.ops.conv2d_act(
                x, weight, activation="prelu", prelu_weight=torch.ones(2)
            ),
            "1 or 6 slopes",
        ),
        (lambda: srplug.ops.conv2d_act(x, weight, impl="fast"), "impl must be one of"),
        (lambda: srplug.ops.conv2d_act(x.int(), weight), "float32, bfloat16"),
        (lambda: srplug.ops.Conv2dAct(4, 6, 3, activation="gelu"), "activation must be"),
        (lambda: srplug.ops.Conv2dAct(4, 6, 3, activation="prelu"), "exactly when"),
    ]
    for call, message in cases:
        with pytest.raises(InputError, match=message):
            call()
    assert srplug.ops.conv2d_act(x[:0], weight, impl="cpp").shape == (0, 6, 3, 3)


def test_srcnn_fuses_its_relus_and_keeps_its_keys() -> None:
    from srplug_srcnn.model import SRCNN

    torch.manual_seed(7)
    for mode, fused_expected in (("zeros", True), ("reflect", False)):
        eager = SRCNN(scale=2, f2=5, padding_mode=mode).eval()
        fused = srplug.ops.fuse(copy.deepcopy(eager), impl="cpp")
        assert fused.relu_fused is fused_expected
        assert isinstance(fused.conv1, srplug.ops.Conv2dAct) is fused_expected
        assert list(fused.state_dict()) == list(eager.state_dict())
        x = torch.rand(1, 1, 12, 15)
        with torch.no_grad():
            assert rel_err(fused(x), eager(x)) <= 1e-5
