"""Checkpoints: atomic writes, weights-only reads, RNG state, pruning."""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from srplug.errors import WeightsError
from srplug.train import checkpoint as ckpt


def good_state(step: int) -> dict:
    return {"format": ckpt.FORMAT_VERSION, "step": step, "w": torch.full((4,), float(step))}


def test_round_trip_is_weights_only(tmp_path):
    path = ckpt.save_atomic({**good_state(3), "rng": ckpt.capture_rng()}, tmp_path / "a.pt")
    state = ckpt.load_training_checkpoint(path)
    assert state["step"] == 3 and torch.equal(state["w"], torch.full((4,), 3.0))
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary left


def test_rng_states_restore_exactly():
    saved = ckpt.capture_rng()
    first = (torch.rand(3), np.random.rand(3), np.random.randn(), random.random())
    ckpt.restore_rng(saved)
    again = (torch.rand(3), np.random.rand(3), np.random.randn(), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2:] == again[2:]


def test_exception_while_writing_keeps_the_previous_file(tmp_path, monkeypatch):
    path = ckpt.save_atomic(good_state(1), tmp_path / "last.pt")

    def broken_save(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_atomic(good_state(2), path)
    monkeypatch.undo()
    assert ckpt.load_training_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_kill_9_while_writing_keeps_the_previous_file(tmp_path):
    """A process killed in the middle of torch.save leaves the old checkpoint intact."""
    path = ckpt.save_atomic(good_state(1), tmp_path / "last.pt")
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from srplug.train import checkpoint as ckpt
        def dying_save(obj, f):
            f.write(b"PK\\x03\\x04" + bytes(10_000))
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = dying_save
        ckpt.save_atomic({{"format": 1, "step": 2}}, {str(path)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p for p in tmp_path.iterdir() if p.name != "last.pt"]
    assert len(leftovers) == 1 and leftovers[0].name.endswith(".tmp")
    assert ckpt.load_training_checkpoint(path)["step"] == 1
    assert ckpt.remove_stale_temporaries(tmp_path) == leftovers
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_unsafe_damaged_and_foreign_files_are_refused(tmp_path):
    pickled = tmp_path / "evil.pt"
    torch.save({"format": 1, "obj": argparse.Namespace(a=1)}, pickled)  # not weights-only
    with pytest.raises(WeightsError, match="cannot read checkpoint"):
        ckpt.load_training_checkpoint(pickled)
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(ckpt.save_atomic(good_state(1), tmp_path / "ok.pt").read_bytes()[:100])
    with pytest.raises(WeightsError, match="damaged"):
        ckpt.load_training_checkpoint(damaged)
    foreign = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(1)}, foreign)
    with pytest.raises(WeightsError, match="not a srplug training checkpoint"):
        ckpt.load_training_checkpoint(foreign)
    with pytest.raises(WeightsError, match="does not exist"):
        ckpt.load_training_checkpoint(tmp_path / "nope.pt")


def test_prune_keeps_the_newest(tmp_path):
    for step in (5, 20, 100, 15):
        ckpt.save_atomic(good_state(step), tmp_path / ckpt.step_checkpoint_name(step))
    ckpt.save_atomic(good_state(100), tmp_path / "last.pt")
    removed = ckpt.prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["step_000005.pt", "step_000015.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "last.pt",
        "step_000020.pt",
        "step_000100.pt",
    ]
