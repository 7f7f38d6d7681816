"""Packaging: every sub-package of srplug is listed, so wheels are complete."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_packaged():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        "srplug." + ".".join(p.parent.relative_to(ROOT / "srplug").parts)
        for p in (ROOT / "srplug").rglob("__init__.py")
        if p.parent != ROOT / "srplug"
    }
    found.add("srplug")
    assert found - {"srplug.adapters"} <= listed
    assert config["package-dir"]["srplug.adapters"] == "adapters"


def test_every_plugin_is_in_requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    plugins = {p.parent.name for p in (ROOT / "plugins").glob("*/pyproject.toml")}
    assert plugins, "no plugin distributions found"
    for name in plugins:
        assert f"-e plugins/{name}" in lines, f"{name} missing from requirements.txt"
