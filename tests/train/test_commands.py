"""``srplug train`` on the command line (in-process)."""

from __future__ import annotations

import json

import pytest
import yaml

from srplug.cli import main
from srplug.plugins import DEFAULT_PLUGINS


@pytest.fixture
def recipe_file(recipe_dict, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe_dict))
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_is_a_core_command(capsys):
    assert "srplug.train.commands" in DEFAULT_PLUGINS
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--resume" in out and "--steps" in out and "torchrun" in out


def test_train_stop_and_resume(capsys, recipe_file, tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = run(
        capsys,
        "train",
        recipe_file,
        "-o",
        out_dir,
        "--steps",
        "5",
        "--stop-at",
        "3",
        "--threads",
        "1",
        "--no-progress",
    )
    assert code == 0, err
    ckpt = out_dir / "checkpoints" / "last.pt"
    assert f"stopped at step 3; resume with: srplug train --resume {ckpt}" in out
    code, out, err = run(capsys, "train", "--resume", ckpt, "--json", "--no-progress")
    assert code == 0, err
    result = json.loads(out)
    assert result["steps"] == 5 and result["weights"] == str(out_dir / "tiny-y_x2.safetensors")
    assert set(result["metrics"]) == {"val/x2/psnr", "val/x2/ssim"}


def test_train_errors_are_reported(capsys, recipe_file, recipe_dict, tmp_path):
    code, _, err = run(capsys, "train")
    assert code == 1 and "needs a RECIPE file" in err
    code, _, err = run(capsys, "train", tmp_path / "missing.toml", "-o", tmp_path / "x")
    assert code == 1 and "does not exist" in err
    code, _, err = run(capsys, "train", recipe_file, "--threads", "0")
    assert code == 1 and "--threads must be a positive integer" in err
    out_dir = tmp_path / "run"
    assert run(capsys, "train", recipe_file, "-o", out_dir, "--steps", "3", "--no-progress")[0] == 0
    ckpt = out_dir / "checkpoints" / "last.pt"
    code, _, err = run(capsys, "train", "--resume", ckpt, "-o", tmp_path / "elsewhere")
    assert code == 1 and "--output does not apply to --resume" in err
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**recipe_dict, "seed": 99}))
    code, _, err = run(capsys, "train", other, "--resume", ckpt)
    assert code == 1 and "differs from the one stored" in err
