"""The srplug.ops extension, compiled once per test session.

The build goes to ``$SRPLUG_OPS_CACHE`` when set (CI can keep that folder between runs), else
to a session temporary folder. Without a C++ compiler the kernel tests skip, saying so; a
failing build is an error, not a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from srplug.ops import loader


@pytest.fixture(scope="session")
def ops_ext(tmp_path_factory: pytest.TempPathFactory) -> Iterator[loader.BuildStatus]:
    """The loaded extension's status (builds it on first use in the session)."""
    if not loader.status().loaded and loader.find_compiler() is None:
        pytest.skip("no C++ compiler found (CXX / c++): the C++ kernels cannot be built here")
    if not loader.status().loaded and not loader._ninja_available():
        pytest.skip("ninja not found (pip install ninja): torch's JIT builder needs it")
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get(loader.CACHE_ENV):
            mp.setenv(loader.CACHE_ENV, str(tmp_path_factory.mktemp("ops_cache")))
        st = loader.load(build=True)
    assert st.loaded, f"{st.reason}\n" + "\n".join(st.log)
    yield st


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a test with one intra-op thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b| / max |b|`` in float64 (0 when both are zero)."""
    a64, b64 = a.double(), b.double()
    scale = b64.abs().max().item()
    diff = (a64 - b64).abs().max().item()
    return diff / scale if scale else diff
