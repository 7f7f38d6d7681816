"""The ``srplug`` command line.

Sub-commands come from plugins through the ``register_commands`` hook; the core's own
(``list``, ``info``, ``plugins``, ``upscale``, ``eval``) are registered the same way by
:mod:`srplug.default_commands`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from srplug import __version__, plugins
from srplug.errors import SrplugError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every plugin's sub-commands added."""
    parser = argparse.ArgumentParser(
        prog="srplug",
        description="Single-image super-resolution models from plugins.",
    )
    parser.add_argument("--version", action="version", version=f"srplug {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    pm = plugins.get_plugin_manager()
    for impl in pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(subparsers=subparsers)
        except Exception as exc:  # a broken plugin loses its commands, not the CLI
            plugins.record_failure(impl.plugin_name, exc)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code = func(args)
    except SrplugError as exc:
        print(f"srplug: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("srplug: interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else int(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
