"""``kill -9`` a tiny training run at random moments; check it never leaves a corrupt checkpoint.

Each trial starts ``srplug train`` (through ``tests/train/runner.py``, which registers the
tests' tiny model) on a few synthetic images, sends SIGKILL after a random delay, then checks:

1. every ``*.pt`` file in ``checkpoints/`` loads with ``weights_only=True``;
2. the newest checkpoint lags the last step the run had logged by at most one checkpoint
   interval (nothing more than the work since the last checkpoint is lost);
3. ``srplug train --resume`` (or a fresh start, when the kill came before the first
   checkpoint) reaches the last step, and its exported weights equal, bit for bit, those of an
   uninterrupted reference run.

Usage (the numbers of the report came from the defaults)::

    python scripts/kill_trials.py --trials 20 [--steps 40] [--every 4] [--seed 0] [--json]

Exit status 0 when every trial survived. Every process uses one intra-op thread.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RUNNER = REPO / "tests" / "train" / "runner.py"
PROCESS_TIMEOUT = 600  # seconds; a guard against a hung run


@dataclass
class Trial:
    """What one trial saw."""

    index: int
    kill_after_s: float
    killed: bool = False
    logged_step: int = 0
    checkpoint_step: int | None = None
    checkpoints: list[str] = field(default_factory=list)
    stray_temporaries: list[str] = field(default_factory=list)
    restarted_from_scratch: bool = False
    survived: bool = False
    problem: str = ""


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def make_recipe(folder: Path, steps: int, every: int) -> Path:
    """The tests' tiny recipe (``recipes/tiny.toml`` on ``tiny-y``) with ``steps`` steps."""
    import yaml

    from srplug.train.recipe import read_recipe_file
    from tests.train.conftest import make_images

    hr = make_images(folder / "hr", 4, (40, 52), seed=1)
    raw: dict[str, Any] = copy.deepcopy(read_recipe_file(REPO / "recipes" / "tiny.toml"))
    raw["model"]["name"] = "tiny-y"
    raw["data"].update(train=[str(hr)], patch_size=16, batch_size=4)
    raw["schedule"].update(steps=steps, warmup=2)
    raw["validation"].update(sets=[], every=steps)
    raw["checkpoint"].update(every=every, keep=2)
    raw["precision"]["mode"] = "fp32"
    raw["log_every"] = 1
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def train(args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(RUNNER), "train", *args, "--no-progress"]
    return subprocess.run(
        cmd, env=environment(), capture_output=True, text=True, timeout=PROCESS_TIMEOUT
    )


def logged_steps(run: Path) -> list[int]:
    log = run / "train_log.jsonl"
    if not log.is_file():
        return []
    steps = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the kill
            continue
        if "loss" in record:
            steps.append(int(record["step"]))
    return steps


def final_weights(run: Path) -> dict[str, Any]:
    from srplug.weights import load_state_dict_file

    files = sorted(run.glob("*.safetensors"))
    if len(files) != 1:
        raise RuntimeError(f"expected one exported weights file in {run}, found {files}")
    return load_state_dict_file(files[0])


def same_weights(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def wait_for_log(run: Path, proc: subprocess.Popen[bytes]) -> bool:
    """Wait until ``run`` has logged a training step; False if the process ended first."""
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while not logged_steps(run):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def run_trial(
    index: int,
    recipe: Path,
    work: Path,
    delay: float,
    every: int,
    reference: dict[str, Any],
    *,
    before_first_step: bool = False,
) -> Trial:
    from srplug.errors import WeightsError
    from srplug.train.checkpoint import load_training_checkpoint

    trial = Trial(index=index, kill_after_s=round(delay, 3))
    run = work / f"trial{index:02d}"
    cmd = [sys.executable, str(RUNNER), "train", str(recipe), "-o", str(run), "--no-progress"]
    proc = subprocess.Popen(
        cmd, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # The clock starts at launch (a kill during start-up) or at the first logged step.
    started = True if before_first_step else wait_for_log(run, proc)
    try:
        proc.wait(timeout=delay if started else 0)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=PROCESS_TIMEOUT)
        trial.killed = True

    steps = logged_steps(run)
    trial.logged_step = max(steps, default=0)
    folder = run / "checkpoints"
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    trial.checkpoints = [p.name for p in files if p.suffix == ".pt"]
    trial.stray_temporaries = [p.name for p in files if p.suffix != ".pt"]
    for name in trial.checkpoints:
        try:
            state = load_training_checkpoint(folder / name)
        except WeightsError as exc:
            trial.problem = f"corrupt checkpoint {name}: {exc}"
            return trial
        if name == "last.pt":
            trial.checkpoint_step = int(state["step"])
    saved = trial.checkpoint_step or 0
    if trial.logged_step - saved > every:
        trial.problem = f"checkpoint at step {saved}, but the run had logged {trial.logged_step}"
        return trial

    if trial.checkpoint_step is None:  # killed before the first checkpoint: start over
        trial.restarted_from_scratch = True
        shutil.rmtree(run, ignore_errors=True)
        done = train([str(recipe), "-o", str(run)])
    else:
        done = train(["--resume", str(folder / "last.pt")])
    if done.returncode != 0:
        trial.problem = f"the resumed run failed ({done.returncode}): {done.stderr[-800:]}"
        return trial
    try:
        ours = final_weights(run)
    except Exception as exc:  # reported, not raised: one bad trial must not hide the others
        trial.problem = f"no usable final weights: {exc}"
        return trial
    if not same_weights(ours, reference):
        trial.problem = "the resumed run's final weights differ from the uninterrupted run's"
        return trial
    trial.survived = True
    shutil.rmtree(run, ignore_errors=True)
    return trial


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--steps", type=int, default=40, help="training steps per run")
    parser.add_argument("--every", type=int, default=4, help="checkpoint interval (steps)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill times")
    parser.add_argument("--json", action="store_true", help="print every trial as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="srplug-kill-trials-"))
    try:
        recipe = make_recipe(work, args.steps, args.every)
        ref = work / "reference"
        cmd = [sys.executable, str(RUNNER), "train", str(recipe), "-o", str(ref), "--no-progress"]
        start = time.monotonic()
        proc = subprocess.Popen(
            cmd, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_for_log(ref, proc)
        first_step = time.monotonic()
        while proc.poll() is None and max(logged_steps(ref), default=0) < args.steps:
            time.sleep(0.02)
        training = time.monotonic() - first_step  # the steps alone
        _, err = proc.communicate(timeout=PROCESS_TIMEOUT)
        span = time.monotonic() - first_step  # steps, then the final export
        if proc.returncode != 0:
            print(f"the reference run failed: {err.decode()[-2000:]}", file=sys.stderr)
            return 2
        reference = final_weights(ref)
        print(
            f"reference run: {args.steps} steps; {first_step - start:.1f} s to the first step, "
            f"{training:.1f} s of steps, {span:.1f} s from the first step to the end",
            file=sys.stderr,
        )

        rng = random.Random(args.seed)
        trials = []
        for i in range(args.trials):
            # One trial in ten kills during start-up, one in five during the final export
            # (or after the end); the rest while steps and checkpoints are being written.
            phase = rng.random()
            early = phase < 0.1
            if early:
                delay = rng.uniform(0.0, first_step - start)
            elif phase < 0.3:
                delay = rng.uniform(training, 1.1 * span)
            else:
                delay = rng.uniform(0.0, training)
            trial = run_trial(
                i, recipe, work, delay, args.every, reference, before_first_step=early
            )
            trials.append(trial)
            state = "survived" if trial.survived else f"FAILED: {trial.problem}"
            print(
                f"trial {i:2d}: kill after {trial.kill_after_s:5.2f} s "
                f"(killed={trial.killed}, logged step {trial.logged_step}, checkpoint "
                f"{trial.checkpoint_step}, temporaries {len(trial.stray_temporaries)}) {state}",
                file=sys.stderr,
            )
        survived = sum(t.survived for t in trials)
        killed = sum(t.killed for t in trials)
        summary = {
            "trials": len(trials),
            "survived": survived,
            "killed_mid_run": killed,
            "restarted_from_scratch": sum(t.restarted_from_scratch for t in trials),
            "stray_temporaries": sum(len(t.stray_temporaries) for t in trials),
            "reference_startup_s": round(first_step - start, 2),
            "reference_steps_s": round(training, 2),
            "reference_to_end_s": round(span, 2),
        }
        if args.json:
            print(json.dumps({**summary, "details": [asdict(t) for t in trials]}, indent=2))
        else:
            print(
                f"{survived}/{len(trials)} trials survived ({killed} killed mid-run, "
                f"{summary['restarted_from_scratch']} before the first checkpoint)"
            )
        return 0 if survived == len(trials) else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
