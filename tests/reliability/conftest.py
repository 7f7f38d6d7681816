"""Shared settings for the property-based (hypothesis) reliability tests.

CI runs a few dozen examples per property, derandomized, in a few seconds. The long run
sets ``SRPLUG_FUZZ_EXAMPLES=N`` (N examples per property, random seeds) and prints how many
cases each property ran::

    SRPLUG_FUZZ_EXAMPLES=1000 python -m pytest tests/reliability -q -p no:cacheprovider
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings

from srplug.errors import SrplugError
from tests.helpers.torch_utils import one_thread

FUZZ_ENV = "SRPLUG_FUZZ_EXAMPLES"
LONG_RUN = int(os.environ.get(FUZZ_ENV, "0") or 0)

CASES: Counter[str] = Counter()
"""Cases run per property (filled by :func:`outcome`)."""
REFUSED: Counter[str] = Counter()
"""Of those, how many ended in a srplug error (a refusal) rather than a result."""

T = TypeVar("T")


def fuzz(default: int) -> settings:
    """Hypothesis settings: ``default`` examples in CI, ``SRPLUG_FUZZ_EXAMPLES`` in the long
    run. No deadline (the machine is shared) and no example database (no files written)."""
    return settings(
        max_examples=LONG_RUN or default,
        deadline=None,
        database=None,
        derandomize=not LONG_RUN,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def scratch_dir(prefix: str) -> Path:
    """A temporary folder for module-level fixtures of hypothesis tests (which cannot use
    function-scoped ``tmp_path``), removed when the test process exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def outcome(name: str, call: Callable[[], T]) -> tuple[T | None, SrplugError | None]:
    """Run ``call``: its result, or the :class:`SrplugError` it raised. Anything else (a raw
    ``TypeError``, ``RuntimeError`` ...) propagates and fails the property."""
    CASES[name] += 1
    try:
        return call(), None
    except SrplugError as exc:
        REFUSED[name] += 1
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return None, exc


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Any:
    """One intra-op thread: many tiny calls on a shared machine."""
    with one_thread():
        yield


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not CASES or not LONG_RUN:  # the long run reports its case counts
        return
    terminalreporter.section("srplug fuzz cases")
    for name in sorted(CASES):
        terminalreporter.write_line(
            f"{name:28s} {CASES[name]:7d} cases, {REFUSED[name]:6d} refused with a srplug error"
        )
    terminalreporter.write_line(f"{'total':28s} {sum(CASES.values()):7d} cases")
