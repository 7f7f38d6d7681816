"""Entry-point discovery: lazy, once, disable switch, broken plugins reported and skipped."""

from __future__ import annotations

import subprocess
import sys

import pytest

import srplug
from srplug import plugins
from tests.helpers.fake_dist import forget_modules_under, tiny_model_source, write_plugin_dist


@pytest.fixture
def fresh(tmp_path, monkeypatch: pytest.MonkeyPatch):
    plugins.reset()
    yield
    plugins.reset()
    forget_modules_under(tmp_path)


def test_entry_point_plugin_is_found(tmp_path, monkeypatch, fresh):
    write_plugin_dist(tmp_path, "srplug-alpha", "alpha_plugin", tiny_model_source("alpha-net"))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "alpha-net" in srplug.list()
    status = plugins.status_of("srplug-alpha")
    assert status is not None and status.state == "loaded"
    assert status.models == ["alpha-net"]
    assert status.distribution == "srplug-alpha"
    assert srplug.info("alpha-net").plugin == "srplug-alpha"


def test_plugins_load_once(tmp_path, monkeypatch, fresh):
    source = "import builtins\nbuiltins.SRPLUG_LOADS = getattr(builtins, 'SRPLUG_LOADS', 0) + 1\n"
    write_plugin_dist(tmp_path, "srplug-count", "count_plugin", source + tiny_model_source("c"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins

    monkeypatch.setattr(builtins, "SRPLUG_LOADS", 0, raising=False)
    for _ in range(3):
        srplug.list()
        srplug.info("c")
    assert builtins.SRPLUG_LOADS == 1


def test_import_does_not_load_plugins():
    code = (
        "import srplug, srplug.plugins as p, sys;"
        "assert p._manager is None, 'plugins loaded at import';"
        "assert 'srplug_bicubic' not in sys.modules; print('lazy')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "lazy" in out.stdout


def test_broken_import_is_reported_and_skipped(tmp_path, monkeypatch, fresh):
    write_plugin_dist(tmp_path, "srplug-broken", "broken_plugin", "raise RuntimeError('boom')\n")
    write_plugin_dist(tmp_path, "srplug-good", "good_plugin", tiny_model_source("good-net"))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "good-net" in srplug.list()
    status = plugins.status_of("srplug-broken")
    assert status.state == "failed"
    assert "RuntimeError: boom" in status.error
    assert "boom" in status.details


def test_plugin_raising_in_hook_is_skipped(tmp_path, monkeypatch, fresh):
    source = """
import srplug

@srplug.hookimpl
def register_models(register):
    raise ValueError("cannot build my model list")
"""
    write_plugin_dist(tmp_path, "srplug-raises", "raises_plugin", source)
    write_plugin_dist(tmp_path, "srplug-good", "good_plugin", tiny_model_source("good-net"))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert srplug.list("good*") == ["good-net"]
    assert "cannot build my model list" in plugins.status_of("srplug-raises").error


@pytest.mark.parametrize(
    "bad_registration",
    [
        "register('not a spec')",
        "register(srplug.ModelSpec(name='Bad Name', build=lambda scale: None))",
        "register(srplug.ModelSpec(name='ok-name', build=42))",
        "register(srplug.ModelSpec(name='ok-name', build=lambda scale: None, channels='bgr'))",
        "register(srplug.ModelSpec(name='ok-name', build=lambda scale: None, scales=(0,)))",
    ],
)
def test_invalid_registration_skips_the_plugin(tmp_path, monkeypatch, fresh, bad_registration):
    source = f"""
import srplug

@srplug.hookimpl
def register_models(register):
    register(srplug.ModelSpec(name='first-fine', build=lambda scale: None))
    {bad_registration}
"""
    write_plugin_dist(tmp_path, "srplug-invalid", "invalid_plugin", source)
    monkeypatch.syspath_prepend(str(tmp_path))
    names = srplug.list()
    assert "first-fine" not in names  # the whole plugin is skipped
    assert "bicubic" in names
    status = plugins.status_of("srplug-invalid")
    assert status.state == "failed" and status.error.startswith("PluginError")


def test_duplicate_name_names_both_plugins(tmp_path, monkeypatch, fresh):
    write_plugin_dist(tmp_path, "srplug-one", "one_plugin", tiny_model_source("twin", "solo-1"))
    write_plugin_dist(tmp_path, "srplug-two", "two_plugin", tiny_model_source("twin", "solo-2"))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(srplug.DuplicateModelError) as err:
        srplug.get("twin", weights=None)
    assert "srplug-one" in str(err.value) and "srplug-two" in str(err.value)
    assert isinstance(err.value, srplug.SrplugError)
    # the other models of both plugins still work
    assert srplug.get("solo-1", weights=None).scale == 2
    assert srplug.get("solo-2", weights=None).scale == 2
    status = plugins.status_of("srplug-two")
    assert status.state == "conflict" and "twin" in status.error
    assert status.models == ["solo-2"]


@pytest.mark.parametrize("value", ["srplug-alpha", "SRPLUG-ALPHA , other", "all"])
def test_disable_env(tmp_path, monkeypatch, fresh, value):
    write_plugin_dist(tmp_path, "srplug-alpha", "alpha_plugin", tiny_model_source("alpha-net"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SRPLUG_DISABLE_PLUGINS", value)
    assert "alpha-net" not in srplug.list()
    assert plugins.status_of("srplug-alpha").state == "disabled"


def test_disable_by_distribution_name(tmp_path, monkeypatch, fresh):
    write_plugin_dist(
        tmp_path, "srplug-beta", "beta_plugin", tiny_model_source("beta-net"), entry_name="beta"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SRPLUG_DISABLE_PLUGINS", "srplug-beta")
    assert "beta-net" not in srplug.list()
    assert plugins.status_of("beta").state == "disabled"


def test_register_plugin_in_process(fresh):
    class Local:
        @srplug.hookimpl
        def register_models(self, register):
            from tests.helpers.fake_dist import TINY_MODEL

            namespace = {"NAMES": []}
            exec(TINY_MODEL, namespace)
            register(
                srplug.ModelSpec(name="local-net", build=lambda scale: namespace["Tiny"](scale))
            )

    srplug.register_plugin(Local(), name="local")
    try:
        assert "local-net" in srplug.list()
        assert srplug.info("local-net").plugin == "local"
    finally:
        srplug.unregister_plugin("local")
    assert "local-net" not in srplug.list()
