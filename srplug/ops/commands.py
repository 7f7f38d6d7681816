"""``srplug doctor``: which implementation of each fused op runs here, and why.

Registered as a core plugin (``srplug.plugins.DEFAULT_PLUGINS``). Without ``--build`` it only
looks (a cached library is loaded, nothing is compiled); ``--build`` compiles the extension
into the cache ahead of time, which is what an install step or a CI job should run.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from srplug.hookspecs import hookimpl

OPS = ("esr_upscale", "pixel_shuffle", "channel_attention")


def report(*, build: bool = False) -> dict[str, Any]:
    """The facts ``srplug doctor`` prints, as a dict (``build``: compile when needed)."""
    import torch

    from srplug.ops import loader

    st = loader.load(build=build)
    compiler = loader.find_compiler()
    nvcc = loader.find_nvcc()
    cuda_ok = torch.cuda.is_available()
    if st.loaded:
        cpu_impl, cpu_why = "cpp", f"extension loaded ({st.info})"
    elif compiler is None:
        cpu_impl, cpu_why = "ref", f"{st.reason}; {loader.fix_hint('no-compiler')}"
    elif st.state in ("failed", "disabled"):
        cpu_impl, cpu_why = "ref", st.reason
    else:
        cpu_impl, cpu_why = "ref now, cpp after the first call builds it", st.reason
    if not cuda_ok:
        cuda_impl, cuda_why = "-", "no CUDA device visible to torch"
    elif st.loaded and st.with_cuda:
        cuda_impl, cuda_why = "cuda", "extension loaded with CUDA kernels"
    elif st.loaded:
        cuda_impl, cuda_why = "ref", "extension built without CUDA kernels (no nvcc at build time)"
    elif nvcc is None:
        cuda_impl, cuda_why = "ref", "nvcc not found (set CUDA_HOME); the reference runs on GPU"
    else:
        cuda_impl, cuda_why = cpu_impl.replace("cpp", "cuda"), cpu_why
    cuda_choice = {op: (cuda_impl, cuda_why) for op in OPS}
    cuda_choice["conv3x3"] = ("ref", "cuDNN (it picks Winograd itself); no srplug CUDA kernel")
    cuda_choice["conv2d_act"] = ("ref", "cuDNN; no srplug CUDA kernel")
    return {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": cuda_ok,
        "compiler": compiler,
        "nvcc": nvcc,
        "cache": str(loader.cache_dir()),
        "build_key": loader.build_key(loader.want_cuda()),
        "extension": {
            "state": st.state,
            "reason": st.reason,
            "path": st.path,
            "with_cuda": st.with_cuda,
            "info": st.info,
        },
        "ops": {
            op: {"cpu": cpu_impl, "cpu_reason": cpu_why, "cuda": cuda, "cuda_reason": why}
            for op, (cuda, why) in cuda_choice.items()
        },
        "log": st.log,
        "threads": torch.get_num_threads(),
    }


def _cmd_doctor(args: argparse.Namespace) -> int:
    facts = report(build=args.build)
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        ext = facts["extension"]
        lines = [
            f"torch:        {facts['torch']} (CUDA {facts['torch_cuda'] or 'none'}; "
            f"device {'visible' if facts['cuda_available'] else 'none'}; "
            f"{facts['threads']} threads)",
            f"compiler:     {facts['compiler'] or 'not found'}",
            f"nvcc:         {facts['nvcc'] or 'not found'}",
            f"cache:        {facts['cache']} (key {facts['build_key']})",
            f"extension:    {ext['state']}: {ext['reason']}",
        ]
        if ext["info"]:
            lines.append(f"build:        {ext['info']}")
        for op, row in facts["ops"].items():
            lines.append(f"{op}:")
            lines.append(f"    CPU tensors:  {row['cpu']}  ({row['cpu_reason']})")
            lines.append(f"    CUDA tensors: {row['cuda']}  ({row['cuda_reason']})")
        if ext["state"] == "failed" and facts["log"]:
            lines.append("build output (last lines):")
            lines += ["    " + line for line in facts["log"][-20:]]
        print("\n".join(lines))
    return 1 if args.build and facts["extension"]["state"] != "loaded" else 0


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="which fused-kernel implementation runs here, and why",
        description="Report the srplug.ops C++/CUDA extension: compiler, nvcc, cache, build "
        "state, and for each fused op the implementation impl='auto' picks on CPU and CUDA "
        "tensors. --build compiles it into the cache now (exit code 1 if that fails).",
    )
    p.add_argument("--build", action="store_true", help="compile the extension now if needed")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_doctor)
