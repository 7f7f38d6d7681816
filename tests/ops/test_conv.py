"""The Winograd 3x3 convolution (srplug.ops.conv3x3 / Conv3x3) and srplug.ops.fuse."""

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

FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def _inputs(n: int, c: int, k: int, h: int, w: int, dtype: torch.dtype = torch.float32):
    x = torch.randn(n, c, h, w, dtype=dtype)
    weight = torch.randn(k, c, 3, 3, dtype=dtype) / (9 * c) ** 0.5
    return x, weight, torch.randn(k, dtype=dtype), torch.randn(n, k, h, w, dtype=dtype)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize(
    ("n", "c", "k", "h", "w"),
    [(2, 64, 64, 13, 11), (1, 3, 5, 1, 1), (3, 17, 40, 9, 30), (1, 64, 256, 6, 5)],
)
@pytest.mark.parametrize(("activation", "with_bias", "with_res"), [
    ("none", False, False), ("relu", True, False), ("relu", True, True), ("none", True, True),
])  # fmt: skip
def test_parity_fp32(n, c, k, h, w, fmt, activation, with_bias, with_res) -> None:
    torch.manual_seed(n * 1000 + c + k + h + w)
    x, weight, bias, res = _inputs(n, c, k, h, w)
    x = x.contiguous(memory_format=FORMATS[fmt])
    bias = bias if with_bias else None
    res = res if with_res else None
    got = srplug.ops.conv3x3(x, weight, bias, activation=activation, residual=res, impl="cpp")
    want = reference.conv3x3(
        x.double(),
        weight.double(),
        None if bias is None else bias.double(),
        activation,
        None if res is None else res.double(),
    )
    assert got.dtype == torch.float32 and got.shape == (n, k, h, w)
    assert got.is_contiguous(memory_format=FORMATS[fmt]) or c == 1
    # Winograd F(4, 3) in float32: a few 1e-6 of the output's range (direct conv: ~5e-7)
    assert rel_err(got, want) <= 1e-5


def test_float64_is_exact_and_chunks_do_not_matter() -> None:
    torch.manual_seed(1)
    x, weight, bias, res = _inputs(2, 16, 24, 23, 19, torch.float64)
    want = reference.conv3x3(x, weight, bias, "relu", res)
    for chunk in (0, 1, 7, 64, 10_000):
        got = srplug.ops.conv3x3(
            x, weight, bias, activation="relu", residual=res, impl="cpp", chunk=chunk
        )
        assert rel_err(got, want) <= 1e-12, chunk


def test_bf16_is_computed_in_float32() -> None:
    torch.manual_seed(2)
    x, weight, bias, _ = _inputs(1, 32, 32, 10, 10)
    got = srplug.ops.conv3x3(x.bfloat16(), weight.bfloat16(), bias.bfloat16(), impl="cpp")
    xb, wb, bb = (t.bfloat16().float() for t in (x, weight, bias))
    want = F.conv2d(xb, wb, bb, padding=1)
    assert got.dtype == torch.bfloat16 and rel_err(got, want) <= 1e-2


def test_gradcheck_float64() -> None:
    torch.manual_seed(3)
    x, weight, bias, res = _inputs(2, 3, 4, 5, 6, torch.float64)
    args = tuple(t.requires_grad_() for t in (x, weight, bias, res))

    def f(x_, w_, b_, r_):
        return srplug.ops.conv3x3(x_, w_, b_, activation="relu", residual=r_, impl="cpp")

    assert torch.autograd.gradcheck(f, args)


def test_module_shares_parameters_and_refreshes_its_filters() -> None:
    torch.manual_seed(4)
    conv = nn.Conv2d(16, 16, 3, padding=1)
    fast = srplug.ops.Conv3x3.from_conv(conv, activation="relu", impl="cpp")
    assert fast.weight is conv.weight and fast.bias is conv.bias
    assert list(fast.state_dict()) == ["weight", "bias"]
    x = torch.randn(2, 16, 9, 7)
    with torch.no_grad():
        assert rel_err(fast(x), F.relu(conv(x))) <= 1e-5
        conv.weight.mul_(-2)  # in place: the cached filters must follow
        assert rel_err(fast(x), F.relu(conv(x))) <= 1e-5
    fast(x, residual=x).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    assert not srplug.ops.Conv3x3.eligible(nn.Conv2d(16, 16, 3, padding=1, stride=2))
    assert not srplug.ops.Conv3x3.eligible(nn.Conv2d(16, 16, 5, padding=2))
    with pytest.raises(InputError, match="kernel 3, stride 1"):
        srplug.ops.Conv3x3.from_conv(nn.Conv2d(16, 16, 3, padding=0))


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1)
        )
        self.head = nn.Conv2d(3, 32, 3, padding=1)  # too narrow: stays direct
        self.tail = nn.Conv2d(32, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.tail(self.body(h) + h)


def test_fuse_rewrites_convolutions_and_keeps_the_state_dict() -> None:
    torch.manual_seed(5)
    eager = _Block().eval()
    fused = srplug.ops.fuse(copy.deepcopy(eager), impl="cpp")
    assert isinstance(fused.body[0], srplug.ops.Conv3x3) and fused.body[0].activation == "relu"
    assert isinstance(fused.body[1], nn.Identity)
    assert isinstance(fused.body[2], srplug.ops.Conv3x3) and fused.body[2].activation == "none"
    assert type(fused.head) is nn.Conv2d and type(fused.tail) is nn.Conv2d
    assert list(fused.state_dict()) == list(eager.state_dict())
    x = torch.rand(2, 3, 17, 12)
    with torch.no_grad():
        assert rel_err(fused(x), eager(x)) <= 1e-5
    fused.load_state_dict(eager.state_dict())  # loading after fusing still works
    again = srplug.ops.fuse(copy.deepcopy(fused), impl="cpp")  # idempotent
    assert [type(m) for m in again.modules()] == [type(m) for m in fused.modules()]
    with torch.no_grad():
        assert torch.equal(again(x), fused(x))


def test_fuse_runs_the_rcan_hooks() -> None:
    from srplug_rcan import RCAN

    torch.manual_seed(6)
    eager = RCAN(scale=2, n_resgroups=2, n_resblocks=2, n_feats=32, reduction=16).eval()
    fused = srplug.ops.fuse(copy.deepcopy(eager), impl="cpp")
    group = fused.body[0]
    assert group.skip_fused and isinstance(group.body[-1], srplug.ops.Conv3x3)
    block = group.body[0]
    assert block.skip_fused and isinstance(block.body[3], srplug.ops.ChannelAttention)
    assert list(fused.state_dict()) == list(eager.state_dict())
    x = torch.rand(1, 3, 11, 14)
    with torch.no_grad():
        assert rel_err(fused(x), eager(x)) <= 1e-5


def test_argument_errors() -> None:
    x, weight, bias, _ = _inputs(1, 4, 6, 5, 5)
    cases = [
        (lambda: srplug.ops.conv3x3(x, weight[:, :, :2]), r"weight must be \(K, 4, 3, 3\)"),
        (lambda: srplug.ops.conv3x3(x, weight[:, :3]), r"weight must be \(K, 4, 3, 3\)"),
        (lambda: srplug.ops.conv3x3(x, weight, bias[:2]), "one value per filter"),
        (lambda: srplug.ops.conv3x3(x, weight, activation="gelu"), "activation must be"),
        (lambda: srplug.ops.conv3x3(x, weight, residual=x), "residual must have"),
        (lambda: srplug.ops.conv3x3(x, weight, impl="fast"), "impl must be one of"),
        (lambda: srplug.ops.conv3x3(x, weight, chunk=-1), "chunk must be"),
        (lambda: srplug.ops.conv3x3(x.int(), weight), "float32, bfloat16"),
        (lambda: srplug.ops.conv3x3(x, weight, filters=torch.zeros(36, 4, 5)), "filters must"),
        (lambda: srplug.ops.fuse(nn.Conv2d(1, 1, 1), impl="fast"), "impl must be one of"),
    ]
    for call, message in cases:
        with pytest.raises(InputError, match=message):
            call()
    assert srplug.ops.conv3x3(x[:0], weight, impl="cpp").shape == (0, 6, 5, 5)


def test_fused_upsamplers_export_to_onnx(tmp_path) -> None:
    """Tracing (torch.export, ONNX) sees the references, so fused upsamplers export as is."""
    pytest.importorskip("onnxruntime", reason="the 'test' extra installs onnxruntime")
    from srplug.export import to_onnx

    torch.manual_seed(7)
    up = srplug.get("rcan", scale=2, weights=None, n_resgroups=1, n_resblocks=2, n_feats=16)
    assert up.kernels_report.startswith("fused"), up.kernels_report
    report = to_onnx(up, tmp_path / "rcan.onnx")
    assert report.max_abs_diff <= 1e-4


def test_fuse_runs_the_edsr_hooks() -> None:
    from srplug_edsr.model import ResBlock

    torch.manual_seed(8)
    for res_scale in (1.0, 0.1):
        eager = ResBlock(24, res_scale=res_scale).eval()
        fused = srplug.ops.fuse(copy.deepcopy(eager), impl="cpp")
        assert fused.fused and fused.conv1.activation == "relu"
        assert list(fused.state_dict()) == list(eager.state_dict())
        x = torch.randn(2, 24, 7, 9)
        with torch.no_grad():
            assert rel_err(fused(x), eager(x)) <= 1e-5, res_scale


def test_autocast_runs_the_reference_and_trains() -> None:
    """Under autocast (the trainer's bf16 mode) the fused layers run their references, so a
    bf16 forward and backward work as for nn.Conv2d."""
    torch.manual_seed(9)
    conv = nn.Conv2d(16, 16, 3, padding=1)
    fast = srplug.ops.Conv3x3.from_conv(copy.deepcopy(conv), activation="relu", impl="cpp")
    x = torch.randn(2, 16, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, want = fast(x), F.relu(conv(x))
    assert got.dtype == want.dtype == torch.bfloat16 and torch.equal(got, want)
    got.float().sum().backward()
    want.float().sum().backward()
    assert torch.equal(fast.weight.grad, conv.weight.grad)
