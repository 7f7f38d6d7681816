"""Plugin discovery: the pluggy manager, lazy entry-point loading and the plugin report.

Plugins are found in the ``srplug`` entry-point group the first time something asks for a
model or a command, and only once per process. ``SRPLUG_DISABLE_PLUGINS`` (a comma-separated
list of entry-point or distribution names, or ``all``) keeps named plugins from loading. A
plugin that fails to import is recorded with its error and skipped; it never stops the others.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from srplug import hookspecs

__all__ = [
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "PluginStatus",
    "disabled_plugin_names",
    "get_plugin_manager",
    "load_entry_point_plugins",
    "plugin_statuses",
]

ENTRY_POINT_GROUP = "srplug"
DISABLE_ENV = "SRPLUG_DISABLE_PLUGINS"

# The core's own features register through the same hooks as everyone else's.
DEFAULT_PLUGINS = ("srplug.default_commands", "srplug.train.commands", "srplug.ops.commands")

State = Literal["loaded", "failed", "disabled", "conflict"]
"""``conflict``: loaded, but a model name it registers is already taken by another plugin."""


@dataclass
class PluginStatus:
    """One plugin as ``srplug plugins`` reports it."""

    name: str
    state: State
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    error: str | None = None
    """One-line reason when the plugin failed (import error, invalid registration ...)."""
    details: str | None = None
    """Full traceback of the failure, when there is one."""
    models: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "error": self.error,
            "models": list(self.models),
        }


_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_statuses: dict[str, PluginStatus] = {}
_entry_points_loaded = False


def disabled_plugin_names() -> set[str]:
    """Names listed in ``SRPLUG_DISABLE_PLUGINS`` (lower-cased; ``all`` disables every one)."""
    raw = os.environ.get(DISABLE_ENV, "")
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def _format_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def record_failure(
    name: str, exc: BaseException, *, state: State = "failed", **info: Any
) -> PluginStatus:
    """Mark plugin ``name`` as failed (or in conflict) with ``exc``, for ``srplug plugins``."""
    with _lock:
        status = _statuses.get(name) or PluginStatus(name=name, state=state)
        status.state = state
        previous = f"{status.error}; " if status.error and state == "conflict" else ""
        status.error = previous + _format_error(exc)
        status.details = "".join(traceback.format_exception(exc))
        for key, value in info.items():
            setattr(status, key, value)
        _statuses[name] = status
        return status


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def load_entry_point_plugins(pm: pluggy.PluginManager) -> None:
    """Import and register every ``srplug`` entry point not disabled (once per process)."""
    global _entry_points_loaded
    with _lock:
        if _entry_points_loaded:
            return
        _entry_points_loaded = True
        disabled = disabled_plugin_names()
        seen: set[str] = set()
        for ep in sorted(_entry_points(), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            info = {"distribution": dist, "version": version, "module": ep.value}
            if ep.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(ep.name)
            names = {ep.name.lower(), (dist or "").lower()}
            if "all" in disabled or names & disabled:
                _statuses[ep.name] = PluginStatus(name=ep.name, state="disabled", **info)
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must not break the others
                record_failure(ep.name, exc, **info)
                continue
            _statuses[ep.name] = PluginStatus(name=ep.name, state="loaded", **info)


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        module = __import__(module_name, fromlist=["_"])
        pm.register(module, name=module_name)
        _statuses[module_name] = PluginStatus(
            name=module_name, state="loaded", distribution="srplug", module=module_name
        )
    return pm


def get_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """The process-wide plugin manager, with entry-point plugins loaded on first use."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = _new_manager()
        if load_entry_points:
            load_entry_point_plugins(_manager)
        return _manager


def register_plugin(plugin: object, name: str) -> None:
    """Register an in-process plugin object (a module or instance with hook functions).

    Useful for applications and tests that define models without an installed distribution.
    The model registry picks the new plugin up on its next lookup.
    """
    with _lock:
        pm = get_plugin_manager()
        pm.register(plugin, name=name)
        _statuses[name] = PluginStatus(name=name, state="loaded", module=repr(plugin))
        from srplug import registry  # local import: registry depends on this module

        registry.invalidate()


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin` (or an entry-point one)."""
    with _lock:
        pm = get_plugin_manager()
        plugin = pm.get_plugin(name)
        if plugin is not None:
            pm.unregister(plugin)
        _statuses.pop(name, None)
        from srplug import registry

        registry.invalidate()


def plugin_statuses() -> list[PluginStatus]:
    """Every plugin seen so far (loading them first), sorted by name."""
    from srplug import registry

    registry.models()  # loads plugins and their registrations, filling in model lists
    with _lock:
        return [_statuses[name] for name in sorted(_statuses)]


def status_of(name: str) -> PluginStatus | None:
    with _lock:
        return _statuses.get(name)


def reset() -> None:
    """Forget every plugin; the next lookup discovers them again (for tests)."""
    global _manager, _entry_points_loaded
    with _lock:
        _manager = None
        _entry_points_loaded = False
        _statuses.clear()
        from srplug import registry

        registry.invalidate()
