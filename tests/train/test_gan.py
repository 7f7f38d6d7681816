"""GAN training (recipe kind = "gan"): losses, the discriminator, the objective in the
trainer (logged terms, checkpointed discriminator, exact resume) and recipe checks."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from srplug.errors import InputError
from srplug.train import DefaultTrainer
from srplug.train.checkpoint import load_training_checkpoint
from srplug.train.gan import (
    Discriminator,
    VGGFeatureLoss,
    adversarial_loss,
    build_discriminator,
)
from srplug.train.recipe import load_recipe, read_recipe_file
from srplug.weights import save_safetensors
from tests.conftest import REPO_ROOT
from tests.test_perceptual import random_vgg_state


def trainer() -> DefaultTrainer:
    return DefaultTrainer(progress=False, log=lambda message: None)


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    return save_safetensors(
        random_vgg_state(), tmp_path_factory.mktemp("vgg") / "vgg16.safetensors"
    )


@pytest.fixture
def gan_recipe(recipe_dict, vgg_file) -> dict:
    raw = copy.deepcopy(recipe_dict)
    raw["model"].update(name="tiny-rgb", options={"width": 4})
    raw["kind"] = "gan"
    raw["gan"] = {
        "discriminator_options": {"base": 4, "dense": 8, "pool": 1},
        "feature_layer": "relu2_2",
        "vgg_weights": str(vgg_file),
        "pixel_weight": 1.0,
        "adversarial_weight": 0.01,
        "d_lr": 1e-3,
    }
    return raw


def test_discriminator_maps_any_patch_to_one_logit():
    d = Discriminator(base=4, dense=8)
    assert d(torch.rand(2, 3, 96, 96)).shape == (2, 1)
    assert d(torch.rand(3, 3, 40, 56)).shape == (3, 1)
    with pytest.raises(InputError, match=">= 1"):
        Discriminator(base=0)


def test_build_discriminator_by_import_path():
    d = build_discriminator("srplug.train.gan:Discriminator", {"base": 2, "dense": 4})
    assert isinstance(d, Discriminator)
    with pytest.raises(InputError, match="cannot be imported"):
        build_discriminator("no_such_package.mod:D", {})
    with pytest.raises(InputError, match="package.module:Class"):
        build_discriminator("Discriminator", {})
    with pytest.raises(InputError, match="do not fit"):
        build_discriminator("default", {"width": 3})


def test_adversarial_losses_have_their_textbook_values():
    real, fake = torch.tensor([[2.0], [1.0]]), torch.tensor([[-1.0], [0.0]])
    softplus = torch.nn.functional.softplus
    d = adversarial_loss("vanilla", real, fake, for_discriminator=True)
    assert d.item() == pytest.approx((softplus(-real).mean() + softplus(fake).mean()).item())
    g = adversarial_loss("vanilla", real, fake, for_discriminator=False)
    assert g.item() == pytest.approx(softplus(-fake).mean().item())
    assert adversarial_loss("lsgan", real, fake, for_discriminator=False).item() == pytest.approx(
        0.5 * (4 + 1) / 2
    )
    # RaGAN: the generator's loss is the discriminator's with real and fake swapped.
    rd = adversarial_loss("ragan", real, fake, for_discriminator=True)
    rg = adversarial_loss("ragan", fake, real, for_discriminator=False)
    assert rd.item() == pytest.approx(rg.item())
    # A discriminator that separates well has a loss below chance (2 log 2, two BCE terms);
    # the generator's is then above chance (log 2).
    assert d.item() < 2 * math.log(2) and g.item() > math.log(2)
    with pytest.raises(InputError, match="unknown gan_type"):
        adversarial_loss("wgan", real, fake, for_discriminator=True)


def test_feature_loss_is_zero_for_identical_images_and_passes_gradients():
    loss = VGGFeatureLoss("relu2_2", state_dict=random_vgg_state(), criterion="l1")
    x = torch.rand(2, 3, 16, 16)
    assert loss(x, x).item() == 0.0
    sr = torch.rand(2, 1, 16, 16, requires_grad=True)  # Y input is repeated to RGB
    loss(sr, torch.rand(2, 1, 16, 16)).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_gan_training_logs_terms_and_checkpoints_the_discriminator(gan_recipe, tmp_path):
    result = trainer().fit(gan_recipe, output_dir=tmp_path / "run")
    assert result.steps == 12 and result.weights is not None
    lines = [r for r in read_log(tmp_path / "run") if "loss" in r]
    assert len(lines) == 12
    for r in lines:
        assert set(r["terms"]) == {"pixel", "feature", "adversarial", "d_loss", "d_acc"}
        g = gan_recipe["gan"]
        t = r["terms"]
        assert r["loss"] == pytest.approx(
            t["pixel"] + t["feature"] + g["adversarial_weight"] * t["adversarial"], rel=1e-5
        )
    state = load_training_checkpoint(result.checkpoint)
    disc = state["objective"]["discriminator"]
    assert any(k.endswith("running_mean") for k in disc)
    assert state["objective"]["d_optimizer"]["state"][0]["step"] == 12
    # The exported weights are the generator only.
    assert not any("features" in k for k in state["model"])


def test_gan_resume_continues_exactly(gan_recipe, tmp_path):
    full = trainer().fit(gan_recipe, output_dir=tmp_path / "full")
    first = trainer().fit(gan_recipe, output_dir=tmp_path / "split", stop_at=5)
    second = trainer().resume(first.checkpoint)
    assert read_log(tmp_path / "split") == read_log(tmp_path / "full")
    a = load_training_checkpoint(full.checkpoint)
    b = load_training_checkpoint(second.checkpoint)
    for key in ("model",):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    da, db = a["objective"]["discriminator"], b["objective"]["discriminator"]
    assert all(torch.equal(da[k], db[k]) for k in da)


def test_starting_from_phase_one_weights(recipe_dict, gan_recipe, tmp_path):
    """The two-phase recipe: a pixel-loss run, then GAN from its exported weights."""
    phase1 = copy.deepcopy(recipe_dict)
    phase1["model"].update(name="tiny-rgb", options={"width": 4})
    phase1["schedule"]["steps"] = 4
    first = trainer().fit(phase1, output_dir=tmp_path / "phase1")
    phase2 = copy.deepcopy(gan_recipe)
    phase2["model"]["init"] = str(first.weights)
    phase2["schedule"].update(steps=2, warmup=0)
    messages: list[str] = []
    t = DefaultTrainer(progress=False, log=messages.append)
    second = t.fit(phase2, output_dir=tmp_path / "phase2")
    assert second.steps == 2 and second.weights is not None
    # Resuming a GAN run from a pixel-loss checkpoint is refused with a hint.
    state = load_training_checkpoint(first.checkpoint)
    state["recipe"] = load_recipe(phase2).to_dict()
    from srplug.train.checkpoint import save_atomic

    (tmp_path / "hybrid" / "checkpoints").mkdir(parents=True)
    bad = save_atomic(state, tmp_path / "hybrid" / "checkpoints" / "last.pt")
    with pytest.raises(InputError, match="no discriminator state"):
        trainer().resume(bad)


def test_recipe_checks(gan_recipe):
    bad = copy.deepcopy(gan_recipe)
    bad["gan"]["feature_layer"] = "relu5_4"
    with pytest.raises(InputError, match=r"gan\.feature_layer.*unknown VGG16 layer"):
        load_recipe(bad)
    bad = copy.deepcopy(gan_recipe)
    bad["gan"]["adversarial_weight"] = -1
    with pytest.raises(InputError, match="gan.adversarial_weight"):
        load_recipe(bad)
    bad = copy.deepcopy(gan_recipe)
    bad["kind"] = "wgan"
    with pytest.raises(InputError, match="'kind'"):
        load_recipe(bad)


@pytest.mark.parametrize("name", ["srresnet_x4.toml", "srgan_x4.toml"])
def test_shipped_recipes_load(name):
    recipe = load_recipe(read_recipe_file(REPO_ROOT / "recipes" / name))
    assert recipe.model.scale == 4 and recipe.data.patch_size == 96
    if name.startswith("srgan"):
        assert recipe.kind == "gan" and recipe.gan.adversarial_weight == pytest.approx(1e-3)
        assert recipe.model.init is not None


def test_srresnet_plugin_two_phases(recipe_dict, gan_recipe, tmp_path):
    """Integration with the srplug-srresnet plugin: srresnet (pixel) -> srgan (GAN) with its
    SRGANDiscriminator."""
    import srplug

    if not {"srresnet", "srgan"} <= set(srplug.list()):
        pytest.skip("the srplug-srresnet plugin is not installed")
    small = {"blocks": 1, "features": 8}
    phase1 = copy.deepcopy(recipe_dict)
    phase1["model"].update(name="srresnet", scale=4, options=small)
    phase1["data"].update(patch_size=16, batch_size=2)
    phase1["validation"]["sets"] = []
    phase1["schedule"].update(steps=2, warmup=0)
    first = trainer().fit(phase1, output_dir=tmp_path / "phase1")
    phase2 = copy.deepcopy(gan_recipe)
    phase2["model"] = {"name": "srgan", "scale": 4, "options": small, "init": str(first.weights)}
    phase2["data"].update(patch_size=16, batch_size=2)
    phase2["validation"]["sets"] = []
    phase2["schedule"].update(steps=2, warmup=0)
    phase2["gan"].update(
        discriminator="srplug_srresnet.discriminator:SRGANDiscriminator",
        discriminator_options={"features": 4, "input_size": 16},
    )
    second = trainer().fit(phase2, output_dir=tmp_path / "phase2")
    state = load_training_checkpoint(second.checkpoint)
    assert state["step"] == 2 and "discriminator" in state["objective"]
    assert srplug.get("srgan", 4, weights=second.weights, **small)(
        torch.rand(1, 3, 8, 8)
    ).shape == (1, 3, 32, 32)
