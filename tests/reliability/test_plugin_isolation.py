"""One bad plugin never breaks the others: raising at import, a broken model, a slow import.

``tests/test_plugins.py`` checks each failure alone; here they are installed together, next
to a good plugin, and checked through ``list`` / ``get`` and the ``srplug plugins`` command.
"""

from __future__ import annotations

import contextlib
import io
import json
import time

import numpy as np
import pytest

import srplug
from srplug import cli, plugins
from tests.helpers.fake_dist import forget_modules_under, tiny_model_source, write_plugin_dist

SLOW_IMPORT_S = 1.0

BROKEN_MODEL = """
import srplug


def build(scale):
    raise RuntimeError("my weights are missing")


@srplug.hookimpl
def register_models(register):
    register(srplug.ModelSpec(name="broken-net", build=build))
"""

WRONG_SHAPE = """
import torch
import srplug


class Shrinks(torch.nn.Module):
    def forward(self, x):
        return x[..., ::2, ::2]


@srplug.hookimpl
def register_models(register):
    register(srplug.ModelSpec(name="wrong-shape-net", build=lambda scale: Shrinks()))
"""


@pytest.fixture
def bad_neighbours(tmp_path, monkeypatch: pytest.MonkeyPatch):
    plugins.reset()
    write_plugin_dist(tmp_path, "srplug-good", "good_plugin", tiny_model_source("good-net"))
    write_plugin_dist(tmp_path, "srplug-crash", "crash_plugin", "raise ImportError('no cuda')\n")
    write_plugin_dist(
        tmp_path, "srplug-syntax", "syntax_plugin", "def register_models(:\n    pass\n"
    )
    write_plugin_dist(tmp_path, "srplug-broken", "broken_plugin", BROKEN_MODEL)
    write_plugin_dist(tmp_path, "srplug-wrong", "wrong_plugin", WRONG_SHAPE)
    slow = f"import time\ntime.sleep({SLOW_IMPORT_S})\n" + tiny_model_source("slow-net")
    write_plugin_dist(tmp_path, "srplug-slow", "slow_plugin", slow)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    plugins.reset()
    forget_modules_under(tmp_path)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_bad_plugins_do_not_break_list_and_get(bad_neighbours) -> None:
    start = time.monotonic()
    names = srplug.list()
    assert time.monotonic() - start >= SLOW_IMPORT_S  # the slow plugin was waited for ...
    assert {"good-net", "slow-net", "broken-net", "bicubic", "espcn"} <= set(names)
    start = time.monotonic()
    srplug.list()
    assert time.monotonic() - start < SLOW_IMPORT_S  # ... once per process, not per lookup

    img = np.zeros((3, 3, 3), np.uint8)
    for name in ("good-net", "slow-net", "bicubic"):
        assert srplug.get(name, 2, weights=None)(img).shape == (6, 6, 3)
    assert srplug.get("espcn", 4)(img).shape == (12, 12, 3)


def test_a_broken_model_fails_alone_with_its_error(bad_neighbours) -> None:
    with pytest.raises(Exception, match="my weights are missing") as info:
        srplug.get("broken-net", 2, weights=None)
    # registry._build lets a plugin's own exception through (see the report): it is still
    # confined to that model.
    assert info.type in (RuntimeError, srplug.PluginError)
    with pytest.raises(srplug.PluginError, match="wrong-shape-net"):
        srplug.get("wrong-shape-net", 2, weights=None)(np.zeros((4, 4, 3), np.uint8))
    assert srplug.get("good-net", 2, weights=None) is not None


def test_plugins_command_reports_each_state(bad_neighbours) -> None:
    code, out, err = run_cli("plugins", "--json")
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["srplug-good"]["state"] == "loaded"
    assert rows["srplug-good"]["models"] == ["good-net"]
    assert rows["srplug-slow"]["state"] == "loaded"  # slow is not an error
    assert rows["srplug-crash"]["state"] == "failed"
    assert "ImportError: no cuda" in rows["srplug-crash"]["error"]
    assert rows["srplug-syntax"]["state"] == "failed"
    assert "SyntaxError" in rows["srplug-syntax"]["error"]
    # A model that fails only when built is not known to be broken until then.
    assert rows["srplug-broken"]["state"] == "loaded"

    code, out, _ = run_cli("plugins")
    assert code == 0 and "srplug-crash" in out and "failed" in out

    code, out, _ = run_cli("list")
    assert code == 0 and "good-net" in out and "slow-net" in out


def test_cli_reports_a_broken_model_as_an_error(bad_neighbours, tmp_path) -> None:
    code, _, err = run_cli("upscale", "broken-net", "-w", "none", "-o", str(tmp_path))
    assert code == 1 and err.startswith("srplug: error:") and "broken-net" in err
    assert "my weights are missing" in err
