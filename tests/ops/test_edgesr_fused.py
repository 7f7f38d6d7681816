"""The edge-SR networks routed through the fused kernel (``impl=``) give the same images."""

from __future__ import annotations

import pytest
import torch
from srplug_edgesr import EdgeSRCNN, EdgeSRMax, EdgeSRTM, EdgeSRTR

from srplug.errors import InputError
from tests.ops.conftest import rel_err

NETS = {"max": EdgeSRMax, "tm": EdgeSRTM, "tr": EdgeSRTR, "cnn": EdgeSRCNN}


@pytest.mark.usefixtures("ops_ext", "one_thread")
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("family", list(NETS))
def test_fused_forward_equals_default(family: str, scale: int) -> None:
    torch.manual_seed(scale)
    net = NETS[family](scale=scale).eval()
    x = torch.rand(2, 1, 11, 29)
    with torch.no_grad():
        want = net(x)
        net.impl = "cpp"
        got = net(x)
    assert got.shape == want.shape == (2, 1, 11 * scale, 29 * scale)
    assert rel_err(got, want) <= 1e-5


@pytest.mark.usefixtures("ops_ext")
def test_fused_forward_trains() -> None:
    torch.manual_seed(0)
    ref = EdgeSRTR(scale=2, k=5, C=3)
    fused = EdgeSRTR(scale=2, k=5, C=3, impl="cpp")
    fused.load_state_dict(ref.state_dict())
    x = torch.rand(2, 1, 6, 7)
    ref(x).square().mean().backward()
    fused(x).square().mean().backward()
    assert fused.filter.weight.grad is not None
    assert rel_err(fused.filter.weight.grad, ref.filter.weight.grad) <= 1e-5


def test_default_impl_is_the_pytorch_path_and_bad_impl_is_refused() -> None:
    assert EdgeSRMax().impl == "ref" and EdgeSRCNN().impl == "ref"
    with pytest.raises(InputError, match="impl must be one of"):
        EdgeSRTM(impl="fast")
