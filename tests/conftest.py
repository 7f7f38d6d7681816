"""Shared fixtures: where the benchmark images live, and an isolated srplug home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_data_root() -> Path | None:
    """The benchmark data folder: $SRPLUG_DATA, else ../shared/data beside the checkout."""
    env = os.environ.get("SRPLUG_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for candidate in candidates:
        if (candidate / "Set5").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = find_data_root()
    if root is None:
        pytest.skip(
            "benchmark images not found: set SRPLUG_DATA or place shared/data beside the repo"
        )
    return root


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own SRPLUG_HOME so nothing touches ~/.cache/srplug."""
    monkeypatch.setenv("SRPLUG_HOME", str(tmp_path_factory.mktemp("srplug_home")))
