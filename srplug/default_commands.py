"""The core's own CLI commands, registered through the same hook as any plugin's."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from srplug.errors import InputError
from srplug.hookspecs import hookimpl

DEFAULT_DATASETS = ("Set5", "Set14", "B100")
DEFAULT_OUTPUT = "srplug-out"


def _add_model_options(parser: argparse.ArgumentParser, *, multi_scale: bool = False) -> None:
    if multi_scale:
        parser.add_argument(
            "--scale", "-s", type=int, nargs="+", default=None, help="scale factor(s)"
        )
    else:
        parser.add_argument("--scale", "-s", type=int, default=None, help="scale factor")
    parser.add_argument(
        "--weights",
        "-w",
        default="default",
        help="'default', a weights tag (x2 ...), a file path, or 'none' for random init",
    )
    parser.add_argument("--device", default=None, help="torch device (cpu, cuda, cuda:1 ...)")
    parser.add_argument("--dtype", default=None, help="float32 (default), bfloat16 or float16")
    parser.add_argument(
        "--option",
        "-O",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model option passed to the plugin's build (repeatable; values parsed as JSON)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _model_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InputError(f"model option {pair!r} must look like KEY=VALUE")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def _get_upsampler(args: argparse.Namespace, scale: int | None):
    import srplug

    weights = None if str(args.weights).lower() == "none" else args.weights
    return srplug.get(
        args.model,
        scale=scale,
        weights=weights,
        device=args.device,
        dtype=args.dtype,
        **_model_options(args.option),
    )


def _print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


# ---------------------------------------------------------------------------------- list / info


def _cmd_list(args: argparse.Namespace) -> int:
    import srplug

    specs = srplug.models()
    names = srplug.list(args.pattern)
    if args.json:
        print(json.dumps([_spec_summary(specs[n]) for n in names], indent=2))
        return 0
    rows = []
    for name in names:
        spec = specs[name]
        scales = ",".join(str(s) for s in spec.scales) if spec.scales else "any"
        tags = ",".join(w.tag for w in spec.weights) or "-"
        rows.append([name, scales, spec.channels, tags, spec.plugin])
    if rows:
        _print_table(rows, ["model", "scales", "input", "weights", "plugin"])
    elif args.pattern:
        print(f"no registered model matches {args.pattern!r}", file=sys.stderr)
    else:
        print("no models registered; install a plugin (see `srplug plugins`)", file=sys.stderr)
    return 0


def _spec_summary(spec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "plugin": spec.plugin,
        "channels": spec.channels,
        "scales": list(spec.scales) if spec.scales else None,
        "default_scale": spec.resolved_default_scale(),
        "aliases": list(spec.aliases),
        "description": spec.description,
        "paper": spec.paper,
        "license": spec.license,
        "weights": [
            {"tag": w.tag, "scale": w.scale, "format": w.format, "card": w.card.to_dict()}
            for w in spec.weights
        ],
    }


def _cmd_info(args: argparse.Namespace) -> int:
    import srplug

    summary = _spec_summary(srplug.info(args.name))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for key in (
        "name",
        "plugin",
        "description",
        "channels",
        "scales",
        "default_scale",
        "aliases",
        "paper",
        "license",
    ):
        value = summary[key]
        if value in (None, "", []):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        print(f"{key + ':':15}{value}")
    if summary["scales"] is None:
        print(f"{'scales:':15}any integer")
    for w in summary["weights"]:
        card = w["card"]
        print(f"weights {w['tag']} (x{w['scale']}, {w['format']}):")
        for key in ("params", "source", "training_data", "steps", "recipe", "license"):
            if card.get(key) not in (None, ""):
                print(f"    {key + ':':15}{card[key]}")
        for m in card.get("metrics", []):
            ssim = f"  SSIM {m['ssim']:.4f}" if m.get("ssim") is not None else ""
            print(f"    {m['dataset']} x{m['scale']}: PSNR {m['psnr']:.2f}{ssim}")
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from srplug import plugins

    statuses = plugins.plugin_statuses()
    if args.json:
        print(json.dumps([s.to_dict() for s in statuses], indent=2))
        return 0
    rows = []
    for s in statuses:
        version = f"{s.distribution} {s.version}" if s.version else (s.distribution or "-")
        rows.append([s.name, s.state, version, ",".join(s.models) or "-"])
    _print_table(rows, ["plugin", "state", "distribution", "models"])
    for s in statuses:
        if s.error:
            print(f"\n{s.name}: {s.error}")
            if args.verbose and s.details:
                print(s.details.rstrip())
    return 0


# ------------------------------------------------------------------------------------- upscale


def sample_image_path() -> Path:
    """The built-in sample image used when ``srplug upscale`` is given no input."""
    return Path(str(resources.files("srplug") / "assets" / "sample.png"))


def expand_inputs(inputs: list[str], *, recursive: bool = False) -> list[tuple[Path, Path]]:
    """Files, folders and glob patterns -> ``(file, path relative to the output folder)``."""
    from srplug.io import is_image_file

    found: list[tuple[Path, Path]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.is_file() and is_image_file(p))
            found += [(f, f.relative_to(path)) for f in files]
        elif path.is_file():
            found.append((path, Path(path.name)))
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            found += [(Path(m), Path(Path(m).name)) for m in matches if is_image_file(m)]
        else:
            raise InputError(f"input {item!r} is neither a file, a folder nor a matching glob")
    if not found:
        raise InputError("no image files found in the given inputs")
    return found


def _plan_outputs(
    sources: list[tuple[Path, Path]], output: str, suffix: str, ext: str | None
) -> list[tuple[Path, Path]]:
    from srplug.io import is_image_file

    out = Path(output)
    single_file = len(sources) == 1 and is_image_file(out) and not out.is_dir()
    plan: list[tuple[Path, Path]] = []
    for src, rel in sources:
        if single_file:
            dst = out
        else:
            new_suffix = ext if ext else rel.suffix
            dst = out / rel.with_name(rel.stem + suffix + new_suffix)
        plan.append((src, dst))
    targets = [dst for _, dst in plan]
    if len(set(targets)) != len(targets):
        raise InputError("two inputs would be written to the same output file; use folders")
    if any(src.resolve() == dst.resolve() for src, dst in plan if dst.exists()):
        raise InputError("an output file would overwrite its input; choose another -o")
    return plan


def _cmd_upscale(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from srplug.io import read_image, write_image

    inputs = args.inputs or [str(sample_image_path())]
    ext = None
    if args.ext:
        ext = args.ext if args.ext.startswith(".") else "." + args.ext
    plan = _plan_outputs(
        expand_inputs(inputs, recursive=args.recursive), args.output, args.suffix, ext
    )
    upsampler = _get_upsampler(args, args.scale)
    bar = tqdm(plan, unit="img", disable=args.no_progress or len(plan) < 2, file=sys.stderr)
    for src, dst in bar:
        bar.set_postfix_str(src.name)
        result = upsampler(read_image(src))
        write_image(dst, result)
        if len(plan) == 1 or args.no_progress:
            h, w = result.shape[:2]
            print(f"{src} -> {dst} ({w}x{h}, {upsampler.name} x{upsampler.scale})")
    if len(plan) > 1:
        print(f"wrote {len(plan)} images to {args.output}")
    return 0


# ----------------------------------------------------------------------------------------- eval


def _cmd_eval(args: argparse.Namespace) -> int:
    import srplug
    from srplug.datasets import BenchmarkDataset, resolve_dataset
    from srplug.evaluation import evaluate

    names = args.dataset or list(DEFAULT_DATASETS)
    data_root = args.data or os.environ.get("SRPLUG_DATA")
    folders = [resolve_dataset(name, data_root) for name in names]
    scales = args.scale or [srplug.info(args.model).resolved_default_scale()]
    results = []
    for scale in scales:
        upsampler = _get_upsampler(args, scale)
        for folder in folders:
            dataset = BenchmarkDataset(folder, scale)
            result = evaluate(upsampler, dataset, progress=not args.no_progress)
            results.append(
                {
                    "dataset": folder.name,
                    "scale": scale,
                    "psnr": result.psnr,
                    "ssim": result.ssim,
                    "images": result.images,
                }
            )
    if args.json:
        print(json.dumps({"model": args.model, "results": results}, indent=2))
        return 0
    rows = [
        [
            args.model,
            r["dataset"],
            f"x{r['scale']}",
            f"{r['psnr']:.2f}",
            f"{r['ssim']:.4f}",
            str(r["images"]),
        ]
        for r in results
    ]
    _print_table(rows, ["model", "dataset", "scale", "PSNR", "SSIM", "images"])
    return 0


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", default=None, help="glob filter, e.g. 'edsr*'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_list)

    p = subparsers.add_parser("info", help="describe a model, its weights and model cards")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)

    p = subparsers.add_parser("plugins", help="list plugins, their state and errors")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--verbose", "-v", action="store_true", help="show full tracebacks")
    p.set_defaults(func=_cmd_plugins)

    p = subparsers.add_parser(
        "upscale",
        help="upscale image files, folders or globs",
        description="Upscale images. Without INPUT, the built-in sample image is used.",
    )
    p.add_argument("model")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="files, folders or globs")
    p.add_argument(
        "-o",
        "--output",
        default=DEFAULT_OUTPUT,
        help=f"output folder, or a file name for one input (default {DEFAULT_OUTPUT})",
    )
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--suffix", default="", help="added to output file stems, e.g. _x2")
    p.add_argument("--ext", default=None, help="output format, e.g. png (default: as input)")
    _add_model_options(p)
    p.set_defaults(func=_cmd_upscale)

    p = subparsers.add_parser(
        "eval",
        help="PSNR/SSIM on benchmark sets (standard protocol)",
        description="Score a model on benchmark HR folders: LR made with MATLAB bicubic, "
        "PSNR/SSIM on Y with the border shaved by the scale.",
    )
    p.add_argument("model")
    p.add_argument(
        "--dataset",
        "-d",
        nargs="+",
        default=None,
        metavar="PATH",
        help="dataset folders or names under --data (default Set5 Set14 B100)",
    )
    p.add_argument("--data", default=None, help="data root (default $SRPLUG_DATA)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_model_options(p, multi_scale=True)
    p.set_defaults(func=_cmd_eval)
