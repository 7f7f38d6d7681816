"""Upsampler behaviour beyond bicubic: Y-channel networks, gray into RGB nets, alpha, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import srplug
from srplug.color import rgb_to_ycbcr, ycbcr_to_rgb
from srplug.resize import imresize
from srplug.upsampler import ModuleUpsampler, resolve_device, resolve_dtype
from tests.helpers.models import Nearest


def test_y_model_runs_network_on_luma_and_bicubic_on_chroma():
    up = ModuleUpsampler(Nearest(2), name="nn-y", scale=2, channels="y")
    img = torch.rand(1, 3, 6, 5, dtype=torch.float64)
    out = up(img.float())
    ycbcr = rgb_to_ycbcr(img)
    y = nn.functional.interpolate(ycbcr[:, :1], scale_factor=2, mode="nearest")
    cbcr = imresize(ycbcr[:, 1:], 2.0)
    expected = ycbcr_to_rgb(torch.cat([y, cbcr], 1)).clamp(0, 1)
    assert (out.double() - expected).abs().max() < 1e-5


def test_y_model_sees_one_channel():
    seen = []

    class Spy(Nearest):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return super().forward(x)

    up = ModuleUpsampler(Spy(3), name="spy", scale=3, channels="y")
    up(np.zeros((4, 5, 3), np.uint8))
    up(np.zeros((4, 5), np.uint8))
    assert seen == [(1, 1, 4, 5), (1, 1, 4, 5)]


def test_gray_into_y_model_stays_gray_and_exact():
    up = ModuleUpsampler(Nearest(2), name="nn-y", scale=2, channels="y")
    gray = np.arange(30, dtype=np.uint8).reshape(5, 6) * 8
    out = up(gray)
    assert out.shape == (10, 12) and out.dtype == np.uint8
    assert (out == np.kron(gray, np.ones((2, 2), np.uint8))).all()


def test_gray_into_rgb_model_is_replicated():
    up = ModuleUpsampler(Nearest(2), name="nn", scale=2, channels="rgb")
    gray = np.arange(30, dtype=np.uint8).reshape(5, 6, 1) * 8
    out = up(gray)
    assert out.shape == (10, 12, 1)
    assert (out[:, :, 0] == np.kron(gray[:, :, 0], np.ones((2, 2), np.uint8))).all()


def test_alpha_is_enlarged_bicubically_and_not_fed_to_the_network():
    up = ModuleUpsampler(Nearest(2, offset=0.5), name="nn", scale=2, channels="rgb")
    rgba = np.zeros((6, 6, 4), np.float32)
    rgba[:, :, 3] = np.linspace(0, 1, 36, dtype=np.float32).reshape(6, 6)
    out = up(rgba)
    assert np.allclose(out[:, :, :3], 0.5)  # network offset shows on colour only
    alpha = imresize(torch.from_numpy(rgba[:, :, 3]).double(), 2.0).clamp(0, 1).numpy()
    assert np.abs(out[:, :, 3] - alpha).max() < 1e-6


def test_float_output_is_clamped():
    up = ModuleUpsampler(Nearest(2, offset=5.0), name="nn", scale=2)
    assert up(np.zeros((3, 3, 3), np.float32)).max() == 1.0


def test_wrong_output_shape_is_a_plugin_error():
    up = ModuleUpsampler(nn.Identity(), name="broken", scale=2)
    with pytest.raises(srplug.PluginError, match="broken.*expected"):
        up(np.zeros((3, 3, 3), np.uint8))


def test_model_attribute_and_dtype():
    module = Nearest(2)
    up = ModuleUpsampler(module, name="nn", scale=2, dtype="bfloat16")
    assert up.model is module
    assert up.dtype == torch.bfloat16 and module.offset.dtype == torch.bfloat16
    assert up(np.zeros((4, 4, 3), np.uint8)).shape == (8, 8, 3)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((2, 2, 2, 2), np.uint8), "dimensions"),
        (np.zeros((4, 4, 5), np.uint8), "channels"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.zeros((4, 4, 3), np.int32), "dtype"),
        (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
        (torch.zeros(4, 4), "dimensions"),
        (torch.zeros(0, 3, 4, 4), "batch size 0"),
        (torch.zeros(3, 4, 4, dtype=torch.int64), "dtype"),
        (torch.full((3, 4, 4), float("inf")), "NaN or infinite"),
        ([[1, 2], [3, 4]], "numpy array"),
        ("image.png", "numpy array"),
    ],
)
def test_bad_input_is_an_input_error(bad, match):
    up = srplug.get("bicubic", scale=2)
    with pytest.raises(srplug.InputError, match=match):
        up(bad)


def test_unsupported_pil_mode():
    from PIL import Image

    with pytest.raises(srplug.InputError, match="CMYK"):
        srplug.get("bicubic")(Image.new("CMYK", (4, 4)))


@pytest.mark.parametrize("device,match", [("gpu7", "not a torch device"), ("cuda", "CUDA")])
def test_bad_device(device, match):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present, so 'cuda' is valid here")
    with pytest.raises(srplug.InputError, match=match):
        resolve_device(device)


def test_dtype_names():
    assert resolve_dtype("bf16") is torch.bfloat16
    assert resolve_dtype(torch.float16) is torch.float16
    assert resolve_dtype(None) is torch.float32
    with pytest.raises(srplug.InputError, match="int8"):
        resolve_dtype("int8")
    with pytest.raises(srplug.InputError):
        resolve_dtype(torch.int32)


# ------------------------------------------------------- self-ensemble, precision, compile


class Skewed(nn.Module):
    """A 3x3 convolution without symmetry, then nearest x2: flips and rotations change it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return nn.functional.interpolate(self.conv(x), scale_factor=2, mode="nearest")


def test_ensemble_averages_the_eight_transforms():
    net = Skewed()
    x = torch.rand(1, 3, 7, 9)
    expected = torch.zeros(1, 3, 14, 18)
    with torch.no_grad():
        for k in range(4):
            for flip in (False, True):
                t = torch.rot90(x, k, dims=(2, 3))
                t = t.flip(3) if flip else t
                y = net(t)
                y = y.flip(3) if flip else y
                expected += torch.rot90(y, -k, dims=(2, 3)) / 8
    up = ModuleUpsampler(net, name="skew", scale=2, ensemble=True)
    out = up(x)
    assert (out - expected.clamp(0, 1)).abs().max() < 1e-5
    plain = ModuleUpsampler(net, name="skew", scale=2)(x)
    assert (out - plain).abs().max() > 1e-3  # the ensemble really differs from one pass
    tiled = ModuleUpsampler(net, name="skew", scale=2, ensemble=True, tile=8)(x)
    assert (tiled - out).abs().max() <= 1e-5


def test_get_passes_engine_options():
    up = srplug.get("bicubic", scale=2, tile=16, ensemble=True)
    assert up.tile == 16 and up.ensemble
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.abs(up(img).astype(int) - srplug.get("bicubic", scale=2)(img)).max() <= 1


def test_fixed_precision_and_conflicts():
    up = ModuleUpsampler(Nearest(2), name="nn", scale=2, precision="bf16")
    assert up.dtype == torch.bfloat16 and up.precision_report is None
    with pytest.raises(srplug.InputError, match="either dtype= or precision="):
        ModuleUpsampler(Nearest(2), name="nn", scale=2, precision="auto", dtype="float32")
    with pytest.raises(srplug.InputError, match="'fp16' needs a CUDA device"):
        ModuleUpsampler(Nearest(2), name="nn", scale=2, precision="fp16")
    with pytest.raises(srplug.InputError, match="unknown precision"):
        ModuleUpsampler(Nearest(2), name="nn", scale=2, precision="int8")


def test_auto_precision_is_measured_and_recorded():
    from srplug.precision import probe_image, probe_inference

    probe = probe_image(3, size=32)
    fast = probe_inference(Skewed(), probe, device=torch.device("cpu"), min_speedup=0.0)
    assert fast.chosen == "bf16" and fast.psnr["bf16"] > 45 and fast.max_error["bf16"] < 0.03
    never = probe_inference(Skewed(), probe, device=torch.device("cpu"), min_speedup=1e9)
    assert never.chosen == "fp32" and "faster" in never.rejected["bf16"]
    up = ModuleUpsampler(Skewed(), name="skew", scale=2, precision="auto")
    report = up.precision_report
    assert (
        report is not None
        and up.dtype == {"fp32": torch.float32, "bf16": torch.bfloat16}[report.chosen]
    )
    assert report.describe().startswith(f"precision auto -> {report.chosen} (fp32 ")


def test_auto_precision_rejects_nan():
    class NaNInHalf(Nearest):
        def forward(self, x):
            out = super().forward(x)
            return out * float("nan") if x.dtype != torch.float32 else out

    up = ModuleUpsampler(NaNInHalf(2), name="nan", scale=2, precision="auto")
    assert up.dtype == torch.float32
    assert up.precision_report.rejected["bf16"] == "NaN or Inf in the output"


def test_compile_failure_falls_back_with_a_message(monkeypatch):
    def broken_compile(module, **kwargs):
        def run(x):
            raise RuntimeError("no C++ compiler found")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    up = ModuleUpsampler(Nearest(2), name="nn", scale=2, compile=True)
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*no C\\+\\+ compiler"):
        out = up(img)
    assert (out == np.kron(img, np.ones((2, 2), np.uint8))).all()
    assert "running the model eagerly" in up.compile_report


@pytest.mark.slow  # inductor compiles C++ for the CPU: tens of seconds
def test_compile_gives_the_eager_result():
    net = Skewed()
    x = torch.rand(1, 3, 12, 10)
    eager = ModuleUpsampler(net, name="skew", scale=2)(x)
    compiled = ModuleUpsampler(net, name="skew", scale=2, compile=True)
    assert (compiled(x) - eager).abs().max() <= 1e-5


RCAN_TINY = {"n_resgroups": 1, "n_resblocks": 2, "n_feats": 16, "reduction": 4}


def _has_rcan() -> bool:
    return "rcan" in srplug.list()


@pytest.mark.skipif(not _has_rcan(), reason="needs the srplug-rcan plugin (RCAN_TINY)")
def test_kernels_auto_fuses_when_the_extension_loads():
    import srplug.ops

    torch.manual_seed(0)
    fused = srplug.get("rcan", scale=2, weights=None, **RCAN_TINY)
    eager = srplug.get("rcan", scale=2, weights=None, kernels="eager", **RCAN_TINY)
    eager.model.load_state_dict(fused.model.state_dict())
    convs = [m for m in fused.model.modules() if isinstance(m, srplug.ops.Conv3x3)]
    if srplug.ops.status().loaded:
        assert fused.kernels_report.startswith("fused"), fused.kernels_report
        assert len(convs) == 7  # 2 RCABs x 2, the group and body ends, the upsampler conv
    else:  # no compiler here: the plain modules run, and the report says why
        assert fused.kernels_report.startswith("eager: the C++ extension is unavailable")
        assert not convs
    assert eager.kernels_report == "eager: kernels='eager'"
    assert not any(isinstance(m, srplug.ops.Conv3x3) for m in eager.model.modules())
    img = torch.rand(1, 3, 13, 10)
    assert (fused(img) - eager(img)).abs().max() <= 1e-5


@pytest.mark.skipif(not _has_rcan(), reason="needs the srplug-rcan plugin (RCAN_TINY)")
def test_kernels_auto_stays_eager_where_they_do_not_pay_and_bad_values_are_refused():
    bf16 = srplug.get("rcan", scale=2, weights=None, dtype="bfloat16", **RCAN_TINY)
    assert bf16.kernels_report.startswith("eager: the fused kernels pay off on the CPU in float32")
    compiled = srplug.get("rcan", scale=2, weights=None, compile=True, **RCAN_TINY)
    assert compiled.kernels_report.startswith("eager: compile=True")
    bicubic = srplug.get("bicubic", scale=2)
    assert getattr(bicubic, "kernels_report", "eager: not a network").startswith("eager")
    with pytest.raises(srplug.InputError, match="kernels must be one of 'auto', 'fused'"):
        srplug.get("rcan", scale=2, weights=None, kernels="fast", **RCAN_TINY)
