"""A third-party plugin built from docs/plugin-template installs and registers itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / "docs" / "plugin-template"


def _make_plugin(tmp_path: Path, token: str) -> Path:
    """Copy the template, renaming 'example' to ``token`` everywhere (files and contents)."""
    src = tmp_path / "src"
    shutil.copytree(TEMPLATE, src)
    for path in sorted(src.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file():
            path.write_text(path.read_text().replace("example", token))
        if "example" in path.name:
            path.rename(path.with_name(path.name.replace("example", token)))
    return src


def test_template_plugin_installs_and_registers(tmp_path):
    token = "tp" + uuid.uuid4().hex[:8]
    src = _make_plugin(tmp_path, token)
    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(src),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    assert any(p.name.endswith(".dist-info") for p in target.iterdir())

    probe = f"""
import json, srplug
from srplug import plugins
up = srplug.get("{token}-espcn", scale=3, weights=None)
import numpy as np
out = up(np.zeros((4, 5, 3), np.uint8))
status = plugins.status_of("{token}")
print(json.dumps({{"models": srplug.list(), "shape": list(out.shape),
                   "state": status.state, "dist": status.distribution,
                   "plugin": srplug.info("{token}-espcn").plugin}}))
"""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert f"{token}-espcn" in report["models"] and "bicubic" in report["models"]
    assert report["shape"] == [12, 15, 3]
    assert report["state"] == "loaded" and report["dist"] == f"srplug-{token}"
    assert report["plugin"] == token

    # without the target dir on the path, the plugin is simply not there
    env.pop("PYTHONPATH")
    run = subprocess.run(
        [sys.executable, "-c", "import srplug; print(srplug.list())"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0 and f"{token}-espcn" not in run.stdout
