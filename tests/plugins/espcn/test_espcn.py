"""The espcn plugin: sizes, an independent forward, OpenCV dnn_superres's ESPCN graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from srplug_espcn.convert import convert_state_dict, dcr_to_crd

import srplug
from srplug.datasets import BenchmarkDataset
from srplug.errors import InputError, WeightsError
from srplug.evaluation import evaluate
from srplug.weights import save_safetensors
from tests.formats.reference import conv2d_same, depth_to_space, run_tf_graph, third_party

SCALES = (2, 3, 4)
ACTS = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0), "none": lambda v: v}


def n_params(scale: int, n1: int = 64, n2: int = 32, f1: int = 5, f2: int = 3, f3: int = 3) -> int:
    return (f1 * f1 + 1) * n1 + (f2 * f2 * n1 + 1) * n2 + (f3 * f3 * n2 + 1) * scale * scale


def pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    """torch's CRD pixel shuffle by explicit indexing: ``out[n, c, i*r + di, j*r + dj] =
    x[n, c*r*r + di*r + dj, i, j]``."""
    n, channels, h, w = x.shape
    c_out = channels // (r * r)
    out = np.empty((n, c_out, h * r, w * r), dtype=x.dtype)
    for c in range(c_out):
        for di in range(r):
            for dj in range(r):
                out[:, c, di::r, dj::r] = x[:, c * r * r + di * r + dj]
    return out


def reference_forward(model: torch.nn.Module, x: np.ndarray, act: str, out_act: str) -> np.ndarray:
    """ESPCN in float64 numpy on ``(N, 1, h, w)`` with the model's tensors."""
    y = x.transpose(0, 2, 3, 1)
    convs = (model.conv1, model.conv2, model.conv3)
    for i, conv in enumerate(convs):
        kernel = conv.weight.detach().double().numpy().transpose(2, 3, 1, 0)
        y = conv2d_same(y, kernel) + conv.bias.detach().double().numpy()
        if i < 2:
            y = ACTS[act](y)
    return ACTS[out_act](pixel_shuffle(y.transpose(0, 3, 1, 2), model.scale))


def run_model(up: srplug.Upsampler, x: torch.Tensor) -> np.ndarray:
    model = up.model.float().to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        return model(x).double().numpy()


@pytest.mark.parametrize("scale,expected", [(2, 21284), (3, 22729), (4, 24752)])
def test_parameter_count(scale: int, expected: int) -> None:
    model = srplug.get("espcn", scale=scale, weights=None).model
    count = sum(p.numel() for p in model.parameters())
    assert count == n_params(scale) == expected  # ~25K at x4, as in SPEC.md


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("act,out_act", [("tanh", "none"), ("relu", "tanh")])
def test_shapes_and_independent_forward(scale: int, act: str, out_act: str) -> None:
    torch.manual_seed(scale)
    up = srplug.get("espcn", scale=scale, weights=None, n1=8, n2=6, act=act, out_act=out_act)
    x = torch.rand(2, 1, 7, 5)
    out = run_model(up, x)
    assert out.shape == (2, 1, 7 * scale, 5 * scale)
    expected = reference_forward(up.model, x.double().numpy(), act, out_act)
    assert np.abs(out - expected).max() < 1e-5


def test_options_are_checked() -> None:
    with pytest.raises(InputError, match="act must be one of"):
        srplug.get("espcn", weights=None, act="gelu")
    with pytest.raises(InputError, match="f2 must be odd"):
        srplug.get("espcn", weights=None, f2=4)


@pytest.mark.parametrize("c_out,scale", [(1, 3), (3, 2), (2, 4)])
def test_dcr_to_crd_turns_depth_to_space_into_pixel_shuffle(c_out: int, scale: int) -> None:
    x = np.random.default_rng(c_out).random((1, c_out * scale * scale, 3, 4))
    tf = depth_to_space(x.transpose(0, 2, 3, 1), scale).transpose(0, 3, 1, 2)
    order = dcr_to_crd(x.shape[1], scale).numpy()
    assert np.array_equal(pixel_shuffle(x[:, order], scale), tf)
    if c_out == 1:
        assert order.tolist() == list(range(scale * scale))  # one channel: same order


def test_own_weights_round_trip(tmp_path: Path) -> None:
    up = srplug.get("espcn", scale=3, weights=None, n1=16, n2=8, f1=3)
    path = save_safetensors(up.model.state_dict(), tmp_path / "espcn.safetensors")
    again = srplug.get("espcn", scale=3, weights=path)  # n1, n2, f1 and the scale from shapes
    x = torch.rand(1, 1, 6, 5)
    assert np.array_equal(run_model(up, x), run_model(again, x))
    with pytest.raises(WeightsError, match=r"is for x3, not x4"):
        srplug.get("espcn", scale=4, weights=path)


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(WeightsError, match="not an ESPCN checkpoint"):
        convert_state_dict({"first_part.0.weight": torch.zeros(56, 1, 5, 5)})


# ------------------------------------------------------------------ OpenCV dnn_superres graphs


@pytest.mark.parametrize("scale", SCALES)
def test_opencv_graph_is_reproduced(scale: int) -> None:
    path = third_party("opencv_dnn_superres", f"ESPCN_x{scale}.pb")
    up = srplug.get("espcn", scale=scale, weights=path)
    model = up.model
    assert isinstance(model.act, torch.nn.ReLU) and isinstance(model.out_act, torch.nn.Tanh)
    assert sum(p.numel() for p in model.parameters()) == n_params(scale)
    x = np.random.default_rng(scale).random((2, 10, 7, 1))
    expected = run_tf_graph(path, x)
    got = run_model(up, torch.from_numpy(x.transpose(0, 3, 1, 2)).float())
    assert got.shape == expected.shape == (2, 1, 10 * scale, 7 * scale)
    assert np.abs(got - expected).max() < 1e-5


def test_opencv_wrong_scale_or_family_is_a_weights_error() -> None:
    path = third_party("opencv_dnn_superres", "ESPCN_x3.pb")
    assert srplug.get("espcn", weights=path).scale == 3
    with pytest.raises(WeightsError, match=r"is for x3, not x2: pass scale=3"):
        srplug.get("espcn", scale=2, weights=path)
    with pytest.raises(WeightsError, match="fsrcnn"):
        srplug.get("espcn", weights=third_party("opencv_dnn_superres", "FSRCNN_x2.pb"))
    with pytest.raises(WeightsError, match="not an ESPCN checkpoint"):
        srplug.get("espcn", weights=third_party("fsrcnn_yjn870", "fsrcnn_x2.pth"))


@pytest.mark.data
def test_opencv_x2_set5_is_plausible(data_root: Path) -> None:
    """Measured 34.73 dB, ~1 dB over bicubic: the graph was trained on another degradation
    (OpenCV INTER_CUBIC LR, full-range Y), so it is below the paper's numbers here."""
    up = srplug.get("espcn", weights=third_party("opencv_dnn_superres", "ESPCN_x2.pb"))
    result = evaluate(up, BenchmarkDataset("Set5", 2, data_root=data_root))
    assert result.psnr >= 34.65
