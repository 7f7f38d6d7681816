"""srplug.adapters.opencv fast paths: luma networks straight to uint8, the YCrCb split/merge."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from srplug.adapters import opencv as ocv
from srplug_espcn.model import ESPCN
from srplug_fsrcnn.model import FSRCNN

import srplug
from tests.adapters.test_opencv import graph, smooth_bgr


def reference_uint8(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """The plain model forward, then OpenCV's convertTo(CV_8U, 255)."""
    with torch.inference_mode():
        return ocv._to_uint8(model.eval()(x)[0, 0].numpy())


def assert_close_uint8(got: torch.Tensor, expected: np.ndarray) -> None:
    """Equal up to float rounding: a rounding tie may land one level apart, rarely."""
    assert got.dtype == torch.uint8 and tuple(got.shape) == expected.shape
    diff = np.abs(got.numpy().astype(int) - expected)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


@pytest.mark.parametrize(
    "name,family,fast",
    [
        ("ESPCN_x2", "espcn", ocv._FastESPCN),
        ("ESPCN_x3", "espcn", ocv._FastESPCN),
        ("ESPCN_x4", "espcn", ocv._FastESPCN),
        ("FSRCNN_x2", "fsrcnn", ocv._FastFSRCNN),
        ("FSRCNN_x3", "fsrcnn", ocv._FastFSRCNN),
        ("FSRCNN-small_x4", "fsrcnn-small", ocv._FastFSRCNN),
    ],
)
@pytest.mark.parametrize("size", [(12, 10), (7, 9)])  # even, and odd (ESPCN x2's padding)
def test_fast_paths_equal_the_model_on_opencv_graphs(name, family, fast, size):
    model = srplug.get(family, weights=graph(name)).model
    net = ocv.luma_network(model)
    assert isinstance(net, fast)
    x = torch.from_numpy(smooth_bgr(*size, seed=1)[:, :, 1].astype(np.float32) / 255)[None, None]
    with torch.inference_mode():
        assert_close_uint8(net(x), reference_uint8(model, x))


@pytest.mark.parametrize("scale", [2, 3])
def test_fast_paths_cover_paper_variants(scale):
    """The paper's ESPCN (tanh, no output activation) and an FSRCNN with a real 9x9
    transposed convolution (not OpenCV's 1x1 one), randomly initialised."""
    torch.manual_seed(scale)
    espcn = ESPCN(scale)
    fsrcnn = FSRCNN(scale, d=8, s=4, m=2)
    torch.nn.init.normal_(fsrcnn.deconv.weight, std=0.05)
    x = torch.rand(1, 1, 9, 8)
    for model, fast in ((espcn, ocv._FastESPCN), (fsrcnn, ocv._FastFSRCNN)):
        net = ocv.luma_network(model)
        assert isinstance(net, fast)
        with torch.inference_mode():
            assert_close_uint8(net(x), reference_uint8(model, x))


def test_other_models_run_through_the_generic_wrapper():
    model = ocv.LapSRN.from_graph(graph("LapSRN_x2"))
    net = ocv.luma_network(model)
    assert isinstance(net, ocv._LumaNet) and net.net is model  # LapSRN runs as it is
    x = torch.rand(1, 1, 6, 5)
    with torch.inference_mode():
        assert torch.equal(net(x), torch.from_numpy(reference_uint8(model, x)))
    srcnn = srplug.get("srcnn", weights=None).model
    assert isinstance(ocv.luma_network(srcnn), ocv._LumaNet)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_split_and_merge_equal_preprocess_and_reconstruct(dtype):
    img = smooth_bgr(11, 14, seed=5).astype(dtype)
    y, planes = ocv.opencv_preprocess(img)
    y2, chroma = ocv._split_ycrcb(img)
    assert planes is not None and chroma is not None
    assert np.array_equal(y, y2)
    assert all(np.array_equal(planes[:, :, i + 1], chroma[i]) for i in range(2))
    out = np.random.default_rng(0).uniform(-0.05, 1.05, (33, 42)).astype(np.float32)
    expected = ocv.opencv_reconstruct(out, planes, 3)
    assert np.array_equal(ocv._merge_ycrcb(ocv._to_uint8(out), chroma, 3), expected)
    gray_y, none = ocv._split_ycrcb(img[:, :, 0])
    assert none is None and np.array_equal(gray_y, ocv.opencv_preprocess(img[:, :, 0])[0])


def test_gray_and_colour_upsample_use_the_fast_path():
    sr = ocv.DnnSuperResImpl_create()
    sr.readModel(graph("ESPCN_x2"))
    sr.setModel("espcn", 2)
    assert isinstance(sr._luma, ocv._FastESPCN)
    img = smooth_bgr(9, 11, seed=2)
    y, planes = ocv.opencv_preprocess(img)
    model = sr.upsampler.model
    with torch.inference_mode():
        y_out = model(torch.from_numpy(y)[None, None])[0, 0].numpy()
    diff = np.abs(sr.upsample(img).astype(int) - ocv.opencv_reconstruct(y_out, planes, 2))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    gray = sr.upsample(img[:, :, 1])
    assert gray.shape == (18, 22) and gray.dtype == np.uint8
