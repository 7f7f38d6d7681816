"""The contract every registered model keeps, run over all of them (spandrel-style)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import srplug
from srplug.train.recipe import load_recipe, read_recipe_file

REPO_ROOT = Path(__file__).resolve().parents[1]


def _cases() -> list[tuple[str, int]]:
    cases = []
    for name, spec in sorted(srplug.models().items()):
        scales = spec.scales or (spec.resolved_default_scale(),)
        cases += [(name, scale) for scale in scales]
    return cases


CASES = _cases()


def test_some_models_are_registered():
    assert ("bicubic", 2) in CASES


@pytest.mark.parametrize("name,scale", CASES)
def test_model_contract(name, scale):
    spec = srplug.info(name)
    assert spec.plugin, "the registry records which plugin registered the spec"
    # smoke_options shrink deep models (fewer blocks) without changing their structure
    up = srplug.get(name, scale=scale, weights=None, **spec.smoke_options)
    assert isinstance(up, srplug.Upsampler)
    assert (up.name, up.scale, up.channels) == (name, scale, spec.channels)
    assert (up.model is None) == (not spec.network)
    # the raw network contract: (N, C, h, w) in [0, 1] -> (N, C, h*s, w*s)
    channels = 3 if spec.channels == "rgb" else 1
    x = torch.rand(2, channels, 11, 7)
    out = up.upscale_tensor(x)
    assert out.shape == (2, channels, 11 * scale, 7 * scale)
    assert torch.isfinite(out).all()
    # and through the image interface: same kind / dtype / channels back
    for img in (
        np.zeros((5, 6, 3), np.uint8),
        np.zeros((5, 6), np.uint16),
        np.zeros((5, 6, 4), np.float32),
    ):
        got = up(img)
        assert got.dtype == img.dtype
        assert got.shape == (5 * scale, 6 * scale, *img.shape[2:])


@pytest.mark.parametrize("name,scale", CASES)
def test_shipped_weights_load(name, scale):
    spec = srplug.info(name)
    for weights in spec.weights_for(scale):
        up = srplug.get(name, scale=scale, weights=weights.tag)
        assert up.scale == weights.scale
        if weights.card.params is not None and up.model is not None:
            assert sum(p.numel() for p in up.model.parameters()) == weights.card.params


@pytest.mark.parametrize("name,scale", CASES)
def test_shipped_weights_name_their_committed_recipe(name, scale):
    """Every shipped weight can be re-trained with one command: its card names a recipe that
    is committed in this repository and trains this model at this scale."""
    for weights in srplug.info(name).weights_for(scale):
        if weights.card.source != "srplug":
            continue
        assert weights.card.recipe, f"{name} x{scale}: the model card names no recipe"
        path = REPO_ROOT / weights.card.recipe
        assert path.is_file(), f"{name} x{scale}: recipe {weights.card.recipe} is not committed"
        recipe = load_recipe(read_recipe_file(path))
        assert (recipe.model.name, recipe.model.scale) == (name, scale)
        assert recipe.model.init is None, "a shipped recipe starts from scratch"
        assert recipe.precision.mode != "auto", (
            f"{weights.card.recipe}: precision 'auto' decides by timing the machine, so a "
            "re-run may train in another precision; write the mode the card's notes record"
        )
