"""DRN dual regression (recipe kind = "dual"): the loss against a hand computation, paired
training, unpaired LR-only fine-tuning (learned duals and a known degradation), dual models
kept outside the model, exact resume, refusals, and the drn-s plugin when installed."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import srplug
from srplug.errors import InputError
from srplug.resize import imresize
from srplug.train import DefaultTrainer
from srplug.train.checkpoint import load_training_checkpoint
from srplug.train.distributed import DistContext
from srplug.train.dual import DualObjective, LRPatches, lr_pyramid
from srplug.train.recipe import load_recipe, read_recipe_file
from tests.conftest import REPO_ROOT
from tests.train.conftest import make_images

PLUGIN = "dual-tests"


class TinyDRN(nn.Module):
    """x4 primal: nearest x2 steps with small residual convs, outputs at 1x, 2x, 4x; dual
    networks are strided 3x3 convs (2x -> 1x, 4x -> 2x). ``external=True`` keeps them in a
    plain list, outside the module's parameters."""

    def __init__(self, scale: int = 4, external: bool = False) -> None:
        super().__init__()
        self.scale = scale
        n = scale.bit_length() - 1
        self.steps = nn.ModuleList(nn.Conv2d(3, 3, 3, padding=1) for _ in range(n + 1))
        duals = [nn.Conv2d(3, 3, 3, stride=2, padding=1) for _ in range(n)]
        if external:
            self._duals = duals
        else:
            self.duals = nn.ModuleList(duals)

    @property
    def dual_models(self) -> list[nn.Module]:
        return getattr(self, "_duals", None) or list(self.duals)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x + 0.1 * self.steps[0](x)]
        for step in self.steps[1:]:
            up = nn.functional.interpolate(outs[-1], scale_factor=2, mode="nearest")
            outs.append(up + 0.1 * step(up))
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[-1]


class DualPlugin:
    @srplug.hookimpl
    def register_models(self, register):
        register(srplug.ModelSpec(name="tiny-drn", build=lambda scale: TinyDRN(scale)))
        register(
            srplug.ModelSpec(name="tiny-drn-ext", build=lambda scale: TinyDRN(scale, external=True))
        )
        register(srplug.ModelSpec(name="tiny-nodual", build=lambda scale: nn.Conv2d(3, 3, 1)))


@pytest.fixture(scope="module", autouse=True)
def _plugin():
    from srplug import plugins

    if plugins.get_plugin_manager().get_plugin(PLUGIN) is None:
        srplug.register_plugin(DualPlugin(), PLUGIN)


def trainer() -> DefaultTrainer:
    return DefaultTrainer(progress=False, log=lambda message: None)


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def hr4(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("dual") / "hr", 3, (48, 56), seed=3)


@pytest.fixture(scope="module")
def lr4(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("dual") / "lr", 3, (20, 24), seed=4)


@pytest.fixture
def dual_recipe(recipe_dict, hr4) -> dict:
    raw = copy.deepcopy(recipe_dict)
    raw["kind"] = "dual"
    raw["model"].update(name="tiny-drn", scale=4, options={})
    raw["data"].update(train=[str(hr4)], patch_size=16, batch_size=2)
    raw["validation"]["sets"] = []
    raw["schedule"].update(steps=6, warmup=0)
    raw["checkpoint"].update(every=3, keep=0)
    return raw


def test_lr_pyramid_is_matlab_bicubic_of_hr():
    hr = torch.rand(2, 3, 32, 32)
    levels = lr_pyramid(hr, 8)
    assert [tuple(t.shape[-2:]) for t in levels] == [(4, 4), (8, 8), (16, 16)]
    assert torch.allclose(levels[1], imresize(hr, 0.25))


def objective(recipe: dict, model: nn.Module) -> DualObjective:
    return DualObjective(load_recipe(recipe), model, nn.L1Loss(), DistContext())


def test_paired_loss_matches_a_hand_computation(dual_recipe):
    model = TinyDRN(4)
    obj = objective(dual_recipe, model)
    lr, hr = torch.rand(2, 3, 6, 6), torch.rand(2, 3, 24, 24)
    loss, terms = obj.generator_loss(obj.training_module(), lr, hr, "fp32")
    l1 = nn.functional.l1_loss
    p1, p2, p4 = model.forward_all(lr)
    x2 = imresize(hr, 0.5)
    primal = l1(p4, hr) + l1(p1, lr) + l1(p2, x2)
    duals = model.dual_models
    dual = l1(duals[0](p2), lr) + l1(duals[1](p4), x2)
    assert loss.item() == pytest.approx((primal + 0.1 * dual).item(), rel=1e-6)
    assert terms == pytest.approx({"primal": primal.item(), "dual": dual.item()}, rel=1e-6)


def test_unpaired_loss_maps_every_output_back_to_lr(dual_recipe):
    raw = copy.deepcopy(dual_recipe)
    raw["dual"] = {"unpaired": True}
    model = TinyDRN(4)
    obj = objective(raw, model)
    assert not obj.paired
    lr = torch.rand(2, 3, 6, 6)
    loss, terms = obj.generator_loss(obj.training_module(), lr, lr, "fp32")
    _, p2, p4 = model.forward_all(lr)
    d0, d1 = model.dual_models
    l1 = nn.functional.l1_loss
    want = l1(d0(p2), lr) + l1(d0(d1(p4)), lr)
    assert loss.item() == pytest.approx(want.item(), rel=1e-6) and set(terms) == {"dual"}


def test_known_degradation_as_the_dual(dual_recipe):
    raw = copy.deepcopy(dual_recipe)
    spec = [{"op": "blur", "sigma": [1.0, 1.0], "kernel_size": 5}, {"op": "downscale"}]
    raw["dual"] = {"unpaired": True, "degradation": spec}
    model = TinyDRN(4)
    obj = objective(raw, model)
    assert obj.extra_parameters() == []
    lr = torch.rand(1, 3, 6, 6)
    loss, _ = obj.generator_loss(obj.training_module(), lr, lr, "fp32")
    from srplug.adapters.kornia import build_degradation

    want = nn.functional.l1_loss(build_degradation(spec, 4)(model(lr).clamp(0, 1)), lr)
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    loss.backward()
    assert model.steps[-1].weight.grad is not None


def test_paired_training_trains_primal_and_duals(dual_recipe, tmp_path):
    result = trainer().fit(dual_recipe, output_dir=tmp_path / "run")
    lines = [r for r in read_log(tmp_path / "run") if "loss" in r]
    assert len(lines) == 6 and all(set(r["terms"]) == {"primal", "dual"} for r in lines)
    state = load_training_checkpoint(result.checkpoint)
    assert "objective" not in state  # the duals are part of the model's own state
    assert any(k.startswith("duals.") for k in state["model"])
    assert state["optimizer"]["state"][0]["step"] == 6 and result.weights is not None
    # Both the primal and the dual parameters are in the optimizer.
    assert len(state["optimizer"]["state"]) == len(state["model"])


def test_external_duals_are_trained_checkpointed_and_resumed(dual_recipe, tmp_path):
    raw = copy.deepcopy(dual_recipe)
    raw["model"]["name"] = "tiny-drn-ext"
    full = trainer().fit(raw, output_dir=tmp_path / "full")
    first = trainer().fit(raw, output_dir=tmp_path / "split", stop_at=3)
    start = load_training_checkpoint(first.checkpoint)["objective"]["dual_models"]
    second = trainer().resume(first.checkpoint)
    assert read_log(tmp_path / "split") == read_log(tmp_path / "full")
    a = load_training_checkpoint(full.checkpoint)["objective"]["dual_models"]
    b = load_training_checkpoint(second.checkpoint)["objective"]["dual_models"]
    assert len(a) == 2 and all(
        torch.equal(x[k], y[k]) for x, y in zip(a, b, strict=True) for k in x
    )
    assert not torch.equal(a[1]["weight"], start[1]["weight"])  # trained after step 3


def test_unpaired_training_reads_lr_only_images(dual_recipe, lr4, tmp_path):
    raw = copy.deepcopy(dual_recipe)
    raw["data"]["train"] = [str(lr4)]  # 20x24 LR images: too small to be HR of 16px
    raw["dual"] = {"unpaired": True, "train_dual": False}
    raw["precision"]["mode"] = "auto"
    messages: list[str] = []
    t = DefaultTrainer(progress=False, log=messages.append)
    result = t.fit(raw, output_dir=tmp_path / "run")
    assert any("LR-only data" in m for m in messages)
    lines = [r for r in read_log(tmp_path / "run") if "loss" in r]
    assert all(set(r["terms"]) == {"dual"} for r in lines)
    assert result.steps == 6 and result.weights is not None


def test_frozen_duals_do_not_move(dual_recipe, lr4, tmp_path):
    raw = copy.deepcopy(dual_recipe)
    raw["data"]["train"] = [str(lr4)]
    raw["dual"] = {"unpaired": True, "train_dual": False}
    raw["schedule"]["steps"] = 2
    torch.manual_seed(0)
    t = trainer()
    t.fit(raw, output_dir=tmp_path / "run")
    run = t._last
    assert run is not None
    model = run.model
    assert all(not p.requires_grad for p in model.duals.parameters())
    assert all(p.requires_grad for p in model.steps.parameters())


def test_lr_patches_are_seeded_crops(lr4):
    data = LRPatches([lr4], 4, 16, seed=1)
    lr, placeholder = data[5]
    assert lr.shape == (3, 4, 4) and lr is placeholder
    assert torch.equal(data[5][0], LRPatches([lr4], 4, 16, seed=1)[5][0])
    y, _ = LRPatches([lr4], 4, 16, channels="y")[0]
    assert y.shape == (1, 4, 4)


def test_refusals(dual_recipe, tmp_path):
    raw = copy.deepcopy(dual_recipe)
    raw["model"]["name"] = "tiny-nodual"
    with pytest.raises(InputError, match="no forward_all"):
        trainer().fit(raw, output_dir=tmp_path / "a")
    raw = copy.deepcopy(dual_recipe)
    raw["model"]["scale"] = 3
    raw["data"]["patch_size"] = 12
    with pytest.raises(InputError, match="power-of-two scale"):
        load_recipe(raw)
    raw = copy.deepcopy(dual_recipe)
    raw["kind"] = "pixel"
    raw["dual"] = {"unpaired": True}
    with pytest.raises(InputError, match=r"dual\.unpaired.*only applies to kind = 'dual'"):
        load_recipe(raw)
    raw = copy.deepcopy(dual_recipe)
    raw["dual"] = {"degradation": [{"op": "blur"}]}
    with pytest.raises(InputError, match=r"dual\.degradation.*Downscale"):
        load_recipe(raw)
    with pytest.raises(InputError, match="needs 3 dual_models for x8"):
        objective({**dual_recipe, "model": {"name": "tiny-drn", "scale": 8}}, TinyDRN(4))


@pytest.mark.parametrize("name", ["drn-s_x4.toml", "drn-s_x4_unpaired.toml"])
def test_shipped_recipes_load(name):
    recipe = load_recipe(read_recipe_file(REPO_ROOT / "recipes" / name))
    assert recipe.kind == "dual" and recipe.model.scale == 4
    assert recipe.dual.unpaired == name.endswith("unpaired.toml")


def test_drn_plugin_trains_with_dual_regression(dual_recipe, tmp_path):
    if "drn-s" not in srplug.list():
        pytest.skip("the srplug-drn plugin is not installed")
    raw = copy.deepcopy(dual_recipe)
    raw["model"].update(name="drn-s", options={"n_blocks": 1, "n_feats": 4})
    raw["schedule"]["steps"] = 2
    result = trainer().fit(raw, output_dir=tmp_path / "run")
    lines = [r for r in read_log(tmp_path / "run") if "loss" in r]
    assert all(set(r["terms"]) == {"primal", "dual"} for r in lines)
    state = load_training_checkpoint(result.checkpoint)
    assert any(k.startswith("dual_models.1.") for k in state["model"])
    up = srplug.get("drn-s", 4, weights=result.weights, n_blocks=1, n_feats=4)
    assert up(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)
