"""Atomic writes: the target holds the old or the complete new file, never a partial one."""

from __future__ import annotations

import os

import pytest
import torch

from srplug.atomic import atomic_open, atomic_path
from srplug.errors import InputError
from srplug.weights import save_safetensors


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_open_replaces_on_success_and_keeps_old_on_error(tmp_path):
    target = tmp_path / "f.txt"
    with atomic_open(target, "w") as f:
        f.write("one")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as f:
        f.write("two, half written")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_path_for_name_based_writers(tmp_path):
    target = tmp_path / "sub" / "w.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"
    with pytest.raises(KeyError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyError("boom")
    assert target.read_bytes() == b"data"
    assert sorted(p.name for p in target.parent.iterdir()) == ["w.bin"]


def test_files_get_the_usual_mode(tmp_path):
    path = save_safetensors({"w": torch.zeros(2)}, tmp_path / "w.safetensors")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_bad_mode():
    with pytest.raises(InputError, match="mode"), atomic_open("x", "a"):
        pass
