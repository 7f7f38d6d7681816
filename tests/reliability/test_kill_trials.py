"""A short run of ``scripts/kill_trials.py``: SIGKILL a tiny training run twice at random
moments, check the checkpoints load and the resumed runs end with the reference weights.

The full run (20+ trials) is ``python scripts/kill_trials.py --trials 20``."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "kill_trials.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kill_trials", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_trials"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_two_kill_trials_survive(capsys: pytest.CaptureFixture[str]) -> None:
    script = load_script()
    code = script.main(["--trials", "2", "--steps", "12", "--every", "4", "--seed", "3", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert '"survived": 2' in out.out
