"""Thread safety: concurrent ``srplug.get`` and upscaling give the single-thread results.

Extends ``tests/test_registry.py::test_concurrent_get_and_call`` (one toy model) to the real
fast models, every image kind, shared and per-thread upsamplers, and the very first lookup
(plugin discovery) racing in several threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import srplug
from srplug import plugins

MODELS = [("bicubic", 3, "default"), ("espcn", 4, "default"), ("fsrcnn", 2, "default")]
MODELS += [("esr-tr", 2, None), ("fsrcnn-small", 3, None)]
THREADS = 6


def images() -> list[Any]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    return [
        rgb,
        rng.random((6, 8), dtype=np.float32),
        rng.integers(0, 65536, (5, 6, 4), dtype=np.uint16),
        torch.from_numpy(rng.random((2, 3, 5, 5), dtype=np.float32)),
        PILImage.fromarray(rgb),
    ]


def build(name: str, scale: int, weights: str | None) -> Any:
    torch.manual_seed(0)  # random-init models: the same weights in every thread
    return srplug.get(name, scale, weights)


def as_array(out: Any) -> np.ndarray:
    if isinstance(out, torch.Tensor):
        return out.numpy()
    return np.asarray(out)


def run_threads(work: Callable[[int], None], count: int = THREADS) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def target(index: int) -> None:
        try:
            barrier.wait(10)
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def expected() -> dict[tuple[int, int], np.ndarray]:
    imgs = images()
    return {
        (m, i): as_array(build(*MODELS[m])(img))
        for m in range(len(MODELS))
        for i, img in enumerate(imgs)
    }


def test_threads_with_their_own_upsamplers(expected) -> None:
    imgs = images()

    def work(index: int) -> None:
        rng = np.random.default_rng(index)
        for _ in range(6):
            m = int(rng.integers(len(MODELS)))
            up = build(*MODELS[m]) if MODELS[m][2] is not None else shared_random[m]
            for i in rng.permutation(len(imgs)):
                np.testing.assert_array_equal(as_array(up(imgs[i])), expected[m, i])

    # random-init models are built once: seeding torch's global RNG is not thread-safe
    shared_random = {m: build(*spec) for m, spec in enumerate(MODELS) if spec[2] is None}
    run_threads(work)


def test_threads_sharing_one_upsampler(expected) -> None:
    imgs = images()
    ups = [build(*spec) for spec in MODELS]

    def work(index: int) -> None:
        for round_ in range(4):
            for m in range(len(MODELS)):
                i = (index + round_ + m) % len(imgs)
                np.testing.assert_array_equal(as_array(ups[m](imgs[i])), expected[m, i])

    run_threads(work)


def test_first_lookup_races_in_many_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugin discovery happens once even when the first lookups race."""
    img = np.full((4, 4, 3), 100, np.uint8)
    reference = srplug.get("bicubic", 2)(img)
    plugins.reset()
    scans: list[int] = []
    scan = plugins._entry_points

    def counted_scan():
        scans.append(1)
        return scan()

    monkeypatch.setattr(plugins, "_entry_points", counted_scan)
    results: list[np.ndarray] = []

    def work(index: int) -> None:
        names = srplug.list()
        assert "bicubic" in names and "espcn" in names
        results.append(srplug.get("bicubic", 2)(img))

    run_threads(work, count=8)
    assert len(scans) == 1
    assert len(results) == 8 and all((r == reference).all() for r in results)
    statuses = {s.name: s.state for s in plugins.plugin_statuses()}
    assert statuses["bicubic"] == statuses["espcn"] == "loaded"
