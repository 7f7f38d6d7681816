"""Build cache: keys, the lock + atomic publish under parallel processes, the fallback."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from pathlib import Path

import pytest
import torch

import srplug.ops
from srplug.cli import main
from srplug.ops import functional, loader, reference


def test_build_key_follows_sources_torch_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "csrc"
    shutil.copytree(loader.CSRC, src)
    monkeypatch.setattr(loader, "CSRC", src)
    base = loader.build_key(False)
    assert len(base) == 16 and base == loader.build_key(False)
    (src / "ops.cpp").write_text((src / "ops.cpp").read_text() + "\n// changed\n")
    changed_source = loader.build_key(False)
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    changed_torch = loader.build_key(False)
    monkeypatch.setenv(loader.MARCH_ENV, "x86-64-v2")
    changed_march = loader.build_key(False)
    assert len({base, changed_source, changed_torch, changed_march}) == 4


def _publish_worker(cache: str, key: str, log: str, out: str) -> None:
    import os

    os.environ[loader.CACHE_ENV] = cache

    def build(folder: Path) -> Path:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        made = folder / "lib.so"
        made.write_bytes(b"x" * 4096)
        time.sleep(0.5)  # long enough for the other processes to queue on the lock
        return made

    path, built = loader.publish(key, build)
    with open(out, "a") as fh:
        fh.write(json.dumps([str(path), built, path.stat().st_size]) + "\n")


def test_parallel_processes_build_once_and_publish_atomically(tmp_path: Path) -> None:
    cache, log, out = tmp_path / "cache", tmp_path / "builds.log", tmp_path / "results.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_publish_worker, args=(str(cache), "k" * 16, str(log), str(out)))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert len(log.read_text().split()) == 1  # one process compiled, three waited
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == 4 and sum(built for _, built, _ in results) == 1
    assert {path for path, _, _ in results} == {str(cache / f"srplug_ops_{'k' * 16}.so")}
    assert {size for _, _, size in results} == {4096}
    assert not [p for p in cache.iterdir() if p.name.startswith(".build-")]  # temp dirs gone


def test_failed_build_leaves_no_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(loader.CACHE_ENV, str(tmp_path))

    def build(folder: Path) -> Path:
        (folder / "half.so").write_bytes(b"partial")
        raise RuntimeError("compiler exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        loader.publish("f" * 16, build)
    assert [p.name for p in tmp_path.iterdir()] == [f"srplug_ops_{'f' * 16}.lock"]


def test_auto_without_compiler_warns_once_and_runs_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = loader.BuildStatus("no-compiler", "no C++ compiler ('c++' not found)")
    monkeypatch.setattr(loader, "load", lambda **_: missing)
    monkeypatch.setattr(loader, "status", lambda: missing)
    monkeypatch.setattr(functional, "_warned", False)
    x, w = torch.randn(1, 1, 5, 6), torch.randn(8, 1, 3, 3)
    with pytest.warns(srplug.ops.OpsFallbackWarning, match="install a C\\+\\+ compiler"):
        got = srplug.ops.esr_upscale(x, w, 2, "tm")
    assert torch.equal(got, reference.esr_upscale(x, w, 2, "tm"))
    with pytest.raises(srplug.ops.OpsBuildError, match="no C\\+\\+ compiler"):
        srplug.ops.esr_upscale(x, w, 2, "tm", impl="cpp")


def test_no_compiler_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(loader, "_status", loader.BuildStatus())  # restored after the test
    monkeypatch.setenv(loader.CACHE_ENV, str(tmp_path))  # no cached library there
    monkeypatch.setenv("CXX", "no-such-compiler-srplug")
    st = loader.load()
    assert st.state == "no-compiler" and "no-such-compiler-srplug" in st.reason
    assert "install a C++ compiler" in loader.fix_hint(st.state)


def test_doctor_before_and_after_the_build(
    ops_ext: loader.BuildStatus, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["extension"]["state"] == "loaded"
    assert set(facts["ops"]) == {
        "esr_upscale",
        "pixel_shuffle",
        "channel_attention",
        "conv3x3",
        "conv2d_act",
    }
    assert facts["ops"]["esr_upscale"]["cpu"] == "cpp"
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "channel_attention:" in text and "CPU tensors:  cpp" in text
