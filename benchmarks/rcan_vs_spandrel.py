"""RCAN forward on the CPU: srplug against spandrel, same weights, same input, one run.

spandrel runs in its own Python environment (so that neither it nor its dependencies enter
the project's), in a worker subprocess (this file with ``--worker``, which imports only
torch and spandrel)::

    python3 -m venv /tmp/spv
    /tmp/spv/bin/pip install -c constraints.txt torch==2.13.0
    /tmp/spv/bin/pip install --no-deps spandrel
    /tmp/spv/bin/pip install -c constraints.txt einops safetensors numpy typing_extensions
    .venv/bin/python benchmarks/rcan_vs_spandrel.py --spandrel-python /tmp/spv/bin/python

torchvision is not installable beside the CPU torch here. spandrel's RCAN does not use it,
but ``import spandrel`` imports every architecture and two of them (LaMa, RestoreFormer)
import ``torchvision.transforms.functional`` at load time; the worker therefore registers a
placeholder ``torchvision`` module whose functions raise if called, then loads the file with
``spandrel.ModelLoader`` as a user would.

Weights: a random RCAN state dict in the official layout (``head.0``,
``body.{g}.body.{b}.body.{0,2,3.conv_du.0,3.conv_du.2}``, ``tail.0.*``, ``tail.1``,
``sub_mean``/``add_mean``; 10 groups x 20 RCABs, 64 features, reduction 16), float32, saved
once as ``.pt`` and loaded from that file by both sides. Input: one ``(1, 3, S, S)`` float32
tensor in [0, 1] (seeded), the same file for both.

Contenders, timed interleaved (one call each in the order below, the order reversed every
other round) after one warm-up each, ``--threads`` torch threads on both sides, wall clock,
medians:

- ``srplug upsampler``: ``srplug.get("rcan", weights=FILE)(x)``, the public call on a
  tensor with its defaults (inference mode, channels_last, ``kernels="auto"``: the fused
  kernels of ``srplug.ops`` when the C++ extension is available, Winograd 3x3 convolutions
  with their ReLU and skip adds and the fused channel attention; a copy of the result);
- ``srplug upsampler kernels=eager``: the same call with the plain PyTorch modules;
- ``srplug upsampler precision=auto``: the measured low-precision choice (bf16 when a probe
  shows it faster and close to float32);
- ``srplug eager model (channels_last)``: ``upsampler.model(x)`` of the eager upsampler with
  model and input in channels_last, under ``torch.inference_mode`` (no image handling);
- ``spandrel``: ``ModelLoader().load_from_file(FILE).model(x)`` under
  ``torch.inference_mode``, default (contiguous) memory format, as spandrel runs it;
- ``spandrel (channels_last)``: the same with model and input in channels_last.

The spandrel times come from the worker (one forward per request, its own clock), so the
pipe round trip is not counted. Printed: medians, ratios ``spandrel / srplug`` (> 1: srplug
faster) and max |srplug - spandrel| of the outputs.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from harness import JsonWorker, interleaved_times, wall_seconds

ROUNDS_DEFAULT = 7


# ------------------------------------------------------------------------ the spandrel worker


def _placeholder_torchvision() -> None:
    """Register a ``torchvision`` stand-in so that ``import spandrel`` works without it.

    Only LaMa and RestoreFormer import it (``InterpolationMode``, ``rotate``,
    ``normalize``); calling any of these raises. RCAN never touches it.
    """

    def unavailable(*_: Any, **__: Any) -> Any:
        raise RuntimeError("torchvision is not installed in this benchmark environment")

    tv = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = types.SimpleNamespace()  # type: ignore[attr-defined]
    functional.rotate = unavailable  # type: ignore[attr-defined]
    functional.normalize = unavailable  # type: ignore[attr-defined]
    tv.transforms = transforms  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    sys.modules.update(
        {
            "torchvision": tv,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
        }
    )


def worker(threads: int) -> None:
    """Serve JSON commands on stdin with spandrel (no srplug)."""
    import torch

    torch.set_num_threads(threads)
    try:
        import torchvision  # noqa: F401
    except ImportError:
        _placeholder_torchvision()
    import spandrel

    models: dict[str, Any] = {}
    x: dict[str, torch.Tensor] = {}
    hello = {"ready": spandrel.__version__, "torch": torch.__version__}
    print(json.dumps({**hello, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "load":
            desc = spandrel.ModelLoader().load_from_file(cmd["weights"])
            model = desc.model.eval()
            models["contiguous"] = model
            models["channels_last"] = copy.deepcopy(model).to(memory_format=torch.channels_last)
            inp = torch.load(cmd["input"], weights_only=True)
            x["contiguous"] = inp.contiguous()
            x["channels_last"] = inp.contiguous(memory_format=torch.channels_last)
            print(json.dumps({"arch": desc.architecture.name, "scale": desc.scale}), flush=True)
        elif cmd["cmd"] == "run":
            fmt = cmd["format"]
            model = models[fmt]
            with torch.inference_mode():
                # spandrel's forward scales its input in place: give it a copy (not timed)
                inp = x[fmt].clone(memory_format=torch.preserve_format)
                start = time.perf_counter()
                out = model(inp)
                elapsed = time.perf_counter() - start
            if cmd.get("output"):
                torch.save(out.contiguous(), cmd["output"])
            print(json.dumps({"seconds": elapsed}), flush=True)
        else:
            break


class SpandrelWorker(JsonWorker):
    """This file's ``--worker`` mode in its own environment, driven line by line."""

    def __init__(self, python: str, threads: int) -> None:
        super().__init__(
            __file__,
            python,
            threads,
            name="spandrel",
            env={"PYTHONWARNINGS": "ignore"},
            quit_timeout=60.0,
        )


# ------------------------------------------------------------------------------ the driver


def official_rcan_state(
    scale: int, seed: int = 0, n_resgroups: int = 10, n_resblocks: int = 20, feats: int = 64
) -> dict[str, Any]:
    """A random float32 RCAN state dict in the official (yulunzhang/RCAN) layout.

    Convolutions get normal weights with std ``1/sqrt(fan_in)`` (a tenth of it on the last
    convolution of each residual branch, so that 200 random blocks keep activations in
    range) and small biases; mean shifts are the DIV2K ones.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(prefix: str, c_out: int, c_in: int, k: int, gain: float = 1.0) -> None:
        std = gain * (1.0 / (c_in * k * k)) ** 0.5
        sd[prefix + "weight"] = torch.randn(c_out, c_in, k, k, generator=gen) * std
        sd[prefix + "bias"] = torch.randn(c_out, generator=gen) * 0.01

    mean = torch.tensor((0.4488, 0.4371, 0.4040))
    eye = torch.eye(3).view(3, 3, 1, 1)
    sd["sub_mean.weight"], sd["sub_mean.bias"] = eye.clone(), -255.0 * mean
    conv("head.0.", feats, 3, 3)
    red = feats // 16
    for g in range(n_resgroups):
        for b in range(n_resblocks):
            p = f"body.{g}.body.{b}."
            conv(p + "body.0.", feats, feats, 3)
            conv(p + "body.2.", feats, feats, 3, gain=0.1)  # small residual branches
            conv(p + "body.3.conv_du.0.", red, feats, 1)
            conv(p + "body.3.conv_du.2.", feats, red, 1)
        conv(f"body.{g}.body.{n_resblocks}.", feats, feats, 3, gain=0.1)
    conv(f"body.{n_resgroups}.", feats, feats, 3)
    if scale == 3:
        conv("tail.0.0.", 9 * feats, feats, 3)
    else:
        for i in range({2: 1, 4: 2, 8: 3}[scale]):
            conv(f"tail.0.{2 * i}.", 4 * feats, feats, 3)
    conv("tail.1.", 3, feats, 3)
    sd["add_mean.weight"], sd["add_mean.bias"] = eye.clone(), 255.0 * mean
    return sd


def run(
    spandrel_python: str,
    *,
    scale: int = 4,
    size: int = 48,
    rounds: int = ROUNDS_DEFAULT,
    threads: int = 1,
    workdir: Path | None = None,
    log: bool = True,
) -> dict[str, Any]:
    """Measure and return the figures (see the module docstring); ``workdir`` keeps the
    weights and input files (default: a temporary folder, removed)."""
    import torch

    import srplug

    torch.set_num_threads(threads)
    tmp_ctx = tempfile.TemporaryDirectory(prefix="srplug-rcan-spandrel-")
    tmp = Path(workdir) if workdir is not None else Path(tmp_ctx.name)
    tmp.mkdir(parents=True, exist_ok=True)
    weights, inp_file, out_file = tmp / f"rcan_x{scale}.pt", tmp / "x.pt", tmp / "spandrel.pt"
    torch.save(official_rcan_state(scale), weights)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    torch.save(x, inp_file)

    up = srplug.get("rcan", scale=scale, weights=str(weights))
    up_eager = srplug.get("rcan", scale=scale, weights=str(weights), kernels="eager")
    # the engine's measured precision choice (bf16 only if a probe shows it faster and close)
    up_auto = srplug.get("rcan", scale=scale, weights=str(weights), precision="auto")
    model = up_eager.model.eval().to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    sp = SpandrelWorker(spandrel_python, threads)
    try:
        info = sp.ask(cmd="load", weights=str(weights), input=str(inp_file))

        def spandrel_fn(fmt: str) -> Any:
            return lambda: float(sp.ask(cmd="run", format=fmt)["seconds"])

        contenders = {
            "srplug upsampler": wall_seconds(lambda: up(x)),
            "srplug upsampler kernels=eager": wall_seconds(lambda: up_eager(x)),
            "srplug upsampler precision=auto": wall_seconds(lambda: up_auto(x)),
            "srplug eager model (channels_last)": wall_seconds(lambda: model(x_cl)),
            "spandrel": spandrel_fn("contiguous"),
            "spandrel (channels_last)": spandrel_fn("channels_last"),
        }
        # outputs and warm-up
        with torch.inference_mode():
            ours = up(x)
            ours_eager = up_eager(x)
            ours_auto = up_auto(x)
            ours_cl = model(x_cl)
        sp.ask(cmd="run", format="contiguous", output=str(out_file))
        theirs = torch.load(out_file, weights_only=True)
        with torch.inference_mode():  # the eager model's calls; the upsamplers enter it anyway
            times = interleaved_times(contenders, rounds, log=log)
    finally:
        sp.close()
        tmp_ctx.cleanup()
    med = {k: statistics.median(v) for k, v in times.items()}
    result: dict[str, Any] = {
        "scale": scale,
        "input": [1, 3, size, size],
        "threads": threads,
        "rounds": rounds,
        "spandrel": info,
        "spandrel_version": sp.hello["ready"],
        "torch": torch.__version__,
        "median_ms": {k: round(1e3 * v, 1) for k, v in med.items()},
        "min_ms": {k: round(1e3 * min(v), 1) for k, v in times.items()},
        "ratio_spandrel_over_srplug_upsampler": med["spandrel"] / med["srplug upsampler"],
        "ratio_spandrel_cl_over_srplug_upsampler": (
            med["spandrel (channels_last)"] / med["srplug upsampler"]
        ),
        "ratio_spandrel_over_srplug_eager": med["spandrel"] / med["srplug upsampler kernels=eager"],
        "ratio_spandrel_cl_over_srplug_model_cl": (
            med["spandrel (channels_last)"] / med["srplug eager model (channels_last)"]
        ),
        "kernels": up.kernels_report,
        "ratio_spandrel_over_srplug_auto": med["spandrel"] / med["srplug upsampler precision=auto"],
        "auto_precision": up_auto.precision_report.describe(),
        "max_abs_diff_auto_vs_fp32": float((ours_auto - ours).abs().max()),
        # the public call clamps to [0, 1]; the models do not
        "max_abs_diff": float((ours - theirs.clamp(0, 1)).abs().max()),
        "max_abs_diff_eager": float((ours_eager - theirs.clamp(0, 1)).abs().max()),
        "max_abs_diff_channels_last": float((ours_cl - theirs).abs().max()),
        "output_range": [float(theirs.min()), float(theirs.max())],
    }
    return result


def format_result(r: dict[str, Any]) -> str:
    """Human-readable lines of :func:`run`'s result."""
    lines = [
        f"RCAN x{r['scale']} (10x20 RCABs, 64 feats, random official-layout weights), input "
        f"{tuple(r['input'])}, {r['threads']} thread(s), {r['rounds']} interleaved rounds; "
        f"spandrel {r['spandrel_version']} ({r['spandrel']['arch']}), torch {r['torch']}",
    ]
    for k, v in r["median_ms"].items():
        lines.append(f"  {k:<36} median {v:9.1f} ms   min {r['min_ms'][k]:9.1f} ms")
    ratios = (
        ("spandrel / srplug upsampler", "ratio_spandrel_over_srplug_upsampler"),
        ("spandrel (CL) / srplug upsampler", "ratio_spandrel_cl_over_srplug_upsampler"),
        ("spandrel / srplug kernels=eager", "ratio_spandrel_over_srplug_eager"),
        ("spandrel / srplug precision=auto", "ratio_spandrel_over_srplug_auto"),
        ("spandrel (CL) / srplug eager model (CL)", "ratio_spandrel_cl_over_srplug_model_cl"),
    )
    lines += [f"  {label + ':':<44}{r[key]:.2f}x" for label, key in ratios]
    lines += [
        f"  srplug upsampler kernels: {r['kernels']}",
        f"  max |srplug - spandrel|: {r['max_abs_diff']:.2e} (upsampler vs clamped), "
        f"{r['max_abs_diff_eager']:.2e} (eager upsampler vs clamped), "
        f"{r['max_abs_diff_channels_last']:.2e} (eager model CL); precision=auto chose "
        f"{r['auto_precision']}, max |auto - fp32| "
        f"{r['max_abs_diff_auto_vs_fp32']:.2e}; output range "
        f"[{r['output_range'][0]:.2f}, {r['output_range'][1]:.2f}]",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spandrel-python", help="python of an environment with spandrel")
    parser.add_argument("--scale", type=int, default=4, choices=(2, 3, 4, 8))
    parser.add_argument("--size", type=int, default=48, help="LR input side (pixels)")
    parser.add_argument("--rounds", type=int, default=ROUNDS_DEFAULT, help="timed rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.threads)
        return 0
    if not args.spandrel_python:
        parser.error("--spandrel-python is required (the python of a spandrel venv)")
    result = run(
        args.spandrel_python,
        scale=args.scale,
        size=args.size,
        rounds=args.rounds,
        threads=args.threads,
    )
    print(format_result(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
