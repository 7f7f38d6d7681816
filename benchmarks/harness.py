"""What the benchmark scripts share: interleaved timing and worker subprocesses.

:func:`interleaved_times` times contenders side by side in one run (:func:`wall_seconds` makes
a contender of a plain call). :class:`JsonWorker` runs
a benchmark script as a worker in another Python environment (``python SCRIPT --worker
--threads N``), driven by one JSON object per line each way: the worker prints a hello line
first, then answers every command line with one line; ``{"cmd": "quit"}`` (or end of input)
stops it. Standard library only, so the worker side can import this module anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def wall_seconds(fn: Callable[[], object]) -> Callable[[], float]:
    """A contender for :func:`interleaved_times`: calls ``fn()`` and returns its wall-clock
    seconds."""

    def timed() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return timed


def interleaved_times(
    contenders: Mapping[str, Callable[[], float]], rounds: int, *, log: bool = False
) -> dict[str, list[float]]:
    """Per contender, the times its calls return (each call times itself), after one
    warm-up call each; in every round each contender runs once, the order reversed every
    other round so that none always runs first under the machine's changing load."""
    for fn in contenders.values():  # warm-up (and any build or JIT on first use)
        fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    order = list(contenders.items())
    for i in range(rounds):
        for key, fn in order if i % 2 == 0 else order[::-1]:
            times[key].append(fn())
        if log:
            print(f"  round {i + 1}/{rounds}", file=sys.stderr, flush=True)
    return times


class JsonWorker:
    """The worker subprocess running ``script`` under ``python``; :attr:`hello` is its first
    line. ``name`` goes into the error raised when it dies, ``env`` is added to its
    environment, ``quit_timeout`` is how long :meth:`close` waits for it to exit."""

    def __init__(
        self,
        script: str | Path,
        python: str,
        threads: int,
        *,
        name: str,
        env: dict[str, str] | None = None,
        quit_timeout: float = 60.0,
    ) -> None:
        self.name, self.quit_timeout = name, quit_timeout
        self.proc = subprocess.Popen(
            [python, str(Path(script).resolve()), "--worker", "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.name} worker died (exit code {self.proc.wait()})")
        return json.loads(line)

    def ask(self, **cmd: Any) -> dict[str, Any]:
        """Send one command, return the worker's one-line answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Tell the worker to quit and wait for it."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=self.quit_timeout)
