"""Runs the ``srplug`` command line with the tests' tiny models registered.

Used by the subprocess tests (kill -9 and resume, torchrun DDP). Environment switches:

- ``SRPLUG_TEST_PAUSE_AT=N`` and ``SRPLUG_TEST_PAUSE_FILE=PATH``: after step N, touch PATH
  and sleep (so the test can ``kill -9`` the run at a known point);
- ``SRPLUG_TEST_HASH_DIR=DIR``: after the last step, every rank writes
  ``DIR/rank<r>.json`` with a hash of its parameters and EMA weights.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from srplug import cli
from srplug.train import StepEvent, trainer
from tests.train import tiny_models


def state_hash(module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def pause(event: StepEvent) -> None:
    if event.step == int(os.environ["SRPLUG_TEST_PAUSE_AT"]):
        Path(os.environ["SRPLUG_TEST_PAUSE_FILE"]).write_text(str(os.getpid()))
        time.sleep(600)


def write_hash(event: StepEvent) -> None:
    if event.step == event.total:
        out = Path(os.environ["SRPLUG_TEST_HASH_DIR"]) / f"rank{event.rank}.json"
        record = {
            "rank": event.rank,
            "world_size": event.world_size,
            "model": state_hash(event.model),
            "ema": state_hash(event.ema) if event.ema is not None else None,
        }
        out.write_text(json.dumps(record))


def main() -> int:
    tiny_models.register()
    callbacks = []
    if "SRPLUG_TEST_PAUSE_AT" in os.environ:
        callbacks.append(pause)
    if "SRPLUG_TEST_HASH_DIR" in os.environ:
        callbacks.append(write_hash)
    # `srplug train` looks the class up when it runs: hand it one with our callbacks.
    trainer.DefaultTrainer = functools.partial(trainer.DefaultTrainer, callbacks=callbacks)
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
