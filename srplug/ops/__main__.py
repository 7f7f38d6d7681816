"""``python -m srplug.ops build``: compile the extension into the cache ahead of time.

``python -m srplug.ops`` (or ``... status``) prints what ``srplug doctor`` prints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from srplug.ops.commands import _cmd_doctor

    parser = argparse.ArgumentParser(prog="python -m srplug.ops")
    parser.add_argument("action", nargs="?", choices=("build", "status"), default="status")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    return _cmd_doctor(argparse.Namespace(build=args.action == "build", json=args.json))


if __name__ == "__main__":
    sys.exit(main())
