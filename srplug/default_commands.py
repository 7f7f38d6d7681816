"""The core's own CLI commands, registered through the same hook as any plugin's."""

from __future__ import annotations

import argparse
import glob
import inspect
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
    engine = {
        key: getattr(args, key)
        for key in ("tile", "tile_overlap", "precision", "compile", "ensemble", "kernels")
        if getattr(args, key, None) not in (None, False)
    }
    return srplug.get(
        args.model,
        scale=scale,
        weights=weights,
        device=_rank_device(args.device),
        dtype=args.dtype,
        **engine,
        **_model_options(args.option),
    )


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Tiling, precision, compile, self-ensemble and kernel flags (see ``srplug.get``)."""
    parser.add_argument(
        "--tile",
        type=_tile_arg,
        default=None,
        metavar="N|auto",
        help="run in tiles of N LR pixels (auto: sized from free memory); seamless for "
        "convolutional models, the image stays on the CPU",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=None,
        metavar="N",
        help="context pixels per tile side (default: the measured receptive field)",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16", "auto"),
        default=None,
        help="compute precision; auto measures fp32 against bf16/fp16 on a probe image",
    )
    parser.add_argument("--compile", action="store_true", help="run through torch.compile")
    parser.add_argument(
        "--ensemble", action="store_true", help="x8 self-ensemble (rotations and flips)"
    )
    parser.add_argument(
        "--kernels",
        choices=("auto", "fused", "eager"),
        default=None,
        help="srplug's fused C++ kernels (Winograd convolutions, fused attention); auto: on "
        "the CPU in float32 when the extension builds (default)",
    )


def _tile_arg(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--tile takes a number of pixels or 'auto', not {value!r}"
        ) from None


def shard() -> tuple[int, int]:
    """``(rank, world_size)`` from torchrun's environment; ``(0, 1)`` outside torchrun."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as exc:
        raise InputError("RANK and WORLD_SIZE must be integers (set by torchrun)") from exc
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"RANK={rank} does not fit WORLD_SIZE={world}")
    return rank, world


def _rank_device(device: str | None) -> str | None:
    """Under torchrun, a bare ``cuda`` means this process's GPU (``cuda:LOCAL_RANK``)."""
    if device == "cuda" and shard()[1] > 1:
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


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


def _build_options(spec) -> dict[str, Any]:
    """The keyword options of ``spec.build`` besides ``scale``, with their defaults."""
    try:
        params = inspect.signature(spec.build).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in params
        if p.name != "scale" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


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
        "options": _build_options(spec),
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
    if summary["options"]:
        shown = ", ".join(f"{k}={v!r}" for k, v in summary["options"].items())
        print(f"{'options:':15}{shown}  (set with -O key=value)")
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


VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")
"""Inputs with these suffixes are upscaled frame by frame as videos."""
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}
_FOURCC_DEFAULT = "VP80"  # .webm


def is_video_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` has a video suffix ``srplug upscale`` handles."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _is_input_file(path: str | os.PathLike[str]) -> bool:
    from srplug.io import is_image_file

    return is_image_file(path) or is_video_file(path)


def expand_inputs(inputs: list[str], *, recursive: bool = False) -> list[tuple[Path, Path]]:
    """Files, folders and glob patterns -> ``(file, path relative to the output folder)``.

    Folders and globs contribute their image and video files."""
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.is_file() and _is_input_file(p))
            found += [(f, f.relative_to(path)) for f in files]
        elif path.is_file():
            found.append((path, Path(path.name)))
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            found += [(Path(m), Path(Path(m).name)) for m in matches if _is_input_file(m)]
        else:
            raise InputError(f"input {item!r} is neither a file, a folder nor a matching glob")
    if not found:
        raise InputError("no image files (or videos) found in the given inputs")
    return found


def _plan_outputs(
    sources: list[tuple[Path, Path]], output: str, suffix: str, ext: str | None
) -> list[tuple[Path, Path]]:
    from srplug.io import is_image_file

    out = Path(output)
    same_kind = is_video_file if sources and is_video_file(sources[0][0]) else is_image_file
    single_file = len(sources) == 1 and same_kind(out) and not out.is_dir()
    plan: list[tuple[Path, Path]] = []
    for src, rel in sources:
        if single_file:
            dst = out
        else:
            # --ext applies to the inputs of its own kind (an image format to images ...)
            fits = ext and ((ext.lower() in VIDEO_SUFFIXES) == is_video_file(src))
            new_suffix = ext if fits else rel.suffix
            dst = out / rel.with_name(rel.stem + suffix + new_suffix)
        plan.append((src, dst))
    targets = [dst for _, dst in plan]
    if len(set(targets)) != len(targets):
        raise InputError("two inputs would be written to the same output file; use folders")
    if any(src.resolve() == dst.resolve() for src, dst in plan if dst.exists()):
        raise InputError("an output file would overwrite its input; choose another -o")
    return plan


def upscale_video(
    upsampler: Any, src: Path, dst: Path, *, progress: bool = True
) -> tuple[int, int, int]:
    """Upscale every frame of the video ``src`` into ``dst``; returns ``(frames, width,
    height)`` of the result.

    Frames are read with ``cv2.VideoCapture`` (BGR), upscaled in RGB and written with
    ``cv2.VideoWriter`` at the source frame rate, with a codec chosen by ``dst``'s suffix
    (mp4v for .mp4/.m4v/.mov, MJPG for .avi, XVID for .mkv, VP8 for .webm). The video is
    written to a temporary file beside ``dst`` and renamed on success, so a failure never
    leaves a partial ``dst``. Audio is not copied.
    """
    import cv2
    from tqdm import tqdm

    capture = cv2.VideoCapture(str(src))
    if not capture.isOpened():
        raise InputError(f"OpenCV cannot open the video {str(src)!r}; check the file and codec")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and fps > 0 and fps == fps else 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.{id(capture):x}.tmp{dst.suffix}")
    writer = None
    frames = 0
    size = (0, 0)
    bar = tqdm(total=total, unit="frame", desc=src.name, disable=not progress, file=sys.stderr)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            out = cv2.cvtColor(upsampler(rgb), cv2.COLOR_RGB2BGR)
            if writer is None:
                size = (out.shape[1], out.shape[0])
                fourcc = _FOURCC.get(dst.suffix.lower(), _FOURCC_DEFAULT)
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, size)
                if not writer.isOpened():
                    raise InputError(
                        f"OpenCV cannot write {dst.suffix} video with codec {fourcc} here; "
                        "choose another output suffix (.avi with MJPG works in most builds)"
                    )
            writer.write(out)
            frames += 1
            bar.update(1)
        if writer is None:
            raise InputError(f"the video {str(src)!r} holds no frame OpenCV can decode")
        writer.release()
        writer = None
        os.replace(tmp, dst)
    finally:
        bar.close()
        capture.release()
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)
    return frames, size[0], size[1]


class _ImageFiles:
    """Map-style dataset over ``(source, destination)`` pairs: item ``i`` is ``(i, image)``,
    or ``(i, exception)`` when the file cannot be read (re-raised by the main process)."""

    def __init__(self, plan: list[tuple[Path, Path]]) -> None:
        self.plan = plan

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> tuple[int, Any]:
        from srplug.io import read_image

        try:
            return index, read_image(self.plan[index][0])
        except Exception as exc:  # shipped to the main process, raised there unchanged
            return index, exc


def _keep(item: Any) -> Any:
    return item


def _read_images(plan: list[tuple[Path, Path]], workers: int, prefetch: int):
    """Yield ``(index, image)`` for ``plan`` in order, read by ``workers`` DataLoader worker
    processes (0: in this process) with ``prefetch`` images queued per worker."""
    from torch.utils.data import DataLoader

    loader = DataLoader(
        _ImageFiles(plan),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        collate_fn=_keep,
        prefetch_factor=prefetch if workers > 0 else None,
        persistent_workers=False,
    )
    for index, item in loader:
        if isinstance(item, BaseException):
            raise item
        yield index, item


def _cmd_upscale(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from srplug.io import write_image

    if args.workers < 0 or args.prefetch < 1:
        raise InputError("--workers must be >= 0 and --prefetch >= 1")
    inputs = args.inputs or [str(sample_image_path())]
    ext = None
    if args.ext:
        ext = args.ext if args.ext.startswith(".") else "." + args.ext
    plan = _plan_outputs(
        expand_inputs(inputs, recursive=args.recursive), args.output, args.suffix, ext
    )
    rank, world = shard()
    total = len(plan)
    plan = plan[rank::world]  # under torchrun each rank writes its share
    upsampler = _get_upsampler(args, args.scale)
    show = not args.no_progress and rank == 0
    bar = tqdm(total=len(plan), unit="img", disable=not show or len(plan) < 2, file=sys.stderr)
    images = [(src, dst) for src, dst in plan if not is_video_file(src)]
    videos = [(src, dst) for src, dst in plan if is_video_file(src)]
    for index, img in _read_images(images, args.workers, args.prefetch):
        src, dst = images[index]
        bar.set_postfix_str(src.name)
        result = upsampler(img)
        write_image(dst, result)
        bar.update(1)
        if total == 1 or args.no_progress:
            h, w = result.shape[:2]
            print(f"{src} -> {dst} ({w}x{h}, {upsampler.name} x{upsampler.scale})")
    for src, dst in videos:
        frames, w, h = upscale_video(upsampler, src, dst, progress=show)
        bar.update(1)
        print(f"{src} -> {dst} ({frames} frames, {w}x{h}, {upsampler.name} x{upsampler.scale})")
    bar.close()
    if world > 1:
        print(f"rank {rank} of {world}: wrote {len(plan)} of {total} files to {args.output}")
    elif total > 1:
        print(f"wrote {total} images to {args.output}")
    return 0


# -------------------------------------------------------------------------------------- export


def _cmd_export(args: argparse.Namespace) -> int:
    from srplug.export import to_onnx

    weights = None if str(args.weights).lower() == "none" else args.weights
    report = to_onnx(
        args.model,
        args.output,
        scale=args.scale,
        weights=weights,
        opset=args.opset,
        check=not args.no_check,
        **_model_options(args.option),
    )
    checked = (
        f"; onnxruntime max |diff| {report.max_abs_diff:.2e} on {len(report.checked_shapes)} "
        "odd-sized inputs"
        if report.max_abs_diff is not None
        else ""
    )
    kind = "RGB" if report.channels == 3 else "Y"
    print(
        f"{report.name} x{report.scale} -> {report.path} (ONNX opset {report.opset}, input "
        f"N x {report.channels} ({kind}) x H x W in [0, 1], dynamic N/H/W{checked})"
    )
    return 0


# ----------------------------------------------------------------------------------------- eval


EVAL_METRICS = ("psnr", "ssim", "lpips")
EVAL_METRICS_DEFAULT = ("psnr", "ssim")


def _cmd_eval(args: argparse.Namespace) -> int:
    import srplug
    from srplug.datasets import BenchmarkDataset, resolve_dataset
    from srplug.evaluation import evaluate

    metrics = list(dict.fromkeys(args.metric or EVAL_METRICS_DEFAULT))
    names = args.dataset or list(DEFAULT_DATASETS)
    folders = [resolve_dataset(name, args.data or None) for name in names]
    scales = args.scale or [srplug.info(args.model).resolved_default_scale()]
    lpips = None
    if "lpips" in metrics:
        from srplug.perceptual import LPIPS

        lpips = LPIPS(args.lpips_weights, args.vgg_weights)
    results = []
    for scale in scales:
        upsampler = _get_upsampler(args, scale)
        for folder in folders:
            dataset = BenchmarkDataset(folder, scale)
            result = evaluate(upsampler, dataset, progress=not args.no_progress, lpips=lpips)
            scores = {"psnr": result.psnr, "ssim": result.ssim, "lpips": result.lpips}
            results.append(
                {
                    "dataset": folder.name,
                    "scale": scale,
                    **{m: scores[m] for m in metrics},
                    "images": result.images,
                }
            )
    if args.json:
        print(json.dumps({"model": args.model, "results": results}, indent=2))
        return 0
    digits = {"psnr": ".2f", "ssim": ".4f", "lpips": ".4f"}
    rows = [
        [
            args.model,
            r["dataset"],
            f"x{r['scale']}",
            *(format(r[m], digits[m]) for m in metrics),
            str(r["images"]),
        ]
        for r in results
    ]
    _print_table(rows, ["model", "dataset", "scale", *(m.upper() for m in metrics), "images"])
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
        help="upscale image or video files, folders or globs",
        description="Upscale images and videos (.mp4, .avi, .mov, .mkv, .webm: frame by "
        "frame, audio dropped). Without INPUT, the built-in sample image is used.",
    )
    p.add_argument("model")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image/video files, folders or globs")
    p.add_argument(
        "-o",
        "--output",
        default=DEFAULT_OUTPUT,
        help=f"output folder, or a file name for one input (default {DEFAULT_OUTPUT})",
    )
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--suffix", default="", help="added to output file stems, e.g. _x2")
    p.add_argument("--ext", default=None, help="output format, e.g. png (default: as input)")
    p.add_argument(
        "--workers",
        "-j",
        type=int,
        default=0,
        help="DataLoader worker processes reading images (default 0: read in this process)",
    )
    p.add_argument("--prefetch", type=int, default=2, help="images queued per worker (2)")
    _add_model_options(p)
    _add_engine_options(p)
    p.set_defaults(func=_cmd_upscale)

    p = subparsers.add_parser(
        "export",
        help="export a model's network to ONNX (dynamic H/W), checked in onnxruntime",
        description="Write the network as ONNX: input N x C x H x W float in [0, 1] (C = 3 "
        "RGB, or 1 BT.601 Y for Y-channel models), output N x C x H*s x W*s; N, H and W "
        "dynamic. The file is checked against PyTorch in onnxruntime on odd-sized inputs.",
    )
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17; default 18)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    _add_model_options(p)
    p.set_defaults(func=_cmd_export)

    p = subparsers.add_parser(
        "eval",
        help="PSNR/SSIM (and LPIPS) on benchmark sets (standard protocol)",
        description="Score a model on benchmark HR folders: LR made with MATLAB bicubic, "
        "PSNR/SSIM on Y with the border shaved by the scale; LPIPS-VGG on RGB (same shave) "
        "with --metric lpips (needs VGG16 and LPIPS weight files).",
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
    p.add_argument(
        "--metric",
        "-m",
        nargs="+",
        choices=EVAL_METRICS,
        default=None,
        help="metrics to report (default psnr ssim); lpips = LPIPS-VGG v0.1, lower is better",
    )
    p.add_argument(
        "--lpips-weights",
        default=None,
        metavar="FILE",
        help="LPIPS v0.1 VGG linear layers, safetensors (default $SRPLUG_LPIPS_WEIGHTS)",
    )
    p.add_argument(
        "--vgg-weights",
        default=None,
        metavar="FILE",
        help="VGG16 features in torchvision layout, safetensors (default $SRPLUG_VGG16_WEIGHTS)",
    )
    _add_model_options(p, multi_scale=True)
    p.set_defaults(func=_cmd_eval)
