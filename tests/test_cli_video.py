"""``srplug upscale`` on videos: cv2.VideoCapture in, cv2.VideoWriter out, written atomically."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import srplug
from srplug.cli import main
from srplug.io import write_image

FRAMES, H, W = 6, 16, 24


def make_video(path: Path, fourcc: str) -> list[np.ndarray]:
    """Write FRAMES smooth BGR frames; skip the test when this OpenCV build cannot."""
    rng = np.random.default_rng(0)
    frames = []
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (W, H))
    if not writer.isOpened():
        pytest.skip(f"this OpenCV build cannot write {fourcc} into {path.suffix}")
    for _ in range(FRAMES):
        coarse = rng.integers(0, 256, (H // 4, W // 4, 3), dtype=np.uint8)
        frame = cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC)
        writer.write(frame)
        frames.append(frame)
    writer.release()
    return frames


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"cannot reopen {path}"
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("suffix,fourcc", [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_video_round_trip(tmp_path, capsys, suffix, fourcc):
    src = tmp_path / f"clip{suffix}"
    make_video(src, fourcc)
    decoded, _ = read_video(src)  # what the upscaler sees (after the lossy codec)
    out = tmp_path / "out" / f"big{suffix}"
    code = main(["upscale", "bicubic", str(src), "-o", str(out), "--scale", "2", "--no-progress"])
    assert code == 0
    assert f"({FRAMES} frames, {2 * W}x{2 * H}, bicubic x2)" in capsys.readouterr().out
    frames, fps = read_video(out)
    assert len(frames) == FRAMES and fps == pytest.approx(10.0, abs=0.01)
    assert all(f.shape == (2 * H, 2 * W, 3) for f in frames)
    up = srplug.get("bicubic", 2)
    expected = [
        cv2.cvtColor(up(cv2.cvtColor(small, cv2.COLOR_BGR2RGB)), cv2.COLOR_RGB2BGR)
        for small in decoded
    ]
    errors = np.array([[np.abs(g.astype(int) - e).mean() for e in expected] for g in frames])
    assert errors.diagonal().max() < 10  # the lossy codec's error only
    assert (errors.argmin(axis=1) == np.arange(FRAMES)).all()  # every frame, in order
    assert leftovers(out.parent) == []


def test_videos_and_images_into_a_folder(tmp_path, capsys):
    make_video(tmp_path / "a.avi", "MJPG")
    write_image(tmp_path / "b.png", np.full((5, 7, 3), 90, np.uint8))
    code = main(["upscale", "bicubic", str(tmp_path), "-o", str(tmp_path / "out"), "-s", "3"])
    assert code == 0
    assert read_video(tmp_path / "out" / "a.avi")[0][0].shape == (3 * H, 3 * W, 3)
    assert cv2.imread(str(tmp_path / "out" / "b.png")).shape == (15, 21, 3)
    assert "wrote 2 images" in capsys.readouterr().out


def test_an_unreadable_video_leaves_nothing(tmp_path, capsys):
    src = tmp_path / "broken.mp4"
    src.write_bytes(b"\x00" * 64)
    out = tmp_path / "out"
    out.mkdir()
    code = main(["upscale", "bicubic", str(src), "-o", str(out / "x.mp4"), "--no-progress"])
    assert code == 1 and "video" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_a_failure_midway_removes_the_temporary_file(tmp_path, monkeypatch):
    src = tmp_path / "clip.avi"
    make_video(src, "MJPG")
    calls = []

    def failing(img):
        calls.append(1)
        if len(calls) == 3:
            raise srplug.InputError("simulated failure on the third frame")
        return np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)

    from srplug.default_commands import upscale_video

    with pytest.raises(srplug.InputError, match="third frame"):
        upscale_video(failing, src, tmp_path / "out.avi", progress=False)
    assert not (tmp_path / "out.avi").exists() and leftovers(tmp_path) == []
