"""ONNX export: dynamic height/width, parity in onnxruntime, OpenCV dnn, the CLI command."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import srplug
from srplug.cli import main
from srplug.export import ExportError, to_onnx
from tests.helpers.torch_utils import one_thread

pytest.importorskip("onnx", reason="ONNX export needs the onnx package (pip install onnx)")
pytest.importorskip("onnxscript", reason="torch's dynamo ONNX exporter needs onnxscript")
ort = pytest.importorskip("onnxruntime", reason="the parity checks run in onnxruntime")


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_espcn_exports_with_dynamic_size_and_matches(tmp_path):
    torch.manual_seed(0)
    up = srplug.get("espcn", scale=3, weights=None)
    report = to_onnx(up, tmp_path / "espcn.onnx")
    assert report.opset >= 17 and report.channels == 1 and report.scale == 3
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4
    assert all(h % 2 and w % 2 for _, _, h, w in report.checked_shapes)  # odd sizes
    x = np.random.default_rng(0).random((3, 1, 13, 7), dtype=np.float32)
    got = run_onnx(report.path, x)
    with torch.inference_mode():
        expected = up.model(torch.from_numpy(x).contiguous()).numpy()
    assert got.shape == (3, 1, 39, 21) and np.abs(got - expected).max() <= 1e-4


@pytest.mark.slow  # one export per model, ~5 s each
@pytest.mark.parametrize(
    "name,scale,options",
    [
        ("espcn", 2, {}),
        ("fsrcnn", 3, {}),
        ("esr-max", 4, {}),
        ("esr-tm", 2, {}),
        ("esr-tr", 3, {}),
        ("esr-cnn", 2, {}),
        ("srcnn", 3, {}),
        ("bicubic", 4, {}),
        ("edsr-baseline", 4, {"blocks": 2, "features": 16}),
        ("rcan", 2, {"n_resgroups": 1, "n_resblocks": 2, "n_feats": 16, "reduction": 4}),
        ("san", 2, {"n_resgroups": 1, "n_resblocks": 2, "n_feats": 16, "reduction": 4}),
    ],
)
def test_plugin_models_export_within_1e_4(tmp_path, name, scale, options):
    if name not in srplug.list():
        pytest.skip(f"model {name!r} is not registered (its plugin is not installed)")
    report = to_onnx(name, tmp_path / "m.onnx", scale=scale, weights=None, **options)
    assert report.max_abs_diff <= 1e-4


@pytest.mark.parametrize("name,scale", [("espcn", 3), ("fsrcnn", 2)])
def test_opencv_dnn_runs_the_export(tmp_path, name, scale):
    cv2 = pytest.importorskip("cv2", reason="OpenCV is needed for its dnn module")
    torch.manual_seed(1)
    up = srplug.get(name, scale=scale, weights=None)
    report = to_onnx(up, tmp_path / f"{name}.onnx", check=False)
    net = cv2.dnn.readNetFromONNX(str(report.path))
    for h, w in ((17, 23), (9, 31)):
        x = np.random.default_rng(h).random((1, 1, h, w), dtype=np.float32)
        net.setInput(x)
        got = net.forward()
        with torch.inference_mode():
            expected = up.model(torch.from_numpy(x).contiguous()).numpy()
        assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_exportable_bicubic_equals_imresize(scale):
    from srplug.export import bicubic_upscale
    from srplug.resize import imresize

    x = torch.rand(2, 3, 9, 14, dtype=torch.float64)
    assert (bicubic_upscale(x, scale) - imresize(x, float(scale))).abs().max() < 1e-12


def test_export_errors(tmp_path):
    with pytest.raises(srplug.InputError, match="opset >= 17"):
        to_onnx("espcn", tmp_path / "x.onnx", opset=13, weights=None)
    up = srplug.get("espcn", scale=2, weights=None)
    with pytest.raises(srplug.InputError, match="x2"):
        to_onnx(up, tmp_path / "x.onnx", scale=4)

    class Broken(torch.nn.Module):
        def forward(self, x):
            if float(x.sum()) > 0:  # data-dependent control flow cannot be exported
                return torch.nn.functional.interpolate(x, scale_factor=2.0)
            return x

    from srplug.upsampler import ModuleUpsampler

    with pytest.raises(ExportError, match="export failed for 'broken'"):
        to_onnx(ModuleUpsampler(Broken(), name="broken", scale=2), tmp_path / "b.onnx")


def test_export_command(capsys, tmp_path):
    target = tmp_path / "out" / "espcn_x2.onnx"
    code = main(["export", "espcn", "--scale", "2", "-w", "none", "-o", str(target)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert target.is_file() and "opset 18" in out and "max |diff|" in out
