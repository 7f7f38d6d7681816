"""A failing write never leaves a partial output file: images (through ``srplug.atomic``) and
videos (temporary file renamed on success), from the CLI and the library."""

from __future__ import annotations

import contextlib
import errno
import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from srplug import atomic, cli
from srplug.default_commands import upscale_video
from srplug.errors import SrplugError
from srplug.io import write_image


def run_cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, err.getvalue()


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    for i in range(3):
        write_image(folder / f"img{i}.png", np.full((5, 6, 3), 40 * i, np.uint8))
    return folder


def disk_full_after(monkeypatch: pytest.MonkeyPatch, good_files: int) -> None:
    """Make the flush of every atomic write after the first ``good_files`` fail (ENOSPC)."""
    calls = {"n": 0}
    real = os.fsync

    def fsync(fd: int) -> None:
        if os.path.isdir(f"/proc/self/fd/{fd}") or not os.path.exists("/proc/self/fd"):
            return real(fd)
        calls["n"] += 1
        if calls["n"] > good_files:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs Linux /proc to tell fds")
def test_cli_write_failure_leaves_no_partial_file(inputs, tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    disk_full_after(monkeypatch, good_files=1)
    code, err = run_cli("upscale", "bicubic", str(inputs), "-o", str(out), "--no-progress")
    assert code == 1 and err.startswith("srplug: error: cannot write")
    assert "No space left on device" in err
    # the first image is complete, the second was refused whole, the third never started
    assert sorted(p.name for p in out.iterdir()) == ["img0.png"]
    assert cv2.imread(str(out / "img0.png")).shape == (10, 12, 3)


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs Linux /proc to tell fds")
def test_failed_overwrite_keeps_the_old_file(inputs, tmp_path, monkeypatch) -> None:
    target = tmp_path / "out.png"
    old = write_image(target, np.zeros((2, 2), np.uint8)).read_bytes()
    disk_full_after(monkeypatch, good_files=0)
    code, _ = run_cli("upscale", "bicubic", str(inputs / "img1.png"), "-o", str(target))
    assert code == 1
    assert target.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.png"]


def test_output_folder_that_is_a_file_is_a_clear_error(inputs, tmp_path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    code, err = run_cli(
        "upscale", "bicubic", str(inputs), "-o", str(blocker / "sub"), "--no-progress"
    )
    assert code == 1 and err.startswith("srplug: error: cannot write")
    assert blocker.read_text() == "a file, not a folder"


def test_video_failure_leaves_no_partial_file(tmp_path) -> None:
    src = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (8, 6))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG .avi files")
    for i in range(4):
        writer.write(np.full((6, 8, 3), 50 * i, np.uint8))
    writer.release()
    frames = {"n": 0}

    def failing_upsampler(rgb: np.ndarray) -> np.ndarray:
        frames["n"] += 1
        if frames["n"] == 3:
            raise SrplugError("frame 3 failed")
        return np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)

    dst = tmp_path / "out" / "clip_x2.avi"
    with pytest.raises(SrplugError, match="frame 3 failed"):
        upscale_video(failing_upsampler, src, dst, progress=False)
    assert list(dst.parent.iterdir()) == []
