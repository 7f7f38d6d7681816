"""srplug.adapters.opencv: the cv2.dnn_superres drop-in, OpenCV's .pb graphs, its pipeline."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from srplug.adapters import opencv as ocv
from torch import nn

import srplug
from srplug.errors import InputError, WeightsError
from srplug.weights import save_safetensors
from tests.formats.reference import graph_values, third_party

GRAPHS = [
    *((f"ESPCN_x{s}", "espcn", "espcn", s) for s in (2, 3, 4)),
    *((f"FSRCNN_x{s}", "fsrcnn", "fsrcnn", s) for s in (2, 3, 4)),
    *((f"FSRCNN-small_x{s}", "fsrcnn", "fsrcnn-small", s) for s in (2, 3, 4)),
    *((f"LapSRN_x{s}", "lapsrn", "lapsrn", s) for s in (2, 4, 8)),
]


def graph(name: str) -> Path:
    return third_party("opencv_dnn_superres", f"{name}.pb")


def smooth_bgr(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A uint8 BGR test image with edges and gradients (and saturated corners)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 3 + 2, w // 3 + 2, 3), dtype=np.uint8)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    img[0, 0], img[-1, -1] = 0, 255
    return img


# ------------------------------------------------------------------- existing OpenCV code


EXISTING_OPENCV_CODE = """
import cv2
from cv2 import dnn_superres


def enlarge(image_path, model_path, out_path):
    sr = dnn_superres.DnnSuperResImpl_create()
    sr.readModel(model_path)
    sr.setModel("espcn", 2)
    image = cv2.imread(image_path)
    result = sr.upsample(image)
    cv2.imwrite(out_path, result)
    return result
"""


@pytest.mark.parametrize(
    "new_import",
    [
        "from srplug.adapters.opencv import dnn_superres",
        "from srplug.adapters import opencv as dnn_superres",
    ],
)
def test_existing_opencv_code_works_after_changing_one_import_line(tmp_path, new_import):
    ported = EXISTING_OPENCV_CODE.replace("from cv2 import dnn_superres", new_import)
    changed = [
        (old, new)
        for old, new in zip(EXISTING_OPENCV_CODE.splitlines(), ported.splitlines(), strict=True)
        if old != new
    ]
    assert changed == [("from cv2 import dnn_superres", new_import)]
    image = smooth_bgr(21, 30)
    cv2.imwrite(str(tmp_path / "in.png"), image)
    namespace: dict = {}
    exec(compile(ported, "existing_code.py", "exec"), namespace)
    model = str(graph("ESPCN_x2"))
    result = namespace["enlarge"](str(tmp_path / "in.png"), model, str(tmp_path / "out.png"))
    assert result.shape == (42, 60, 3) and result.dtype == np.uint8
    assert np.array_equal(cv2.imread(str(tmp_path / "out.png")), result)
    direct = ocv.DnnSuperResImpl_create()
    direct.readModel(model)
    direct.setModel("espcn", 2)
    assert np.array_equal(direct.upsample(image), result)


# ---------------------------------------------------------------------- OpenCV's .pb graphs


@pytest.mark.parametrize("name,algo,family,scale", GRAPHS, ids=[g[0] for g in GRAPHS])
def test_read_every_opencv_graph(name, algo, family, scale):
    sr = ocv.DnnSuperResImpl.create()
    assert (sr.getScale(), sr.getAlgorithm()) == (0, "")
    sr.readModel(str(graph(name)))
    sr.setModel(algo, scale)
    assert (sr.getScale(), sr.getAlgorithm(), sr.model_name) == (scale, algo, family)
    assert sr.pipeline == "opencv" and sr.upsampler.scale == scale
    color = smooth_bgr(11, 7, seed=scale)
    out = sr.upsample(color)
    assert out.shape == (11 * scale, 7 * scale, 3) and out.dtype == np.uint8
    gray = color[:, :, 1]
    assert sr.upsample(gray).shape == (11 * scale, 7 * scale)
    assert sr.upsample(gray[:, :, None]).shape == (11 * scale, 7 * scale)  # (H, W, 1) as gray
    info = ocv.read_opencv_graph(graph(name))
    assert (info.family, info.algorithm, info.scale) == (family, algo, scale)


def test_graph_choice_is_checked():
    sr = ocv.DnnSuperResImpl_create()
    sr.readModel(graph("ESPCN_x3"))
    with pytest.raises(InputError, match=r"holds ESPCN x3.*setModel\('espcn', 3\)"):
        sr.setModel("fsrcnn", 3)
    with pytest.raises(InputError, match="is for x3, not x2"):
        sr.setModel("espcn", 2)
    small = ocv.DnnSuperResImpl("fsrcnn-small", 2)  # OpenCV's (algo, scale) constructor
    small.readModel(graph("FSRCNN-small_x2"))
    assert small.model_name == "fsrcnn-small" and small.getAlgorithm() == "fsrcnn-small"
    with pytest.raises(InputError, match="is for x2, not x4"):
        ocv.DnnSuperResImpl("fsrcnn", 4).readModel(graph("FSRCNN_x2"))


def test_errors_name_the_problem(tmp_path):
    sr = ocv.DnnSuperResImpl_create()
    with pytest.raises(InputError, match="call readModel"):
        sr.upsample(smooth_bgr(4, 4))
    with pytest.raises(InputError, match="read a model|readModel"):
        sr.setPreferableBackend(ocv.DNN_BACKEND_OPENCV)
    with pytest.raises(InputError, match="does not exist and is not a registered"):
        sr.readModel(tmp_path / "missing.pb")
    (tmp_path / "junk.pb").write_bytes(b"\x00\x01 not a graph")
    with pytest.raises(WeightsError):
        sr.readModel(tmp_path / "junk.pb")
    with pytest.raises(InputError, match="positive integer scale"):
        sr.setModel("espcn", 0)
    sr.readModel(graph("ESPCN_x2"))
    sr.setModel("espcn", 2)
    bgra = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(InputError, match="COLOR_BGRA2BGR"):
        sr.upsample(bgra)
    with pytest.raises(InputError, match="uint8 or float32"):
        sr.upsample(np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(InputError, match="only LapSRN"):
        sr.upsampleMultioutput(smooth_bgr(4, 4), [], [2], ["NCHW_output"])


def test_a_graph_of_another_kind_is_refused(tmp_path):
    """A valid GraphDef that is none of the three families (here: ESPCN's graph with its
    activation ops renamed away) is a WeightsError naming the supported graphs."""
    data = graph("ESPCN_x2").read_bytes().replace(b"Tanh", b"Sinh")
    (tmp_path / "other.pb").write_bytes(data)
    with pytest.raises(WeightsError, match="ESPCN, FSRCNN or LapSRN"):
        ocv.read_opencv_graph(tmp_path / "other.pb")


# --------------------------------------------------- OpenCV's pipeline, re-implemented in numpy


def _descale(x: np.ndarray) -> np.ndarray:
    return (x + (1 << 13)) >> 14  # CV_DESCALE(x, 14): OpenCV's fixed-point rounding


def np_bgr_to_ycrcb(img: np.ndarray) -> np.ndarray:
    """OpenCV's uint8 COLOR_BGR2YCrCb (14-bit fixed point; full range)."""
    b, g, r = (img[..., i].astype(np.int64) for i in range(3))
    y = _descale(r * 4899 + g * 9617 + b * 1868)
    cr = _descale((r - y) * 11682 + (128 << 14))
    cb = _descale((b - y) * 9241 + (128 << 14))
    return np.clip(np.stack([y, cr, cb], -1), 0, 255).astype(np.uint8)


def np_ycrcb_to_bgr(img: np.ndarray) -> np.ndarray:
    """OpenCV's uint8 COLOR_YCrCb2BGR."""
    y, cr, cb = (img[..., i].astype(np.int64) for i in range(3))
    b = y + _descale((cb - 128) * 29049)
    g = y + _descale((cb - 128) * -5636 + (cr - 128) * -11698)
    r = y + _descale((cr - 128) * 22987)
    return np.clip(np.stack([b, g, r], -1), 0, 255).astype(np.uint8)


def np_resize_linear(plane: np.ndarray, s: int) -> np.ndarray:
    """cv2.resize(INTER_LINEAR) by an integer factor: half-pixel centres, edge clamping."""

    def taps(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = (np.arange(n_in * s) + 0.5) / s - 0.5
        i0 = np.floor(x).astype(int)
        f = x - i0
        f = np.where((i0 < 0) | (i0 >= n_in - 1), 0.0, f)
        i0 = np.clip(i0, 0, n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), f

    (r0, r1, fy), (c0, c1, fx) = taps(plane.shape[0]), taps(plane.shape[1])
    p = plane.astype(np.float64)
    rows = p[:, c0] * (1 - fx) + p[:, c1] * fx
    return rows[r0] * (1 - fy)[:, None] + rows[r1] * fy[:, None]


def run_graph(path: Path, y: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's value for luma ``y`` (H, W) in float64, with TensorFlow's semantics."""
    return graph_values(path, y.astype(np.float64)[None, :, :, None])


def np_dnn_superres(path: Path, img: np.ndarray, scale: int, node: str = "NCHW_output"):
    """OpenCV 4.x dnn_superres.upsample of a BGR uint8 image, all in numpy (float64 net)."""
    ycrcb = np_bgr_to_ycrcb(img).astype(np.float32) * np.float32(1 / 255)
    outputs = run_graph(path, ycrcb[:, :, 0])
    y = outputs[node][0, 0] if node in outputs else list(outputs.values())[-1][0, 0]
    planes = [y, np_resize_linear(ycrcb[:, :, 1], scale), np_resize_linear(ycrcb[:, :, 2], scale)]
    merged = np.clip(np.rint(np.stack(planes, -1) * 255.0), 0, 255).astype(np.uint8)
    return np_ycrcb_to_bgr(merged)


def test_color_conversions_equal_opencv_exactly():
    v = np.arange(0, 256, 3, dtype=np.uint8)
    grid = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(-1, 86, 3)
    y, planes = ocv.opencv_preprocess(grid)
    # convertTo(CV_32F, 1.0 / 255): times the float32 scale (not a division)
    expected = np_bgr_to_ycrcb(grid).astype(np.float32) * np.float32(1 / 255)
    assert np.array_equal(planes, expected) and np.array_equal(y, expected[:, :, 0])
    assert np.array_equal(cv2.cvtColor(grid, cv2.COLOR_YCrCb2BGR), np_ycrcb_to_bgr(grid))


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_reconstruction_equals_numpy(scale):
    rng = np.random.default_rng(scale)
    y_out = rng.uniform(-0.05, 1.05, (9 * scale, 13 * scale)).astype(np.float32)
    # gray input: the chroma planes are constant 128/255, so the resize is exact and the
    # whole reconstruction must be bit-identical
    _, flat = ocv.opencv_preprocess(np.repeat(smooth_bgr(9, 13)[:, :, :1], 3, axis=2))
    merged = np.clip(np.rint(y_out * 255.0), 0, 255).astype(np.uint8)
    expected = np_ycrcb_to_bgr(np.dstack([merged, np.full_like(merged, 128), merged * 0 + 128]))
    assert np.array_equal(ocv.opencv_reconstruct(y_out, flat, scale), expected)
    # colour: float32 (OpenCV) and float64 (numpy) bilinear chroma may round a tie apart:
    # one level of Cr / Cb, which YCrCb2BGR turns into at most two levels of B, G or R
    _, planes = ocv.opencv_preprocess(smooth_bgr(9, 13, seed=scale))
    chroma = [np_resize_linear(planes[:, :, c], scale) for c in (1, 2)]
    merged = np.clip(np.rint(np.stack([y_out, *chroma], -1) * 255.0), 0, 255).astype(np.uint8)
    diff = np.abs(
        ocv.opencv_reconstruct(y_out, planes, scale).astype(int) - np_ycrcb_to_bgr(merged)
    )
    assert diff.max() <= 2 and (diff > 0).mean() < 0.03
    with pytest.raises(InputError, match="does not match the model"):
        ocv.opencv_reconstruct(y_out, planes, scale + 1)


@pytest.mark.parametrize(
    "name,algo,scale",
    [
        ("ESPCN_x3", "espcn", 3),
        ("FSRCNN_x2", "fsrcnn", 2),
        ("FSRCNN-small_x4", "fsrcnn", 4),
        ("LapSRN_x2", "lapsrn", 2),
    ],
)
def test_adapter_equals_a_numpy_reimplementation_of_opencv(name, algo, scale):
    """The whole upsample: OpenCV's pipeline in numpy with the graph run op by op in float64
    agrees with the adapter up to rounding ties (float32 vs float64: one level of Y, Cr or
    Cb, at most two of B, G, R after YCrCb2BGR; see test_reconstruction_equals_numpy).
    benchmarks/opencv_parity.py compares with OpenCV 4.x itself: within one level."""
    sr = ocv.DnnSuperResImpl_create()
    sr.readModel(graph(name))
    sr.setModel(algo, scale)
    img = smooth_bgr(19, 24, seed=3)
    got = sr.upsample(img)
    expected = np_dnn_superres(graph(name), img, scale)
    diff = np.abs(got.astype(int) - expected)
    assert got.shape == expected.shape
    assert diff.max() <= 2 and (diff > 0).mean() < 0.03


def test_lapsrn_pyramid_equals_the_graph():
    path = graph("LapSRN_x4")
    net = ocv.LapSRN.from_graph(path)
    assert (net.levels, net.scale, net.slope) == (2, 4, pytest.approx(0.2))
    y = np.random.default_rng(1).random((9, 11)).astype(np.float32)
    values = run_graph(path, y)
    with torch.no_grad():
        x2, x4 = net.pyramid(torch.from_numpy(y)[None, None])
    assert np.abs(x2[0, 0].numpy() - values["NCHW_output_2x"][0, 0]).max() < 1e-4
    assert np.abs(x4[0, 0].numpy() - values["NCHW_output_4x"][0, 0]).max() < 1e-4


def test_upsample_multioutput_gives_lapsrn_levels():
    sr = ocv.DnnSuperResImpl_create()
    sr.readModel(graph("LapSRN_x8"))
    sr.setModel("lapsrn", 8)
    img = smooth_bgr(7, 6)
    outs: list[np.ndarray] = []
    names = ["NCHW_output_2x", "NCHW_output_4x", "NCHW_output_8x"]
    returned = sr.upsampleMultioutput(img, outs, [2, 4, 8], names)
    assert [o.shape for o in outs] == [(14, 12, 3), (28, 24, 3), (56, 48, 3)]
    assert all(a is b for a, b in zip(outs, returned, strict=True))
    assert np.array_equal(outs[-1], sr.upsample(img))
    two = np_dnn_superres(graph("LapSRN_x8"), img, 2, node="NCHW_output_2x")
    assert np.abs(outs[0].astype(int) - two).max() <= 2
    with pytest.raises(InputError, match="no output node 'x'.*NCHW_output_2x"):
        sr.upsampleMultioutput(img, None, [2], ["x"])
    with pytest.raises(InputError, match="is x4, but scale factor 2"):
        sr.upsampleMultioutput(img, None, [2], ["NCHW_output_4x"])


def test_float32_input_follows_opencv_and_gives_uint8():
    sr = ocv.DnnSuperResImpl_create()
    sr.readModel(graph("ESPCN_x2"))
    sr.setModel("espcn", 2)
    img = smooth_bgr(10, 12)
    as_float = sr.upsample(img.astype(np.float32))
    assert as_float.dtype == np.uint8 and as_float.shape == (20, 24, 3)
    # float YCrCb (not rounded to integers before the network, as OpenCV's float path) vs
    # the 14-bit fixed-point uint8 conversion: close, not equal
    diff = np.abs(as_float.astype(int) - sr.upsample(img))
    assert diff.max() <= 4 and diff.mean() < 1.5
    gray = sr.upsample(img[:, :, 0].astype(np.float32))
    assert gray.dtype == np.uint8 and gray.shape == (20, 24)


# ------------------------------------------------------------------------ srplug models


def test_any_srplug_model_by_name():
    sr = ocv.DnnSuperResImpl_create()
    sr.readModel("bicubic")
    sr.setModel("bicubic", 3)
    assert sr.pipeline == "srplug" and sr.model_name == "bicubic"
    img = smooth_bgr(8, 9)
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    expected = cv2.cvtColor(srplug.get("bicubic", 3)(rgb), cv2.COLOR_RGB2BGR)
    assert np.array_equal(sr.upsample(img), expected)
    bgra = np.dstack([img, np.full(img.shape[:2], 200, np.uint8)])
    out = sr.upsample(bgra)
    assert out.shape == (24, 27, 4) and np.all(out[:, :, 3] == 200)
    direct = ocv.DnnSuperResImpl_create()
    direct.setModel("bicubic", 2)  # no readModel: the registered model, default weights
    assert direct.upsample(img).shape == (16, 18, 3)
    with pytest.raises(InputError, match="readModel named model 'bicubic'"):
        sr.setModel("espcn-typo", 3)


def test_srplug_weight_files(tmp_path):
    torch.manual_seed(0)
    small = srplug.get("fsrcnn-small", scale=3, weights=None)
    path = tmp_path / "mine_x3.safetensors"
    save_safetensors(small.model.state_dict(), path)
    sr = ocv.DnnSuperResImpl_create()
    sr.readModel(path)
    sr.setModel("fsrcnn", 3)  # OpenCV's name: srplug finds the FSRCNN-small weights
    assert sr.model_name == "fsrcnn-small" and sr.pipeline == "srplug"
    img = smooth_bgr(10, 8)
    expected = cv2.cvtColor(small(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)), cv2.COLOR_RGB2BGR)
    assert np.abs(sr.upsample(img).astype(int) - expected).max() <= 1
    forced = ocv.DnnSuperResImpl(pipeline="opencv")  # OpenCV's YCrCb path for a srplug model
    forced.readModel(path)
    forced.setModel("fsrcnn-small", 3)
    assert forced.pipeline == "opencv" and forced.upsample(img).shape == (30, 24, 3)
    with pytest.raises(WeightsError, match="readModel"):
        ocv.DnnSuperResImpl_create().setModel("rcan", 2)  # no weights shipped, none read


def test_targets_map_to_devices():
    sr = ocv.DnnSuperResImpl_create()
    sr.readModel(graph("FSRCNN-small_x2"))
    sr.setModel("fsrcnn", 2)
    sr.setPreferableBackend(ocv.DNN_BACKEND_OPENCV)
    sr.setPreferableTarget(ocv.DNN_TARGET_CPU)
    assert sr.device.type == "cpu"
    img = smooth_bgr(6, 5)
    cpu = sr.upsample(img)
    if torch.cuda.is_available():
        sr.setPreferableTarget(ocv.DNN_TARGET_CUDA)
        assert sr.device.type == "cuda"
        assert np.abs(sr.upsample(img).astype(int) - cpu).max() <= 1
    else:
        with pytest.warns(RuntimeWarning, match="torch sees none"):
            sr.setPreferableTarget(ocv.DNN_TARGET_CUDA_FP16)
        assert sr.device.type == "cpu"
        assert np.array_equal(sr.upsample(img), cpu)
    with pytest.warns(RuntimeWarning, match="no torch counterpart"):
        sr.setPreferableTarget(ocv.DNN_TARGET_MYRIAD)
    with pytest.raises(InputError, match="unknown OpenCV backend"):
        sr.setPreferableBackend(42)
    assert (ocv.DNN_TARGET_CUDA, ocv.DNN_BACKEND_CUDA) == (
        cv2.dnn.DNN_TARGET_CUDA,
        cv2.dnn.DNN_BACKEND_CUDA,
    )


# ----------------------------------------------------------------- faster inference modules


def test_inference_module_shrinks_opencv_fsrcnn_and_keeps_results():
    up = srplug.get("fsrcnn", weights=graph("FSRCNN_x3"))
    fast = ocv.inference_module(up.model)
    assert isinstance(fast.deconv, nn.Module) and fast.deconv.weight.shape[-2:] == (1, 1)
    assert isinstance(up.model.deconv, nn.ConvTranspose2d)  # the original is untouched
    x = torch.rand(1, 1, 12, 10).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert torch.allclose(fast(x), up.model(x), atol=1e-5)
    assert not any(p.requires_grad for p in fast.parameters())


def test_upsample_does_not_warn():
    sr = ocv.DnnSuperResImpl_create()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sr.readModel(graph("LapSRN_x2"))
        sr.setModel("lapsrn", 2)
        sr.upsample(smooth_bgr(5, 5))
