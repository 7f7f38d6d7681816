"""Write throwaway plugin distributions (a module + .dist-info with entry points) to a folder."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path


def write_plugin_dist(
    root: Path, dist: str, module: str, source: str, *, entry_name: str | None = None
) -> Path:
    """Create ``root/module.py`` and ``root/<dist>-0.1.dist-info`` registering it.

    Add ``root`` to ``sys.path`` to make the entry point visible to importlib.metadata.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[srplug]\n{entry_name or dist} = {module}\n")
    return root


def forget_modules_under(root: Path) -> None:
    """Drop the modules imported from files under ``root`` from ``sys.modules``, so that a
    later test writing a plugin under the same module name imports its own source."""
    folder = root.resolve()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(folder):
            del sys.modules[name]


TINY_MODEL = """
import torch
import srplug


class Tiny(torch.nn.Module):
    def __init__(self, scale, channels=3):
        super().__init__()
        self.scale = scale
        self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        x = torch.nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest")
        return x + 0.0 * self.conv(x)


@srplug.hookimpl
def register_models(register):
    for name in NAMES:
        register(srplug.ModelSpec(name=name, build=lambda scale: Tiny(scale), scales=(2, 3)))
"""


def tiny_model_source(*names: str) -> str:
    """Plugin source registering ``names`` as tiny nearest-neighbour models."""
    return f"NAMES = {list(names)!r}\n" + TINY_MODEL
