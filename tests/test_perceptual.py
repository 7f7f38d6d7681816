"""VGG16 features and LPIPS-VGG: loading, errors, sanity properties, and agreement with a
second, independent numpy formulation of the paper's definition on the real weights."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from srplug.errors import InputError, WeightsError
from srplug.perceptual import LPIPS, LPIPS_ENV, VGG16_ENV, VGG16_LAYERS, VGG16Features
from srplug.weights import save_safetensors
from tests.conftest import REPO_ROOT
from tests.formats.reference import conv2d_same
from tests.helpers.torch_utils import one_thread

WEIGHTS = Path(os.environ.get("SRPLUG_TEST_WEIGHTS", REPO_ROOT.parent / "shared" / "weights"))
VGG_FILE = WEIGHTS / "vgg16_imagenet_features.safetensors"
LIN_FILE = WEIGHTS / "lpips_vgg_lin_v0.1.safetensors"
CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
WIDTHS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def real_lpips() -> LPIPS:
    if not (VGG_FILE.is_file() and LIN_FILE.is_file()):
        pytest.skip(f"VGG16/LPIPS weights not found in {WEIGHTS} (set SRPLUG_TEST_WEIGHTS)")
    return LPIPS(LIN_FILE, VGG_FILE)


def random_vgg_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state, c_in = {}, 3
    for index, c in zip(CONVS, WIDTHS, strict=True):
        state[f"features.{index}.weight"] = (
            torch.randn(c, c_in, 3, 3, generator=g) * (2.0 / (9 * c_in)) ** 0.5
        )
        state[f"features.{index}.bias"] = torch.randn(c, generator=g) * 0.01
        c_in = c
    return state


def random_lin_state(seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g)
        for i, c in enumerate((64, 128, 256, 512, 512))
    }


def images(seed: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(
        torch.rand(2, 3, size // 4, size // 4, generator=g), size=(size, size), mode="bilinear"
    )
    return base[:1], base[1:]


# --------------------------------------------------------------------- independent reference


def numpy_lpips(
    x: np.ndarray, y: np.ndarray, vgg: dict[str, torch.Tensor], lin: dict[str, torch.Tensor]
) -> float:
    """LPIPS v0.1 of two (H, W, 3) images in [0, 1], in float64 numpy, written from the paper
    without srplug: [-1, 1] scaling, LPIPS shift/scale, VGG16 (zero-padded 3x3 convs, ReLU,
    2x2 max pools), L2-normalised features at relu1_2/2_2/3_3/4_3/5_3, squared difference,
    channel weights, spatial mean, sum."""
    shift = np.array([-0.030, -0.088, -0.188])
    scale = np.array([0.458, 0.448, 0.450])
    taps = {3, 8, 15, 22, 29}  # torchvision indices of the five ReLU outputs

    def features(img: np.ndarray) -> list[np.ndarray]:
        h = ((img * 2.0 - 1.0) - shift) / scale
        h = h[None]
        out = []
        index = 0
        for block in ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28)):
            for conv in block:
                w = vgg[f"features.{conv}.weight"].double().numpy().transpose(2, 3, 1, 0)
                b = vgg[f"features.{conv}.bias"].double().numpy()
                h = np.maximum(conv2d_same(h, w) + b, 0.0)
                index = conv + 1
                if index in taps:
                    out.append(h[0])
            if len(out) < 5:
                n, hh, ww, c = h.shape
                h = h.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))
        return out

    total = 0.0
    for i, (fa, fb) in enumerate(zip(features(x), features(y), strict=True)):
        na = fa / (np.sqrt((fa**2).sum(axis=-1, keepdims=True)) + 1e-10)
        nb = fb / (np.sqrt((fb**2).sum(axis=-1, keepdims=True)) + 1e-10)
        weights = lin[f"lin{i}.model.1.weight"].double().numpy().reshape(-1)
        total += float((((na - nb) ** 2) @ weights).mean())
    return total


def to_hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).double().numpy()


# ------------------------------------------------------------------------------------ tests


def test_layer_names_follow_torchvision_indices():
    assert VGG16_LAYERS["relu1_2"] == 3 and VGG16_LAYERS["relu5_3"] == 29
    assert VGG16_LAYERS["pool5"] == 30 and VGG16_LAYERS["conv4_3"] == 21


def test_features_build_only_up_to_the_deepest_layer():
    vgg = VGG16Features(("relu2_2",), state_dict=random_vgg_state())
    assert len(vgg.features) == 9 and not any(p.requires_grad for p in vgg.parameters())
    out = vgg(torch.rand(2, 3, 16, 16))
    assert out["relu2_2"].shape == (2, 128, 8, 8)
    vgg.train()
    assert not vgg.training


def test_missing_weights_name_the_environment_variable(monkeypatch):
    monkeypatch.delenv(VGG16_ENV, raising=False)
    with pytest.raises(WeightsError, match=VGG16_ENV):
        VGG16Features()
    monkeypatch.setenv(VGG16_ENV, "/nonexistent/vgg.safetensors")
    with pytest.raises(WeightsError, match="does not exist"):
        VGG16Features()


def test_environment_variables_select_the_files(tmp_path, monkeypatch):
    save_safetensors(random_vgg_state(), tmp_path / "vgg.safetensors")
    save_safetensors(random_lin_state(), tmp_path / "lin.safetensors")
    monkeypatch.setenv(VGG16_ENV, str(tmp_path / "vgg.safetensors"))
    monkeypatch.setenv(LPIPS_ENV, str(tmp_path / "lin.safetensors"))
    metric = LPIPS()
    x, y = images(0, 16)
    assert metric(x, y).item() > 0


def test_wrong_weights_are_explained():
    state = random_vgg_state()
    del state["features.28.weight"]
    with pytest.raises(WeightsError, match=r"features\.28\.weight"):
        VGG16Features(("relu5_3",), state_dict=state)
    state = random_vgg_state()
    state["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    with pytest.raises(WeightsError, match="VGG16"):
        VGG16Features(("relu1_1",), state_dict=state)
    lin = random_lin_state()
    del lin["lin3.model.1.weight"]
    with pytest.raises(WeightsError, match="lin3"):
        LPIPS(lin_state_dict=lin, vgg_state_dict=random_vgg_state())
    with pytest.raises(InputError, match="unknown VGG16 layer"):
        VGG16Features(("relu5_4",), state_dict=random_vgg_state())


def test_random_weights_match_the_numpy_formulation():
    vgg, lin = random_vgg_state(), random_lin_state()
    metric = LPIPS(lin_state_dict=lin, vgg_state_dict=vgg)
    x, y = images(3)
    got = metric(x, y).item()
    assert got == pytest.approx(numpy_lpips(to_hwc(x), to_hwc(y), vgg, lin), rel=1e-4)


def test_real_lpips_matches_the_numpy_formulation(real_lpips):
    from safetensors.torch import load_file

    vgg, lin = load_file(str(VGG_FILE)), load_file(str(LIN_FILE))
    x, y = images(5)
    got = real_lpips(x, y).item()
    want = numpy_lpips(to_hwc(x), to_hwc(y), vgg, lin)
    assert got == pytest.approx(want, rel=1e-4)
    assert 0.01 < want < 2.0


def test_real_lpips_sanity(real_lpips):
    x, _ = images(7, 48)
    y = x.clone()
    assert real_lpips(x, y).item() == 0.0
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g)
    d = [real_lpips(x, (x + s * noise).clamp(0, 1)).item() for s in (0.02, 0.05, 0.1, 0.2)]
    assert d == sorted(d) and d[0] > 0
    blurred = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    assert real_lpips(x, blurred).item() == pytest.approx(real_lpips(blurred, x).item(), rel=1e-5)
    pair = torch.cat([x, x]), torch.cat([blurred, (x + 0.1 * noise).clamp(0, 1)])
    batch = real_lpips(*pair)
    assert batch.shape == (2,) and batch[0].item() == pytest.approx(
        real_lpips(x, blurred).item(), rel=1e-5
    )
    signed = LPIPS(LIN_FILE, VGG_FILE, input_range=(-1, 1))
    assert signed(x * 2 - 1, blurred * 2 - 1).item() == pytest.approx(
        real_lpips(x, blurred).item(), rel=1e-5
    )


def test_lpips_is_differentiable_and_stays_frozen(real_lpips):
    x, y = images(9, 32)
    x.requires_grad_(True)
    real_lpips(x, y).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in real_lpips.parameters())


def test_lpips_rejects_bad_input(real_lpips):
    with pytest.raises(InputError, match="differ in shape"):
        real_lpips(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 20))
    with pytest.raises(InputError, match="RGB"):
        real_lpips(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16))


# ------------------------------------------------------------------ evaluation and `eval`


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    from tests.train.conftest import make_images

    return make_images(tmp_path_factory.mktemp("lpips") / "tiny_set", 2, (40, 48), seed=11)


def test_evaluate_adds_lpips_on_the_shaved_rgb_images(real_lpips, small_set):
    import srplug
    from srplug.datasets import BenchmarkDataset
    from srplug.evaluation import evaluate

    up = srplug.get("bicubic", 2)
    ds = BenchmarkDataset(small_set, 2)
    plain = evaluate(up, ds)
    scored = evaluate(up, ds, lpips=real_lpips)
    assert plain.lpips is None and "LPIPS" not in str(plain)
    assert scored.psnr == plain.psnr and "LPIPS" in str(scored)
    item = ds[0]
    sr = up(item.lr)

    def t(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(img[2:-2, 2:-2].copy()).permute(2, 0, 1)[None].float() / 255

    first = real_lpips(t(sr), t(item.hr)).item()
    assert scored.per_image_lpips[0] == (item.name, pytest.approx(first, rel=1e-6))
    assert scored.lpips == pytest.approx(np.mean([d for _, d in scored.per_image_lpips]))


def test_eval_command_metric_flag(capsys, real_lpips, small_set, monkeypatch):
    import json

    from srplug.cli import main

    argv = ["eval", "bicubic", "-s", "2", "-d", str(small_set), "--no-progress"]
    code = main([*argv, "--metric", "psnr", "lpips", "--json", "--lpips-weights",
                 str(LIN_FILE), "--vgg-weights", str(VGG_FILE)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    (result,) = json.loads(out)["results"]
    assert set(result) == {"dataset", "scale", "psnr", "lpips", "images"}
    assert 0 < result["lpips"] < 1
    monkeypatch.setenv(VGG16_ENV, str(VGG_FILE))
    monkeypatch.setenv(LPIPS_ENV, str(LIN_FILE))
    assert main([*argv, "-m", "lpips"]) == 0
    table = capsys.readouterr().out
    header, row = [line.split() for line in table.splitlines()[:3] if "-" not in line[:3]][:2]
    assert header[3] == "LPIPS" and float(row[3]) == pytest.approx(result["lpips"], abs=1e-4)
    monkeypatch.delenv(LPIPS_ENV)
    assert main([*argv, "-m", "lpips"]) != 0
    assert LPIPS_ENV in capsys.readouterr().err
