"""``srplug.cli.main`` over random argument lists: an exit code and a message, never a
traceback. argparse's own usage errors exit with status 2, ``--help`` / ``--version`` with 0.
"""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from srplug import cli
from srplug.io import write_image
from tests.reliability.conftest import CASES, REFUSED, fuzz, scratch_dir

WORK = scratch_dir("srplug-cli-fuzz-")
IMAGE = write_image(WORK / "in" / "tiny.png", np.full((6, 5, 3), 90, np.uint8))
write_image(WORK / "in" / "gray16.png", np.full((4, 4), 4000, np.uint16))
(WORK / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
(WORK / "bad.pth").write_bytes(b"not a checkpoint")

COMMANDS = ["list", "info", "plugins", "upscale", "eval", "train", "nope", ""]
TOKENS = [
    "bicubic",
    "espcn",
    "fsrcnn",
    "esr-max",
    "nope",
    "*",
    "esr*",
    "--json",
    "-v",
    "--scale",
    "-s",
    "2",
    "3",
    "4",
    "0",
    "-1",
    "x",
    "--weights",
    "none",
    "x2",
    "x4",
    str(WORK / "bad.pth"),
    "--device",
    "cpu",
    "cuda",
    "--dtype",
    "bf16",
    "int8",
    "-O",
    "n1=3",
    "k=5",
    "=",
    "bogus",
    "-o",
    str(WORK / "out"),
    str(WORK / "out" / "one.png"),
    str(WORK / "out" / "one.jpg"),
    str(WORK / "out" / "one.xyz"),
    str(IMAGE),
    str(WORK / "in"),
    str(WORK / "in" / "*.png"),
    str(WORK / "in" / "broken.png"),
    str(WORK / "missing.png"),
    "-r",
    "--suffix",
    "_x2",
    "--ext",
    "webp",
    "bmp",
    "--no-progress",
    "--data",
    str(WORK),
    "--dataset",
    "Set5",
    str(WORK / "in"),
    "--resume",
    "--steps",
    "--help",
    "--version",
    "",
    "-",
    "--",
    "é",
]


@fuzz(50)
@given(
    command=st.sampled_from(COMMANDS),
    rest=st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=4)), max_size=7),
)
def test_cli_never_crashes(command: str, rest: list[str]) -> None:
    argv = ([command] if command else []) + rest
    out, err = io.StringIO(), io.StringIO()
    CASES["cli"] += 1
    cwd = os.getcwd()
    try:
        os.chdir(WORK)  # the default output folder lands in the scratch folder
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    except SystemExit as exc:  # argparse: usage errors (2), --help / --version (0)
        assert exc.code in (0, 2), f"argparse exited with {exc.code}: {err.getvalue()}"
        REFUSED["cli"] += exc.code == 2
        return
    finally:
        os.chdir(cwd)
    assert isinstance(code, int)
    REFUSED["cli"] += code != 0
    if code != 0:  # a one-line error, or the help when no command was given
        said = err.getvalue() + out.getvalue()
        assert said.startswith("srplug: error:") or "usage: srplug" in said, said
    assert "Traceback" not in err.getvalue()
