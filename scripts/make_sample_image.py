"""Regenerate srplug/assets/sample.png, the built-in input of `srplug upscale`.

A 160x120 synthetic test chart made from formulas (zone plate, colour ramps, hard edges,
fine stripes), so the package carries no third-party image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

H, W = 120, 160


def chart() -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    r2 = (x - W / 2) ** 2 + (y - H / 2) ** 2
    zone = 0.5 + 0.5 * np.cos(np.pi * r2 / 90.0)
    red = x / (W - 1)
    green = y / (H - 1)
    blue = 1.0 - 0.5 * (red + green)
    img = np.stack([red, green, blue], axis=-1) * 0.55 + zone[..., None] * 0.45
    img[10:50, 10:50] = [0.95, 0.85, 0.1]  # a flat patch with sharp edges
    img[20:40, 20:40] = [0.1, 0.2, 0.8]
    stripes = (np.floor(x / 2) % 2)[..., None]
    img[80:110, 10:70] = stripes[80:110, 10:70] * 0.9 + 0.05  # 1-pixel-pair stripes
    diag = ((x + y) % 8 < 4)[..., None].astype(np.float64)
    img[80:110, 90:150] = diag[80:110, 90:150] * [0.9, 0.3, 0.3] + 0.05
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "srplug" / "assets" / "sample.png"
    cv2.imwrite(str(out), cv2.cvtColor(chart(), cv2.COLOR_RGB2BGR))
    print(f"wrote {out}")
