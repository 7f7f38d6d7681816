"""Subprocess helpers for tests that start srplug in other processes (kill -9, torchrun)."""

from __future__ import annotations

import os
import subprocess
import sys

PROCESS_TIMEOUT = 300  # seconds; only a guard against a hung run, never a measurement


def environment(**extra: str) -> dict[str, str]:
    """This process's environment with one OpenMP thread per child, plus ``extra``."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def run_torchrun(
    *args: str, nproc: int = 2, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node=nproc *args`` with
    output captured (text); ``env`` defaults to :func:`environment`."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        *args,
    ]
    return subprocess.run(
        cmd,
        env=environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
