"""The srplug command line: list, info, plugins, upscale, eval."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from srplug.cli import main
from srplug.io import read_image, write_image


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "bicubic" in out and "plugin" in out
    code, out, _ = run(capsys, "list", "--json")
    assert any(m["name"] == "bicubic" for m in json.loads(out))


def test_info(capsys):
    code, out, _ = run(capsys, "info", "bicubic")
    assert code == 0 and "MATLAB" in out
    code, out, _ = run(capsys, "info", "bicubic", "--json")
    assert json.loads(out)["plugin"] == "bicubic"


def test_info_lists_build_options(capsys):
    import srplug
    from tests.helpers.models import Nearest

    class Plugin:
        @srplug.hookimpl
        def register_models(self, register):
            def build(scale: int, width: int = 1, offset: float = 0.0):
                return Nearest(scale, offset=offset, width=width)

            register(srplug.ModelSpec(name="opts-net", build=build))

    srplug.register_plugin(Plugin(), name="opts-plugin")
    try:
        code, out, _ = run(capsys, "info", "opts-net")
        assert code == 0 and "width=1, offset=0.0" in out
        code, out, _ = run(capsys, "info", "opts-net", "--json")
        assert json.loads(out)["options"] == {"width": 1, "offset": 0.0}
    finally:
        srplug.unregister_plugin("opts-plugin")


def test_info_unknown_suggests(capsys):
    code, _, err = run(capsys, "info", "bicubc")
    assert code == 1 and "did you mean 'bicubic'" in err


def test_plugins(capsys):
    code, out, _ = run(capsys, "plugins")
    assert code == 0 and "bicubic" in out and "loaded" in out
    code, out, _ = run(capsys, "plugins", "--json")
    states = {p["name"]: p["state"] for p in json.loads(out)}
    assert states["bicubic"] == "loaded"


def test_upscale_files_folders_and_globs(capsys, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_image(src / "a.png", rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    write_image(src / "b.png", rng.integers(0, 65536, (4, 4), dtype=np.uint16))
    write_image(src / "sub" / "c.png", rng.integers(0, 256, (3, 3, 4), dtype=np.uint8))
    (src / "notes.txt").write_text("not an image")

    code, out, _ = run(
        capsys,
        "upscale",
        "bicubic",
        str(src),
        "-o",
        str(tmp_path / "o1"),
        "--scale",
        "3",
        "--no-progress",
    )
    assert code == 0 and "wrote 2 images" in out
    assert read_image(tmp_path / "o1" / "a.png").shape == (18, 15, 3)
    b = read_image(tmp_path / "o1" / "b.png")
    assert b.shape == (12, 12) and b.dtype == np.uint16
    assert not (tmp_path / "o1" / "sub").exists()

    code, _, _ = run(
        capsys, "upscale", "bicubic", str(src), "-r", "-o", str(tmp_path / "o2"), "--no-progress"
    )
    assert code == 0
    assert read_image(tmp_path / "o2" / "sub" / "c.png").shape == (6, 6, 4)

    code, _, _ = run(
        capsys,
        "upscale",
        "bicubic",
        str(src / "*.png"),
        "-o",
        str(tmp_path / "o3"),
        "--suffix",
        "_x2",
        "--ext",
        "tif",
        "--no-progress",
    )
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "o3").iterdir()) == ["a_x2.tif", "b_x2.tif"]
    assert read_image(tmp_path / "o3" / "b_x2.tif").dtype == np.uint16


def test_upscale_single_file_to_file(capsys, tmp_path):
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    code, out, _ = run(
        capsys, "upscale", "bicubic", str(tmp_path / "a.png"), "-o", str(tmp_path / "big.png")
    )
    assert code == 0 and read_image(tmp_path / "big.png").shape == (8, 8, 3)
    assert "big.png" in out


def test_upscale_without_input_uses_the_sample(capsys, tmp_path):
    code, out, _ = run(capsys, "upscale", "bicubic", "-o", str(tmp_path))
    assert code == 0 and "sample.png" in out
    assert read_image(tmp_path / "sample.png").shape == (240, 320, 3)


def test_upscale_errors(capsys, tmp_path):
    code, _, err = run(capsys, "upscale", "bicubic", str(tmp_path / "missing.png"))
    assert code == 1 and "neither a file" in err
    code, _, err = run(capsys, "upscale", "bicubic", str(tmp_path), "-o", str(tmp_path / "o"))
    assert code == 1 and "no image files" in err
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    code, _, err = run(
        capsys, "upscale", "bicubic", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.png")
    )
    assert code == 1 and "overwrite its input" in err
    code, _, err = run(capsys, "upscale", "bicubic", str(tmp_path / "a.png"), "-O", "nokey")
    assert code == 1 and "KEY=VALUE" in err
    code, _, err = run(
        capsys,
        "upscale",
        "bicubic",
        str(tmp_path / "a.png"),
        "-O",
        "width=3",
        "-o",
        str(tmp_path / "o"),
    )
    assert code == 1 and "no option" in err


def test_upscale_16bit_into_jpeg_is_refused(capsys, tmp_path):
    write_image(tmp_path / "b.png", np.zeros((4, 4), np.uint16))
    code, _, err = run(
        capsys, "upscale", "bicubic", str(tmp_path / "b.png"), "-o", str(tmp_path / "b.jpg")
    )
    assert code == 1 and "16-bit" in err and not (tmp_path / "b.jpg").exists()


def test_upscale_jpeg_cannot_hold_alpha(capsys, tmp_path):
    write_image(tmp_path / "a.png", np.zeros((4, 4, 4), np.uint8))
    code, _, err = run(
        capsys, "upscale", "bicubic", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.jpg")
    )
    assert code == 1 and "alpha" in err
    assert not (tmp_path / "a.jpg").exists()


@pytest.mark.data
def test_eval_json(capsys, data_root):
    code, out, _ = run(
        capsys,
        "eval",
        "bicubic",
        "--scale",
        "2",
        "4",
        "--data",
        str(data_root),
        "--dataset",
        "Set5",
        "--json",
        "--no-progress",
    )
    assert code == 0
    results = {(r["dataset"], r["scale"]): r for r in json.loads(out)["results"]}
    assert results[("Set5", 2)]["images"] == 5
    assert abs(results[("Set5", 2)]["psnr"] - 33.66) < 0.03
    assert abs(results[("Set5", 4)]["psnr"] - 28.42) < 0.03
    assert abs(results[("Set5", 2)]["ssim"] - 0.9299) < 0.002


@pytest.mark.data
def test_eval_table(capsys, data_root):
    code, out, _ = run(
        capsys,
        "eval",
        "bicubic",
        "-s",
        "3",
        "--data",
        str(data_root),
        "-d",
        "Set5",
        "--no-progress",
    )
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("bicubic"))
    assert row.split()[1:3] == ["Set5", "x3"] and abs(float(row.split()[3]) - 30.39) < 0.03


def test_eval_missing_dataset(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("SRPLUG_DATA", raising=False)
    code, _, err = run(capsys, "eval", "bicubic", "-d", "NoSuchSet", "--no-progress")
    assert code == 1 and "SRPLUG_DATA" in err


def test_console_script_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "srplug.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("srplug ")


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 2 and "upscale" in out
