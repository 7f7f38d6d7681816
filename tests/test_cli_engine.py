"""``srplug upscale`` engine flags: --tile, --ensemble, --precision, --workers, torchrun."""

from __future__ import annotations

import numpy as np
import pytest

from srplug.cli import main
from srplug.io import read_image, write_image
from tests.helpers.processes import run_torchrun


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def make_images(folder, count: int = 5) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (9 + i, 7 + 2 * i, 3), dtype=np.uint8) for i in range(count)]
    for i, img in enumerate(images):
        write_image(folder / f"img{i}.png", img)
    return images


def test_tiled_upscale_equals_untiled(capsys, tmp_path):
    make_images(tmp_path / "in", 1)
    img = tmp_path / "in" / "img0.png"
    flags = ["--scale", "4", "--no-progress"]  # the shipped ESPCN x4 weights
    assert run(capsys, "upscale", "espcn", str(img), "-o", str(tmp_path / "a.png"), *flags)[0] == 0
    code, _, err = run(
        capsys, "upscale", "espcn", str(img), "-o", str(tmp_path / "b.png"), "--tile", "8", *flags
    )
    assert code == 0, err
    assert np.array_equal(read_image(tmp_path / "a.png"), read_image(tmp_path / "b.png"))


def test_ensemble_and_precision_flags(capsys, tmp_path):
    make_images(tmp_path / "in", 1)
    code, _, err = run(
        capsys,
        "upscale",
        "bicubic",
        str(tmp_path / "in" / "img0.png"),
        "-o",
        str(tmp_path / "e.png"),
        "--ensemble",
        "--precision",
        "fp32",
        "--tile",
        "auto",
    )
    assert code == 0, err
    assert read_image(tmp_path / "e.png").shape == (18, 14, 3)
    with pytest.raises(SystemExit) as exited:
        main(["upscale", "bicubic", "--tile", "huge"])
    assert exited.value.code == 2
    assert "--tile takes a number of pixels or 'auto'" in capsys.readouterr().err


def test_workers_read_a_folder(capsys, tmp_path):
    images = make_images(tmp_path / "in", 5)
    code, out, err = run(
        capsys,
        "upscale",
        "bicubic",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "out"),
        "--workers",
        "2",
        "--prefetch",
        "1",
        "--no-progress",
    )
    assert code == 0, err
    assert "wrote 5 images" in out
    for i, img in enumerate(images):
        assert read_image(tmp_path / "out" / f"img{i}.png").shape == (
            2 * img.shape[0],
            2 * img.shape[1],
            3,
        )


def test_unreadable_file_in_a_worker_is_reported(capsys, tmp_path):
    make_images(tmp_path / "in", 2)
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    code, _, err = run(
        capsys, "upscale", "bicubic", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "-j", "1"
    )
    assert code == 1 and "broken.png" in err and "not an image" in err


def test_torchrun_shards_the_files_across_ranks(tmp_path):
    images = make_images(tmp_path / "in", 5)
    done = run_torchrun(
        "-m",
        "srplug.cli",
        "upscale",
        "bicubic",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "out"),
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    assert "rank 0 of 2: wrote 3 of 5 files" in done.stdout
    assert "rank 1 of 2: wrote 2 of 5 files" in done.stdout
    for i, img in enumerate(images):
        assert read_image(tmp_path / "out" / f"img{i}.png").shape[:2] == (
            2 * img.shape[0],
            2 * img.shape[1],
        )


def test_kernels_flag_gives_the_same_image(capsys, tmp_path):
    make_images(tmp_path / "in", 1)
    img = str(tmp_path / "in" / "img0.png")
    outs = []
    for kernels in ("eager", "fused", "auto"):
        out = tmp_path / f"{kernels}.png"
        code, _, err = run(
            capsys, "upscale", "espcn", img, "-o", str(out), "--scale", "4", "--kernels", kernels
        )
        assert code == 0, err
        outs.append(read_image(out).astype(int))
    # float rounding of the Winograd convolution may move a rare pixel by one grey level
    assert all(np.abs(o - outs[0]).max() <= 1 for o in outs[1:])
    with pytest.raises(SystemExit) as exited:
        main(["upscale", "espcn", "--kernels", "fastest"])
    assert exited.value.code == 2
