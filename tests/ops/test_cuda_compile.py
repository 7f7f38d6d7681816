"""The CUDA sources compile with nvcc (to an object file only: no GPU needed).

The CPU torch wheel ships the ATen/c10 CUDA headers, so a syntax or type error in
``ops_cuda.cu`` fails here even on a machine without a GPU.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from torch.utils import cpp_extension

from srplug.ops import loader


@pytest.mark.slow
def test_cuda_sources_compile_to_an_object(tmp_path: Path) -> None:
    nvcc = loader.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (CUDA_HOME or PATH): the CUDA sources cannot be compiled")
    includes = cpp_extension.include_paths()
    flags = []
    # the CPU wheel lacks the cmake-generated c10/cuda header; it only sets export macros
    if not any((Path(p) / "c10/cuda/impl/cuda_cmake_macros.h").is_file() for p in includes):
        flags.append("-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE")
    obj = tmp_path / "ops_cuda.o"
    cmd = [
        nvcc,
        "-c",
        str(loader.CSRC / "ops_cuda.cu"),
        "-o",
        str(obj),
        "-std=c++20",
        "-O0",
        "-gencode=arch=compute_80,code=compute_80",  # PTX only: checks the code, skips SASS
        "-Xcompiler",
        "-fPIC",
        f"-I{loader.CSRC}",
        *[arg for p in includes for arg in ("-isystem", p)],
        *flags,
        *loader.cuda_cflags()[1:],
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    assert obj.stat().st_size > 0
