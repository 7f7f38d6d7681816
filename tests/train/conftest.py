"""Fixtures for the trainer tests: tiny models, tiny synthetic HR folders, a tiny recipe."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from srplug.io import write_image
from srplug.resize import imresize_uint8
from srplug.train.recipe import read_recipe_file
from tests.conftest import REPO_ROOT
from tests.helpers.torch_utils import one_thread
from tests.train import tiny_models

TINY_RECIPE = REPO_ROOT / "recipes" / "tiny.toml"


def make_images(folder: Path, count: int, size: tuple[int, int], seed: int) -> Path:
    """``count`` smooth random RGB PNGs of ``size`` (H, W) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(count):
        coarse = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
        img = imresize_uint8(coarse, size=(4 * (h // 4 + 1), 4 * (w // 4 + 1)))[:h, :w]
        write_image(folder / f"img{i:02d}.png", img)
    return folder


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: fast on a busy 2-core machine, and the same in subprocesses."""
    with one_thread():
        yield


@pytest.fixture(scope="session")
def tiny():
    tiny_models.register()


@pytest.fixture(scope="session")
def hr_folder(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("train") / "hr", 4, (40, 52), seed=1)


@pytest.fixture(scope="session")
def val_folder(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("valdata") / "val", 2, (36, 44), seed=2)


@pytest.fixture
def recipe_dict(tiny, hr_folder, val_folder) -> dict[str, Any]:
    """``recipes/tiny.toml`` pointed at the tiny model and folders: 12 steps, fp32."""
    raw = copy.deepcopy(read_recipe_file(TINY_RECIPE))
    raw["model"]["name"] = "tiny-y"
    raw["data"].update(train=[str(hr_folder)], patch_size=16, batch_size=4)
    raw["schedule"].update(steps=12, warmup=2)
    raw["validation"].update(sets=[str(val_folder)], every=6)
    raw["checkpoint"].update(every=6, keep=2)
    raw["precision"]["mode"] = "fp32"
    raw["log_every"] = 1
    return raw
