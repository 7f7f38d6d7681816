"""Training in other processes: ``kill -9`` then resume, and 2-process DDP under torchrun.

Both run ``srplug train`` through ``tests/train/runner.py``, which registers the tiny test
models first. Every process uses one intra-op thread, as the in-process reference runs do,
so the numbers are comparable bit for bit.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from srplug.train import DefaultTrainer
from srplug.train.checkpoint import load_training_checkpoint
from srplug.weights import load_state_dict_file
from tests.helpers.processes import PROCESS_TIMEOUT, environment, run_torchrun

RUNNER = Path(__file__).with_name("runner.py")


def losses(run: Path) -> dict[int, float]:
    lines = (run / "train_log.jsonl").read_text().splitlines()
    return {r["step"]: r["loss"] for r in map(json.loads, lines) if "loss" in r}


@pytest.fixture
def recipe_file(recipe_dict, tmp_path) -> Path:
    recipe = copy.deepcopy(recipe_dict)
    recipe["checkpoint"].update(every=4, keep=1)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def quiet(**kwargs) -> DefaultTrainer:
    return DefaultTrainer(progress=False, log=lambda message: None, **kwargs)


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"training exited ({proc.returncode}) before pausing: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("training never reached the pause step")
        time.sleep(0.05)


def test_kill_9_mid_run_then_resume_repeats_the_loss_trajectory(recipe_file, tmp_path):
    reference = quiet().fit(recipe_file, output_dir=tmp_path / "reference")
    run = tmp_path / "killed"
    marker = tmp_path / "paused"
    cmd = [sys.executable, str(RUNNER), "train", str(recipe_file), "-o", str(run), "--no-progress"]
    env = environment(SRPLUG_TEST_PAUSE_AT="6", SRPLUG_TEST_PAUSE_FILE=str(marker))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=PROCESS_TIMEOUT)
    assert proc.returncode == -signal.SIGKILL

    ckpt = run / "checkpoints" / "last.pt"
    assert load_training_checkpoint(ckpt)["step"] == 4  # steps 5 and 6 were lost
    assert sorted(losses(run)) == list(range(1, 7))
    resumed = subprocess.run(
        [sys.executable, str(RUNNER), "train", "--resume", str(ckpt), "--no-progress"],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at step 4 of 12" in resumed.stderr

    assert losses(run) == losses(tmp_path / "reference")  # steps 5-6 redone identically
    ours = load_state_dict_file(run / "tiny-y_x2.safetensors")
    theirs = load_state_dict_file(reference.weights)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_two_process_ddp_keeps_ranks_identical(recipe_file, tmp_path):
    run = tmp_path / "ddp"
    hashes = tmp_path / "hashes"
    hashes.mkdir()
    done = run_torchrun(
        str(RUNNER),
        "train",
        str(recipe_file),
        "-o",
        str(run),
        "--no-progress",
        env=environment(SRPLUG_TEST_HASH_DIR=str(hashes)),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((hashes / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["model"] == ranks[1]["model"]
    assert ranks[0]["ema"] == ranks[1]["ema"]
    assert done.stdout.count("trained 12 steps") == 1  # rank 0 reports alone

    final = load_training_checkpoint(run / "checkpoints" / "last.pt")
    assert len(final["rng"]) == 2 and final["sampler"]["world_size"] == 2
    assert (run / "tiny-y_x2.safetensors").is_file()
    # Two processes with half the batch each see the same patches as one with all of it.
    single = quiet().fit(recipe_file, output_dir=tmp_path / "single", stop_at=1)
    assert single.steps == 1
    assert losses(run)[1] == pytest.approx(losses(tmp_path / "single")[1], rel=1e-5)
