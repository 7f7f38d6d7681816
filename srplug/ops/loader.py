"""Building and loading the ``srplug.ops`` C++/CUDA extension.

The extension is compiled on first use with :func:`torch.utils.cpp_extension.load` (just in
time) and cached as one shared library per build key: a hash of the sources, the compiler
flags, the compiler, torch's version, Python's version, the CPU (``-march=native`` builds)
and, for CUDA builds, the CUDA version and GPU architectures. A changed source or a new torch
gets a new key, so a stale library is never loaded.

Concurrency: a build holds an exclusive ``fcntl`` lock on ``<key>.lock`` (released by the
kernel even when the process is killed), compiles in a private temporary folder and publishes
the library with an atomic rename; a process that waited for the lock finds the library and
only loads it. Readers never see a partial file.

Environment:

- ``SRPLUG_OPS_CACHE``: cache folder (default ``$SRPLUG_HOME/ops``, ``~/.cache/srplug/ops``).
- ``SRPLUG_OPS_JIT=0``: never compile; a library already in the cache is still loaded.
- ``SRPLUG_OPS_CUDA=0`` / ``1``: leave the CUDA kernels out / require them (default: built
  when torch sees a GPU and ``nvcc`` is found).
- ``SRPLUG_OPS_MARCH``: the ``-march`` value (default ``native``; ``""`` for none), e.g.
  ``x86-64-v3`` for a cache shared by different machines.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from srplug.errors import SrplugError

__all__ = [
    "CACHE_ENV",
    "CUDA_ENV",
    "JIT_ENV",
    "MARCH_ENV",
    "BuildStatus",
    "OpsBuildError",
    "build_key",
    "cache_dir",
    "find_compiler",
    "find_nvcc",
    "load",
    "publish",
    "status",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "SRPLUG_OPS_CACHE"
JIT_ENV = "SRPLUG_OPS_JIT"
CUDA_ENV = "SRPLUG_OPS_CUDA"
MARCH_ENV = "SRPLUG_OPS_MARCH"

CSRC = Path(__file__).resolve().parent / "csrc"
CPU_SOURCES = ("ops.cpp", "winograd.cpp", "direct_conv.cpp")
CUDA_SOURCES = ("ops_cuda.cu",)
LIBRARY_PREFIX = "srplug_ops"

State = Literal["not-loaded", "loaded", "no-compiler", "disabled", "failed"]


class OpsBuildError(SrplugError):
    """The C++/CUDA extension cannot be built or loaded (and an explicit ``impl`` needs it)."""


@dataclass
class BuildStatus:
    """What :func:`load` found: whether the extension is in this process, and why (not)."""

    state: State = "not-loaded"
    reason: str = "not tried yet"
    with_cuda: bool = False
    path: str | None = None
    key: str | None = None
    info: str = ""
    """The library's own description (``cpu openmp=... simd=avx512 cuda=yes``)."""
    log: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return self.state == "loaded"


_lock = threading.Lock()
_status = BuildStatus()


def status() -> BuildStatus:
    """The extension's state in this process (nothing is built or loaded by asking)."""
    return _status


def cache_dir() -> Path:
    """Where built libraries are kept: ``$SRPLUG_OPS_CACHE``, else ``$SRPLUG_HOME/ops``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from srplug.hub import home_dir

    return home_dir() / "ops"


def _env_flag(name: str) -> bool | None:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    return None


def find_compiler() -> str | None:
    """The C++ compiler torch would use (``$CXX``, else ``c++``), or None when there is none."""
    cxx = os.environ.get("CXX", "c++")
    return shutil.which(cxx)


def find_nvcc() -> str | None:
    """``nvcc`` from ``$CUDA_HOME/bin`` or the ``PATH``, or None."""
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if home and (Path(home) / "bin" / "nvcc").is_file():
        return str(Path(home) / "bin" / "nvcc")
    return shutil.which("nvcc")


def _version_line(tool: str | None) -> str:
    if tool is None:
        return ""
    try:
        out = subprocess.run(
            [tool, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return tool
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    return f"{tool}: {lines[-1] if 'nvcc' in tool and lines else (lines[0] if lines else '')}"


def _march() -> str:
    return os.environ.get(MARCH_ENV, "native")


def cflags(with_cuda: bool) -> list[str]:
    """Host compiler flags: optimised, OpenMP, the chosen ``-march``."""
    flags = ["-O3", "-DNDEBUG", "-fopenmp"]
    if _march():
        flags.append(f"-march={_march()}")
    if with_cuda:
        flags.append("-DSRPLUG_WITH_CUDA")
    return flags


def cuda_cflags() -> list[str]:
    return ["-O3", "-DNDEBUG", "-DSRPLUG_WITH_CUDA"]


def want_cuda() -> bool:
    """Whether to build the CUDA kernels: ``SRPLUG_OPS_CUDA``, else GPU visible and nvcc."""
    flag = _env_flag(CUDA_ENV)
    if flag is not None:
        return flag
    return bool(torch.version.cuda) and torch.cuda.is_available() and find_nvcc() is not None


def _cpu_signature() -> str:
    """The CPU feature list, for ``-march=native`` builds (they only run on such CPUs)."""
    if _march() != "native":
        return _march()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _cuda_archs() -> str:
    env = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if env:
        return env
    if not torch.cuda.is_available():
        return ""
    caps = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
    return ";".join(f"{a}.{b}" for a, b in sorted(caps))


def build_key(with_cuda: bool) -> str:
    """16 hex digits naming one build: sources, flags, tools, torch, Python, CPU, GPU arch."""
    h = hashlib.sha256()
    for path in sorted(CSRC.iterdir()):
        if path.suffix in (".cpp", ".cu", ".h", ".cuh"):
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    parts = [
        torch.__version__,
        f"{sys.version_info[0]}.{sys.version_info[1]}",
        platform.machine(),
        " ".join(cflags(with_cuda)),
        _version_line(find_compiler()),
        _cpu_signature(),
    ]
    if with_cuda:
        parts += [str(torch.version.cuda), " ".join(cuda_cflags()), _version_line(find_nvcc())]
        parts.append(_cuda_archs())
    h.update("\0".join(parts).encode())
    return h.hexdigest()[:16]


def library_path(key: str) -> Path:
    return cache_dir() / f"{LIBRARY_PREFIX}_{key}.so"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` held by this process (released on exit or death)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: builds are still atomic, only maybe duplicated
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def publish(key: str, build: Callable[[Path], Path]) -> tuple[Path, bool]:
    """Make sure the library for ``key`` is in the cache; returns ``(path, built_here)``.

    ``build(folder)`` compiles into the empty private ``folder`` and returns the library it
    made; it runs only when no other process has published ``key`` yet, under the key's file
    lock, and its result is moved into place with an atomic rename.
    """
    target = library_path(key)
    if target.is_file():
        return target, False
    with _file_lock(target.with_suffix(".lock")):
        if target.is_file():  # another process built it while we waited
            return target, False
        folder = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=target.parent))
        try:
            made = build(folder)
            os.replace(made, target)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return target, True


def _compile(key: str, with_cuda: bool, folder: Path) -> Path:
    """JIT-compile into ``folder`` with torch's builder; the library is loaded as a side effect."""
    from torch.utils import cpp_extension

    name = f"{LIBRARY_PREFIX}_{key}"
    sources = [str(CSRC / s) for s in CPU_SOURCES]
    if with_cuda:
        sources += [str(CSRC / s) for s in CUDA_SOURCES]
    cpp_extension.load(
        name=name,
        sources=sources,
        extra_cflags=cflags(with_cuda),
        extra_cuda_cflags=cuda_cflags() if with_cuda else None,
        extra_ldflags=["-fopenmp"],
        extra_include_paths=[str(CSRC)],
        build_directory=str(folder),
        with_cuda=with_cuda,
        is_python_module=False,
        verbose=False,
    )
    return folder / f"{name}.so"


def _ninja_available() -> bool:
    from torch.utils import cpp_extension

    return bool(cpp_extension.is_ninja_available())


def _fix_hint(state: State) -> str:
    if state == "no-compiler":
        return "install a C++ compiler (g++ or clang++; CXX picks one) and ninja for the kernels"
    if state == "disabled":
        return f"unset {JIT_ENV}=0 or run `srplug doctor --build` to build it"
    return "run `srplug doctor --build` to see the compiler output"


def load(*, build: bool | None = None) -> BuildStatus:
    """Load the extension into this process, building it first when needed and allowed.

    Args:
        build: compile when no cached library fits (default: unless ``SRPLUG_OPS_JIT=0``).

    Returns:
        The :class:`BuildStatus` (also kept for :func:`status`); never raises for a missing
        compiler or a failed build, the status says why.
    """
    global _status
    with _lock:
        if _status.loaded:
            return _status
        if build is None:
            build = _env_flag(JIT_ENV) is not False
        with_cuda = want_cuda()
        if with_cuda and find_nvcc() is None:
            _status = BuildStatus("failed", f"{CUDA_ENV}=1 but nvcc was not found", with_cuda)
            return _status
        key = build_key(with_cuda)
        cached = library_path(key)
        try:
            if cached.is_file():
                torch.ops.load_library(str(cached))
                reason = f"loaded the cached build {cached}"
            elif not build:
                if _env_flag(JIT_ENV) is False:
                    _status = BuildStatus("disabled", f"no cached build and {JIT_ENV}=0")
                else:
                    reason = "no cached build for this key yet; it is compiled on first use"
                    _status = BuildStatus("not-loaded", reason)
                return _status
            elif find_compiler() is None:
                cxx = os.environ.get("CXX", "c++")
                _status = BuildStatus("no-compiler", f"no C++ compiler ({cxx!r} not found)")
                return _status
            elif not _ninja_available():
                reason = "ninja not found (torch's JIT builder needs it: pip install ninja)"
                _status = BuildStatus("no-compiler", reason)
                return _status
            else:
                what = "C++/CUDA" if with_cuda else "C++"
                logger.warning(
                    "srplug.ops: compiling the %s extension (once; cached in %s)",
                    what,
                    cache_dir(),
                )
                loaded_here: list[Path] = []

                def compile_into(folder: Path) -> Path:
                    made = _compile(key, with_cuda, folder)
                    loaded_here.append(made)
                    return made

                cached, built = publish(key, compile_into)
                if not loaded_here:  # another process built it: load its library
                    torch.ops.load_library(str(cached))
                reason = f"built {cached}" if built else f"loaded {cached} built by another process"
        except Exception as exc:  # compiler errors, ABI mismatches, missing headers ...
            text = str(exc).strip().splitlines()
            _status = BuildStatus(
                "failed",
                f"the build failed: {text[-1] if text else type(exc).__name__}",
                with_cuda,
                key=key,
                log=text[-60:],
            )
            return _status
        info = str(torch.ops.srplug_ops.build_info())
        _status = BuildStatus("loaded", reason, with_cuda, str(cached), key, info)
        return _status


def require(device: torch.device) -> BuildStatus:
    """The loaded extension for tensors on ``device``, else :class:`OpsBuildError` saying why."""
    st = load()
    if not st.loaded:
        raise OpsBuildError(
            f"the srplug.ops extension is not available: {st.reason}; {_fix_hint(st.state)}"
        )
    if device.type == "cuda" and not st.with_cuda:
        raise OpsBuildError(
            "the srplug.ops extension was built without CUDA kernels (no GPU or no nvcc at build "
            f"time); set {CUDA_ENV}=1 with nvcc on the PATH and rebuild, or use impl='auto'"
        )
    return st


def fix_hint(state: State) -> str:
    """One line telling the user how to get the extension in the given state."""
    return _fix_hint(state)
