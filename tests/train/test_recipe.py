"""Recipes: TOML and YAML files, defaults, and errors that name the offending key."""

from __future__ import annotations

import sys

import pytest

from srplug.errors import InputError
from srplug.train import Recipe, load_recipe
from srplug.train.recipe import read_recipe_file
from tests.train.conftest import TINY_RECIPE

TOML = """
seed = 3
[model]
name = "fsrcnn"
scale = 3
options = { d = 32, s = 5 }
[data]
train = ["T91", "BSD200"]
patch_size = 48
batch_size = 32
hr_scales = [1.0, 0.8]
[schedule]
steps = 1000
kind = "step"
milestones = [500, 800]
gamma = 0.1
[loss]
kind = "charbonnier"
eps = 1e-6
[precision]
mode = "bf16"
"""

YAML = """
seed: 3
model: {name: fsrcnn, scale: 3, options: {d: 32, s: 5}}
data:
  train: [T91, BSD200]
  patch_size: 48
  batch_size: 32
  hr_scales: [1.0, 0.8]
schedule: {steps: 1000, kind: step, milestones: [500, 800], gamma: 0.1}
loss: {kind: charbonnier, eps: 1.0e-6}
precision: {mode: bf16}
"""

MINIMAL = {
    "model": {"name": "m", "scale": 2},
    "data": {"train": ["T91"]},
    "schedule": {"steps": 10},
}


def test_toml_and_yaml_give_the_same_recipe(tmp_path):
    (tmp_path / "r.toml").write_text(TOML)
    (tmp_path / "r.yaml").write_text(YAML)
    from_toml = load_recipe(tmp_path / "r.toml")
    from_yaml = load_recipe(str(tmp_path / "r.yaml"))
    assert from_toml == from_yaml
    assert from_toml.model.options == {"d": 32, "s": 5}
    assert from_toml.data.train == ("T91", "BSD200")
    assert from_toml.data.hr_scales == (1.0, 0.8)
    assert from_toml.schedule.milestones == (500, 800)
    assert from_toml.loss.kind == "charbonnier" and from_toml.loss.eps == 1e-6
    assert from_toml.precision.mode == "bf16"
    assert from_toml.seed == 3


def test_defaults_fill_missing_sections():
    r = load_recipe(MINIMAL)
    assert r.optim.name == "adam" and r.optim.lr == 1e-3 and r.optim.betas == (0.9, 0.999)
    assert r.schedule.kind == "cosine" and r.loss.kind == "l1"
    assert r.ema.enabled and r.precision.mode == "fp32"
    assert r.data.patch_size == 64 and r.data.flip and r.data.rot90
    assert r.final_sets == r.validation.sets == ()


def test_round_trip_through_plain_dict():
    r = load_recipe(TINY_RECIPE)
    plain = r.to_dict()
    assert isinstance(plain["data"]["train"], list)
    assert Recipe.from_dict(plain) == r
    assert r.with_steps(70).schedule.steps == 70 and r.schedule.steps == 200


def test_tiny_recipe_sets_every_key():
    """The example recipe documents every key: nothing is left to a default."""
    raw = read_recipe_file(TINY_RECIPE)
    recipe = load_recipe(raw)
    commented_out = {"model.init", "data.root", "validation.final_sets"}
    for section in ("model", "data", "optim", "schedule", "loss", "ema", "validation"):
        for key in getattr(recipe, section).__dataclass_fields__:
            if f"{section}.{key}" not in commented_out and key != "milestones":
                assert key in raw[section], f"{section}.{key} missing from tiny.toml"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            {"data": {"train": ["T91"], "pach_size": 8}},
            "'data.pach_size': unknown key; did you mean 'patch_size'",
        ),
        ({"bogus": 1}, "'bogus': unknown key"),
        (
            {"data": {"train": ["T91"], "patch_size": "big"}},
            "'data.patch_size': must be an integer",
        ),
        ({"data": {"train": ["T91"], "flip": 1}}, "'data.flip': must be true/false"),
        ({"data": {"train": "T91"}}, "'data.train': must be a list of a string"),
        ({"data": {"train": ["T91"], "patch_size": 33}}, "not a multiple of model.scale"),
        ({"optim": {"name": "sgd"}}, "'optim.name': must be 'adam' or 'adamw'"),
        ({"optim": {"betas": [0.9]}}, "'optim.betas': must be a list of 2"),
        ({"optim": {"lr": -1}}, "'optim.lr': must be positive"),
        ({"optim": {"lr_scale": {"deconv.*": 0}}}, "'optim.lr_scale.deconv.*': must be"),
        ({"optim": {"lr_scale": {"deconv.*": "x"}}}, "'optim.lr_scale.deconv.*': must be"),
        ({"optim": {"lr_scale": [0.1]}}, "'optim.lr_scale': must be a table"),
        ({"schedule": {"steps": 0}}, "'schedule.steps'"),
        ({"schedule": {"steps": 10, "milestones": [5]}}, "only applies to kind = 'step'"),
        ({"schedule": {"steps": 10, "kind": "step", "milestones": [12]}}, "below schedule.steps"),
        ({"loss": {"border": -1}}, "'loss.border': must be 0 or more"),
        ({"loss": {"border": 2, "border_weight": 1.0}}, "'loss.border_weight': must be in"),
        ({"loss": {"border_weight": 0.5}}, "'loss.border_weight': only applies with"),
        (
            {"data": {"train": ["T91"], "patch_size": 16}, "loss": {"border": 8}},
            "'loss.border': 8 leaves nothing of a 16-pixel patch",
        ),
        ({"ema": {"decay": 1.0}}, "'ema.decay'"),
        ({"precision": {"mode": "fp8"}}, "'precision.mode'"),
        ({"model": {"name": "m"}}, "'model.scale': is required but missing"),
        ({"model": {"name": "m", "scale": 2, "options": {"f": {1, 2}}}}, "'model.options.f'"),
        ({"data": [1]}, "'data': must be a table"),
    ],
)
def test_bad_recipes_name_the_key(change, needle):
    raw = {**MINIMAL, **change}
    with pytest.raises(InputError) as info:
        load_recipe(raw)
    assert needle in str(info.value)


def test_missing_section_is_named():
    with pytest.raises(InputError, match="'schedule': is required"):
        load_recipe({k: v for k, v in MINIMAL.items() if k != "schedule"})


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nname = 1")
    with pytest.raises(InputError, match="bad.toml is not valid TOML"):
        load_recipe(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[model]\nname = "m"\nscale = "two"\n')
    with pytest.raises(InputError, match=r"wrong\.toml: recipe key 'model.scale'"):
        load_recipe(wrong)
    with pytest.raises(InputError, match="unknown suffix"):
        load_recipe(tmp_path / "r.ini")
    with pytest.raises(InputError, match="does not exist"):
        load_recipe(tmp_path / "missing.toml")


def test_yaml_without_pyyaml_says_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "r.yaml").write_text(YAML)
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(InputError, match=r"needs PyYAML: pip install 'srplug\[yaml\]'"):
        load_recipe(tmp_path / "r.yaml")
