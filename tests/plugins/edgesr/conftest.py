"""Fixtures for the edge-SR plugin tests: the authors' model files and results table."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def find_third_party() -> Path | None:
    """``shared/weights/third_party`` ($SRPLUG_WEIGHTS, else beside the checkout), or None."""
    env = os.environ.get("SRPLUG_WEIGHTS")
    candidates = [Path(env) / "third_party"] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "weights" / "third_party")
    for candidate in candidates:
        if (candidate / "esr_model_files").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def esr_files() -> Path:
    """The folder of the authors' ``*.model`` files; skips when it is not there."""
    root = find_third_party()
    if root is None:
        pytest.skip("edge-SR model files not found (shared/weights/third_party/esr_model_files)")
    return root / "esr_model_files"


@pytest.fixture(scope="session")
def authors_results(esr_files: Path) -> dict[str, dict[str, str]]:
    """The authors' results table (``esr_authors_results.csv``) by model id."""
    path = esr_files.parent / "esr_authors_results.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with path.open(newline="") as fh:
        return {row["model"]: row for row in csv.DictReader(fh)}
