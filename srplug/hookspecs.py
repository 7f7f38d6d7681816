"""Hook specifications: the functions a srplug plugin may implement.

A plugin is a module (or any object) with functions named like the hooks below and marked
with :data:`srplug.hookimpl`. It is found through the ``srplug`` entry-point group::

    [project.entry-points.srplug]
    mymodel = "srplug_mymodel"

and every hook receives a ``register`` callback rather than returning values, so one plugin
can register any number of things.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from srplug.registry import ModelSpec

PROJECT_NAME = "srplug"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register super-resolution models.

    Call ``register(spec)`` once per model with a :class:`srplug.ModelSpec`. A name that
    another plugin already registered is an error that names both plugins; an invalid spec is
    reported by ``srplug plugins`` and skipped.
    """


@hookspec
def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add sub-commands to the ``srplug`` command line.

    ``subparsers`` is the ``argparse`` sub-parser collection of the ``srplug`` command. Add a
    parser with ``subparsers.add_parser(name, help=...)`` and set ``func`` with
    ``parser.set_defaults(func=callable)``; the callable receives the parsed namespace and
    returns an exit code (``int``) or ``None`` for success.
    """
