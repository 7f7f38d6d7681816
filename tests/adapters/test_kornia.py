"""srplug.adapters.kornia: the SR transform in Kornia pipelines, degradations, the trainer hook."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

kornia = pytest.importorskip("kornia")
import kornia.augmentation as K  # noqa: E402
from srplug.adapters import kornia as ska  # noqa: E402

import srplug  # noqa: E402
from srplug.errors import InputError  # noqa: E402
from srplug.resize import imresize  # noqa: E402
from srplug.train.data import TrainPairs  # noqa: E402
from srplug.train.recipe import load_recipe, read_recipe_file  # noqa: E402
from srplug.train.trainer import DefaultTrainer  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402
from tests.train import tiny_models  # noqa: E402
from tests.train.conftest import make_images  # noqa: E402


def images(b: int = 2, c: int = 3, h: int = 12, w: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- SR transform


@pytest.mark.parametrize("name", ["espcn", "fsrcnn-small", "bicubic"])
def test_sr_inside_augmentation_containers_passes_gradients_to_the_input(name):
    torch.manual_seed(0)
    sr = ska.SuperResolution(name, 2, weights=None)
    x = images().requires_grad_(True)
    pipeline = K.ImageSequential(
        K.ColorJitter(0.1, 0.1, 0.1, 0.0, p=1.0),
        sr,
        K.RandomHorizontalFlip(p=1.0),
    )
    y = pipeline(x)
    assert y.shape == (2, 3, 24, 20)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in sr.parameters())  # frozen by default
    aug = K.AugmentationSequential(K.RandomVerticalFlip(p=1.0), sr, data_keys=["input"])
    x.grad = None
    aug(x).mean().backward()
    assert x.grad.abs().sum() > 0


def test_sr_matches_the_srplug_upsampler():
    torch.manual_seed(1)
    up = srplug.get("espcn", 3, weights=None)
    sr = ska.SuperResolution(up)  # clamps to [0, 1], as the upsampler does
    x = images(c=3, seed=1)
    with torch.no_grad():
        assert torch.allclose(sr(x), up(x), atol=1e-5)  # RGB through Y + bicubic chroma
        gray = x[:, :1]
        assert torch.allclose(sr(gray), up(gray), atol=1e-5)
        raw = ska.SuperResolution(up, clamp=False)(x)
    assert raw.min() < 0 or raw.max() > 1  # random weights overshoot without clamping
    assert sr(x.double()).dtype == torch.float64


def test_trainable_sr_updates_its_network():
    torch.manual_seed(2)
    sr = ska.SuperResolution("espcn", 2, weights=None, trainable=True)
    assert sr.train().net.training and not sr.eval().net.training
    frozen = ska.SuperResolution("espcn", 2, weights=None)
    assert not frozen.train().net.training
    sr.train()
    opt = torch.optim.SGD(sr.parameters(), lr=0.1)
    before = copy.deepcopy(sr.state_dict())
    sr(images()).mean().backward()
    opt.step()
    assert any(not torch.equal(before[k], v) for k, v in sr.state_dict().items())


def test_sr_refuses_bad_input():
    sr = ska.SuperResolution("bicubic", 2)
    with pytest.raises(InputError, match=r"1 \(gray\) or 3 \(RGB\)"):
        sr(torch.rand(1, 4, 5, 5))
    with pytest.raises(InputError, match="float tensor"):
        sr(torch.zeros(1, 3, 5, 5, dtype=torch.uint8))
    with pytest.raises(InputError, match="not x3"):
        ska.SuperResolution(srplug.get("bicubic", 2), scale=3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_sr_on_cuda():  # pragma: no cover - no GPU in CI
    sr = ska.SuperResolution("espcn", 2, weights=None).cuda()
    x = images().cuda().requires_grad_(True)
    sr(x).sum().backward()
    assert x.grad.device.type == "cuda"


# ----------------------------------------------------------------------------- degradations


def test_ops_are_reproducible_with_a_generator_and_keep_shapes():
    x = images(b=3, h=32, w=32)
    for op in (
        ska.GaussianBlur(),
        ska.AnisotropicGaussianBlur(),
        ska.GaussianNoise(gray_prob=0.5),
        ska.JPEG(),
        ska.Quantize(),
    ):
        a = op(x, generator=torch.Generator().manual_seed(5))
        b = op(x, generator=torch.Generator().manual_seed(5))
        assert a.shape == x.shape and torch.equal(a, b), type(op).__name__
        assert not torch.equal(a, x), type(op).__name__
    assert torch.equal(ska.GaussianBlur(p=0.0)(x), x)
    mixed = ska.GaussianNoise(0.1, p=0.5)(images(b=64, h=4, w=4), torch.Generator().manual_seed(0))
    changed = (mixed != images(b=64, h=4, w=4)).flatten(1).any(1).float().mean()
    assert 0.3 < changed < 0.7  # p is per sample


def test_blur_kernels():
    iso = ska.GaussianBlur(sigma=1.5, kernel_size=9)
    impulse = torch.zeros(1, 1, 15, 15)
    impulse[0, 0, 7, 7] = 1.0
    out = iso(impulse)[0, 0]
    assert torch.allclose(out, out.T, atol=1e-7) and math.isclose(out.sum().item(), 1, rel_tol=1e-5)
    aniso = ska.AnisotropicGaussianBlur(sigma=(0.5, 3.0), angle=0.0, kernel_size=21)
    kernels = aniso.kernels(200, torch.Generator().manual_seed(0))
    assert torch.allclose(kernels.sum((-1, -2)), torch.ones(200), atol=1e-5)
    r = torch.arange(-10, 11, dtype=torch.float32)
    var_x = (kernels.sum(-2) * r**2).sum(-1)  # second moment along x (columns)
    var_y = (kernels.sum(-1) * r**2).sum(-1)
    assert (var_x - var_y).abs().max() > 1.0  # elongated, not round
    fixed = ska.AnisotropicGaussianBlur(sigma=2.0, angle=0.3).kernels(1)[0]
    assert torch.allclose(fixed, fixed.T, atol=1e-6)  # equal sigmas: isotropic


def test_noise_strength_and_jpeg_gradients():
    flat = torch.full((4, 3, 64, 64), 0.5)
    noisy = ska.GaussianNoise(sigma=0.05)(flat, torch.Generator().manual_seed(0))
    assert abs((noisy - flat).std().item() - 0.05) < 0.003
    gray = ska.GaussianNoise(sigma=0.05, gray_prob=1.0)(flat)
    assert torch.equal(gray[:, 0], gray[:, 2])
    x = images(h=32, w=32).requires_grad_(True)
    out = ska.JPEG(quality=(20, 30))(x)
    assert (out - x).abs().mean() > 0.005  # lossy
    out.sum().backward()
    assert x.grad.abs().sum() > 0  # Kornia's differentiable codec
    assert ska.JPEG()(images(c=1, h=16, w=16)).shape == (2, 1, 16, 16)


def test_downscale_and_quantize():
    x = images(h=24, w=18)
    assert torch.equal(ska.Downscale(3)(x), imresize(x, 1 / 3))
    q = ska.Quantize()(x * 1.2 - 0.1)
    assert q.min() >= 0 and q.max() <= 1
    assert torch.allclose(q * 255, torch.round(q * 255), atol=1e-4)


def test_degradation_pipeline_and_presets():
    hr = images(b=2, h=32, w=24)
    for name in ska.PRESETS:
        d = ska.build_degradation(name, 4)
        lr, same = d.pair(hr, torch.Generator().manual_seed(1))
        assert same is hr and lr.shape == (2, 3, 8, 6) and lr.min() >= 0 and lr.max() <= 1
        assert torch.allclose(lr * 255, torch.round(lr * 255), atol=1e-4)  # 8-bit levels
    bicubic = ska.build_degradation("bicubic", 2)(hr)
    expected = torch.round(imresize(hr, 0.5).clamp(0, 1) * 255) / 255
    assert torch.allclose(bicubic, expected, atol=1e-6)
    steps = [
        {"op": "aniso_blur", "sigma": [0.5, 2.0]},
        {"op": "downscale"},
        {"op": "noise", "sigma": [0.01, 0.02], "gray_prob": 0.5},
        {"op": "jpeg", "quality": [50, 90], "p": 0.5},
    ]
    d = ska.build_degradation(steps, 2)
    assert [type(op).__name__ for op in d.ops] == [
        "AnisotropicGaussianBlur",
        "Downscale",
        "GaussianNoise",
        "JPEG",
    ]
    assert d(hr).shape == (2, 3, 16, 12)


@pytest.mark.parametrize(
    "spec,match",
    [
        ("sharpen", "unknown degradation preset"),
        ([{"op": "blur"}], "exactly one Downscale"),
        ([{"op": "downscale", "scale": 3}], "shrinks by 3, but the model is x2"),
        ([{"op": "twirl"}, {"op": "downscale"}], "unknown op 'twirl'"),
        ([{"op": "blur", "radius": 2}, {"op": "downscale"}], "step 0 \\(blur\\)"),
        ([{"op": "noise", "sigma": [0.2, 0.1]}, {"op": "downscale"}], "low <= high"),
        ([{"op": "blur", "kernel_size": 4}, {"op": "downscale"}], "must be odd"),
        ([{"sigma": 1}], "'op' key"),
    ],
)
def test_bad_degradation_specs(spec, match):
    with pytest.raises(InputError, match=match):
        ska.build_degradation(spec, 2)


def test_degradation_needs_a_multiple_of_the_scale():
    with pytest.raises(InputError, match="not a multiple of the scale 3"):
        ska.build_degradation("blur", 3)(images(h=10, w=9))


# ------------------------------------------------------------------------ the trainer hook


def test_train_pairs_with_a_degradation(tmp_path):
    folder = make_images(tmp_path / "hr", 2, (40, 36), seed=3)
    plain = TrainPairs([folder], 2, 16, seed=4)
    real = TrainPairs([folder], 2, 16, seed=4, degradation="real")
    again = TrainPairs([folder], 2, 16, seed=4, degradation="real")
    for v in range(4):
        lr_p, hr_p = plain[v]
        lr_r, hr_r = real[v]
        assert torch.equal(hr_p, hr_r) and lr_r.shape == lr_p.shape == (3, 8, 8)
        assert torch.equal(lr_r, again[v][0])  # seeded by (seed, v)
    assert any(not torch.equal(plain[v][0], real[v][0]) for v in range(4))
    luma = TrainPairs([folder], 2, 16, seed=4, degradation="noise", channels="y")
    assert luma[0][0].shape == (1, 8, 8)
    assert TrainPairs([folder], 2, 16, degradation="none").degradation is None


def test_recipe_checks_data_degradation():
    raw = read_recipe_file(REPO_ROOT / "recipes" / "tiny.toml")
    assert load_recipe(raw).data.degradation == "none"
    raw["data"]["degradation"] = [{"op": "blur", "sigma": [0.2, 1.0]}, {"op": "downscale"}]
    recipe = load_recipe(raw)
    assert load_recipe(recipe.to_dict()) == recipe  # survives checkpoints (plain data)
    raw["data"]["degradation"] = "sharpen"
    with pytest.raises(InputError, match="data.degradation.*unknown degradation preset"):
        load_recipe(raw)


def test_trainer_runs_with_kornia_degradations(tmp_path):
    tiny_models.register()
    hr = make_images(tmp_path / "hr", 3, (40, 44), seed=1)
    val = make_images(tmp_path / "val", 1, (24, 28), seed=2)
    raw = copy.deepcopy(read_recipe_file(REPO_ROOT / "recipes" / "tiny.toml"))
    raw["model"]["name"] = "tiny-y"
    raw["data"].update(train=[str(hr)], patch_size=16, batch_size=4, degradation="real")
    raw["schedule"].update(steps=6, warmup=1)
    raw["validation"].update(sets=[str(val)], every=6)
    raw["checkpoint"].update(every=6, keep=0)
    raw["precision"]["mode"] = "fp32"
    raw["log_every"] = 1
    result = DefaultTrainer(progress=False, log=lambda _: None).fit(
        raw, output_dir=tmp_path / "run"
    )
    lines = [json.loads(s) for s in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in lines if "loss" in r]
    assert len(losses) == 6 and all(np.isfinite(losses))
    assert result.weights.is_file()
    saved = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert saved["data"]["degradation"] == "real"
