"""Training recipes: typed sections read from TOML, YAML, JSON or a mapping.

A recipe file holds one table per section (``[model]``, ``[data]``, ``[optim]``,
``[schedule]``, ``[loss]``, ``[ema]``, ``[validation]``, ``[checkpoint]``, ``[precision]``,
``[gan]``, ``[dual]``) plus the top-level keys ``kind``, ``seed``, ``device`` and
``log_every``. ``model.name``,
``model.scale``, ``data.train`` and ``schedule.steps`` are required; everything else has a
default. An unknown key or a bad value raises :class:`~srplug.errors.InputError` naming the
key (``data.patch_size``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from srplug.errors import InputError, SrplugError

__all__ = [
    "CheckpointSection",
    "DataSection",
    "DualSection",
    "EmaSection",
    "GanSection",
    "LossSection",
    "ModelSection",
    "OptimSection",
    "PrecisionSection",
    "Recipe",
    "ScheduleSection",
    "ValidationSection",
    "load_recipe",
    "read_recipe_file",
]

RECIPE_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def _fail(key: str, message: str) -> None:
    raise InputError(f"recipe key {key!r}: {message}")


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        _fail(key, message)


@dataclass(frozen=True)
class ModelSection:
    """Which network to train: a registered model name, its scale and build options."""

    name: str
    scale: int
    options: dict[str, Any] = field(default_factory=dict)
    """Passed to the plugin's ``build`` (as ``srplug.get(name, scale, **options)``)."""
    init: str | None = None
    """Weights to start from: a tag of the model (``"x2"``) or a file; default random init."""

    def __post_init__(self) -> None:
        _require(self.scale >= 1, "model.scale", f"must be a positive integer, got {self.scale}")


@dataclass(frozen=True)
class DataSection:
    """Training pairs cut from HR folders (LR = MATLAB bicubic of the mod-cropped HR)."""

    train: tuple[str, ...]
    """HR folders, or set names under ``root`` / ``$SRPLUG_DATA`` (``["T91", "BSD200"]``)."""
    root: str | None = None
    """Folder holding named sets (training and validation); default ``$SRPLUG_DATA``."""
    patch_size: int = 64
    """Side of the HR patches in pixels (a multiple of the scale); LR patches are 1/scale."""
    batch_size: int = 16
    """Patches per optimizer step in total, split evenly over the processes."""
    flip: bool = True
    rot90: bool = True
    hr_scales: tuple[float, ...] = (1.0,)
    """Each HR image is also used shrunk by these factors (MATLAB bicubic), e.g. 0.9, 0.8."""
    workers: int = 0
    """DataLoader worker processes per training process."""
    degradation: str | tuple[dict[str, Any], ...] | None = None
    """``"none"`` (same as unset): LR by exact MATLAB bicubic. Otherwise LR by a random
    degradation (needs Kornia): a preset (``"bicubic"``, ``"blur"``, ``"noise"``,
    ``"jpeg"``, ``"real"``) or a list of op tables (``{op = "blur", sigma = [0.2, 2.0]}``,
    ``{op = "downscale"}`` ...); see :func:`srplug.adapters.kornia.build_degradation`."""

    def __post_init__(self) -> None:
        _require(len(self.train) > 0, "data.train", "needs at least one HR folder")
        _require(self.patch_size >= 1, "data.patch_size", "must be a positive integer")
        _require(self.batch_size >= 1, "data.batch_size", "must be a positive integer")
        _require(self.workers >= 0, "data.workers", "must be 0 or more")
        _require(len(self.hr_scales) > 0, "data.hr_scales", "needs at least one factor")
        for f in self.hr_scales:
            _require(0.0 < f <= 1.0, "data.hr_scales", f"factors must lie in (0, 1], got {f}")


@dataclass(frozen=True)
class OptimSection:
    """Adam or AdamW, with optional gradient-norm clipping."""

    name: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    """Maximum global gradient norm; 0 switches clipping off."""
    lr_scale: dict[str, float] = field(default_factory=dict)
    """Per-parameter rate multipliers: shell-style patterns over the model's parameter
    names (``"deconv.*"``, ``"conv3.*"``) to a factor of ``lr``; the first matching pattern
    wins, unmatched parameters get 1. The schedule scales every group alike."""

    def __post_init__(self) -> None:
        _require(self.lr > 0, "optim.lr", f"must be positive, got {self.lr}")
        for pattern, factor in self.lr_scale.items():
            _require(
                isinstance(factor, (int, float)) and not isinstance(factor, bool) and factor > 0,
                f"optim.lr_scale.{pattern}",
                f"must be a positive number, got {factor!r}",
            )
        for b in self.betas:
            _require(0.0 <= b < 1.0, "optim.betas", f"values must lie in [0, 1), got {b}")
        _require(self.eps > 0, "optim.eps", "must be positive")
        _require(self.weight_decay >= 0, "optim.weight_decay", "must be 0 or more")
        _require(self.grad_clip >= 0, "optim.grad_clip", "must be 0 (off) or a positive norm")


@dataclass(frozen=True)
class ScheduleSection:
    """Learning-rate schedule over ``steps`` optimizer steps, with optional linear warmup."""

    steps: int
    kind: Literal["constant", "step", "cosine"] = "cosine"
    warmup: int = 0
    """Steps of linear warmup from ``lr / warmup`` to ``lr``."""
    milestones: tuple[int, ...] = ()
    """``kind = "step"``: steps at which the rate is multiplied by ``gamma``."""
    gamma: float = 0.5
    min_lr: float = 0.0
    """``kind = "cosine"``: the rate reached at the last step."""

    def __post_init__(self) -> None:
        _require(self.steps >= 1, "schedule.steps", f"must be a positive integer, got {self.steps}")
        _require(0 <= self.warmup < self.steps, "schedule.warmup", "must be 0 or more and < steps")
        _require(0.0 < self.gamma <= 1.0, "schedule.gamma", "must lie in (0, 1]")
        _require(self.min_lr >= 0, "schedule.min_lr", "must be 0 or more")
        _require(
            list(self.milestones) == sorted(set(self.milestones))
            and all(m >= 1 for m in self.milestones),
            "schedule.milestones",
            "must be increasing positive step numbers",
        )
        _require(
            self.kind == "step" or not self.milestones,
            "schedule.milestones",
            f"only applies to kind = 'step', not {self.kind!r}",
        )


@dataclass(frozen=True)
class LossSection:
    """Pixel loss between the network output and the HR patch."""

    kind: Literal["l1", "l2", "charbonnier"] = "l1"
    eps: float = 1e-3
    """Charbonnier smoothing: ``sqrt(d^2 + eps^2)``."""
    border: int = 0
    """Width in output (HR) pixels of the frame on each side of the patch that the loss
    weighs ``border_weight``. The network pads its input with zeros, so outputs near a patch
    edge see black where the image goes on; on small patches those outputs are a large
    share of the loss and bend the fit. Set it to the receptive-field radius times the
    scale (a 7x7 one-layer eSR net at x4: 12)."""
    border_weight: float = 0.0
    """Weight of the ``border`` frame against 1 inside (0: left out). Test images are far
    larger than training patches, so their padded edges are a smaller share of the score;
    a weight below 1 gives the edges that smaller share without ignoring them."""

    def __post_init__(self) -> None:
        _require(self.eps > 0, "loss.eps", "must be positive")
        _require(self.border >= 0, "loss.border", "must be 0 or more")
        _require(0.0 <= self.border_weight < 1.0, "loss.border_weight", "must be in [0, 1)")
        _require(
            self.border > 0 or self.border_weight == 0.0,
            "loss.border_weight",
            "only applies with loss.border > 0",
        )


@dataclass(frozen=True)
class EmaSection:
    """Exponential moving average of the weights; the average is what gets exported."""

    enabled: bool = True
    decay: float = 0.999
    warmup: bool = True
    """Use ``min(decay, (1 + n) / (10 + n))`` after n updates, so early averages follow fast."""

    def __post_init__(self) -> None:
        _require(0.0 <= self.decay < 1.0, "ema.decay", f"must lie in [0, 1), got {self.decay}")


@dataclass(frozen=True)
class ValidationSection:
    """Benchmark folders scored (standard protocol: Y-PSNR/SSIM, border shaved) during and
    after training."""

    sets: tuple[str, ...] = ()
    """Scored every ``every`` steps (folders or names under ``data.root``)."""
    every: int = 1000
    final_sets: tuple[str, ...] | None = None
    """Scored at the end for the model card; default: ``sets``."""

    def __post_init__(self) -> None:
        _require(self.every >= 1, "validation.every", "must be a positive integer")


@dataclass(frozen=True)
class CheckpointSection:
    """Checkpoints (``checkpoints/last.pt`` plus numbered ones) written every ``every`` steps."""

    every: int = 1000
    keep: int = 1
    """Numbered checkpoints (``step_000100.pt``) kept besides ``last.pt``; 0 keeps none."""

    def __post_init__(self) -> None:
        _require(self.every >= 1, "checkpoint.every", "must be a positive integer")
        _require(self.keep >= 0, "checkpoint.keep", "must be 0 or more")


@dataclass(frozen=True)
class PrecisionSection:
    """Compute precision of the forward/backward pass (weights stay float32).

    ``bf16``: bfloat16 autocast (CPU or CUDA); ``fp16``: float16 AMP with loss scaling (CUDA
    only); ``auto``: time a few probe steps in both and take the low precision when it is at
    least ``min_speedup`` times faster and its loss differs by at most ``max_loss_change``.
    """

    mode: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    probe_steps: int = 5
    min_speedup: float = 1.1
    max_loss_change: float = 0.01
    """Relative difference of the probe loss allowed (0.01 = 1 %)."""

    def __post_init__(self) -> None:
        _require(self.probe_steps >= 1, "precision.probe_steps", "must be a positive integer")
        _require(self.min_speedup > 0, "precision.min_speedup", "must be positive")
        _require(self.max_loss_change >= 0, "precision.max_loss_change", "must be 0 or more")


@dataclass(frozen=True)
class GanSection:
    """``kind = "gan"``: generator loss ``pixel_weight * pixel + feature_weight * VGG
    feature loss + adversarial_weight * adversarial``; a discriminator trained alongside.

    SRGAN (Ledig et al. 2017) phase 2 is ``pixel_weight = 0``, VGG feature loss (their
    VGG19 relu5_4; here VGG16 ``relu5_3``) on features scaled by 1/12.75 (the loss by
    about 0.006), and
    ``adversarial_weight = 1e-3``, started from the phase-1 SRResNet (``model.init``).
    """

    discriminator: str = "default"
    """``"default"`` (:class:`srplug.train.gan.Discriminator`) or ``"package.module:Class"``
    of an ``nn.Module`` mapping ``(B, 3, H, W)`` in [0, 1] to ``(B, 1)`` logits."""
    discriminator_options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the discriminator class."""
    d_lr: float = 1e-4
    """Discriminator Adam learning rate (its schedule follows ``schedule``)."""
    d_betas: tuple[float, float] = (0.9, 0.999)
    gan_type: Literal["vanilla", "lsgan", "ragan"] = "vanilla"
    """Adversarial loss: binary cross-entropy on logits, least squares, or relativistic
    average (ESRGAN)."""
    adversarial_weight: float = 1e-3
    pixel_weight: float = 0.0
    """Weight of ``loss.kind`` (the pixel loss) in the generator loss."""
    feature_weight: float = 1.0
    feature_layer: str = "relu5_3"
    """VGG16 layer of the feature loss (``relu2_2``, ``relu5_3``, ``conv5_3`` ...)."""
    feature_criterion: Literal["l1", "l2"] = "l2"
    feature_scale: float = 1.0 / 12.75
    """Features are multiplied by this before the criterion (SRGAN: 1/12.75)."""
    vgg_weights: str | None = None
    """torchvision-layout VGG16 safetensors; default ``$SRPLUG_VGG16_WEIGHTS``."""

    def __post_init__(self) -> None:
        _require(self.d_lr > 0, "gan.d_lr", f"must be positive, got {self.d_lr}")
        for b in self.d_betas:
            _require(0.0 <= b < 1.0, "gan.d_betas", f"values must lie in [0, 1), got {b}")
        for key in ("adversarial_weight", "pixel_weight", "feature_weight"):
            _require(getattr(self, key) >= 0, f"gan.{key}", "must be 0 or more")
        _require(self.feature_scale > 0, "gan.feature_scale", "must be positive")
        from srplug.perceptual import VGG16_LAYERS

        _require(
            self.feature_layer in VGG16_LAYERS,
            "gan.feature_layer",
            f"unknown VGG16 layer {self.feature_layer!r}; use one of {', '.join(VGG16_LAYERS)}",
        )


@dataclass(frozen=True)
class DualSection:
    """``kind = "dual"``: DRN dual regression (Guo et al. 2020).

    The model must offer ``forward_all(lr) -> [out_1x, out_2x, ..., out_Sx]`` and
    ``dual_models`` (``dual_models[i]`` maps the ``2^(i+1)``-x output down by 2). Paired
    loss: primal ``loss(out_Sx, hr)`` plus ``loss(out_k, LR pyramid level k)`` for the
    coarser outputs, plus ``weight`` times the dual loss ``sum_i loss(dual_i(out_(i+1)),
    level i)``.
    """

    weight: float = 0.1
    """Dual-loss weight (DRN's lambda)."""
    unpaired: bool = False
    """Fine-tune on LR-only images (``data.train`` holds LR images; ``data.patch_size``
    stays the HR-side size): dual loss only, ``sum_i loss(D_0(...D_i(out_(i+1))), lr)``."""
    degradation: tuple[dict[str, Any], ...] | str | None = None
    """Use this fixed, known HR -> LR degradation (op tables as ``data.degradation``, drawn
    once: give fixed values, e.g. ``sigma = [1.6, 1.6]``) instead of the learned dual models
    as the dual mapping ``out_Sx -> lr``; for adapting to LR images of a known blur."""
    train_dual: bool = True
    """Update the dual models too (False freezes them)."""

    def __post_init__(self) -> None:
        _require(self.weight >= 0, "dual.weight", "must be 0 or more")


@dataclass(frozen=True)
class Recipe:
    """A complete training recipe. Build it with :func:`load_recipe`."""

    model: ModelSection
    data: DataSection
    schedule: ScheduleSection
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    ema: EmaSection = field(default_factory=EmaSection)
    validation: ValidationSection = field(default_factory=ValidationSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    precision: PrecisionSection = field(default_factory=PrecisionSection)
    gan: GanSection = field(default_factory=GanSection)
    dual: DualSection = field(default_factory=DualSection)
    kind: Literal["pixel", "gan", "dual"] = "pixel"
    """``"pixel"``: pixel loss only; ``"gan"``: adds a discriminator and VGG feature loss
    (``[gan]``); ``"dual"``: DRN dual regression (``[dual]``)."""
    seed: int = 0
    device: str = "auto"
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``."""
    log_every: int = 100
    """Steps between lines of ``train_log.jsonl`` (loss and learning rate)."""

    def __post_init__(self) -> None:
        _require(self.log_every >= 1, "log_every", "must be a positive integer")
        _require(self.seed >= 0, "seed", "must be 0 or more")
        _require(
            self.device in ("auto", "cpu", "cuda"), "device", "must be 'auto', 'cpu' or 'cuda'"
        )
        _require(
            self.data.patch_size % self.model.scale == 0,
            "data.patch_size",
            f"{self.data.patch_size} is not a multiple of model.scale {self.model.scale}",
        )
        _require(
            2 * self.loss.border < self.data.patch_size,
            "loss.border",
            f"{self.loss.border} leaves nothing of a {self.data.patch_size}-pixel patch; "
            "use a border below half of data.patch_size",
        )
        _require(
            all(m < self.schedule.steps for m in self.schedule.milestones),
            "schedule.milestones",
            f"must be below schedule.steps ({self.schedule.steps})",
        )
        if self.data.degradation not in (None, "none"):
            _check_degradation(self.data.degradation, self.model.scale)
        if self.dual.degradation not in (None, "none"):
            _check_degradation(self.dual.degradation, self.model.scale, "dual.degradation")
        _require(
            self.kind == "dual" or not self.dual.unpaired,
            "dual.unpaired",
            f"only applies to kind = 'dual', not {self.kind!r}",
        )
        if self.kind == "dual":
            s = self.model.scale
            _require(
                s >= 2 and s & (s - 1) == 0,
                "kind",
                f"'dual' needs a power-of-two scale (2, 4, 8), got {s}",
            )

    @property
    def final_sets(self) -> tuple[str, ...]:
        """Sets scored at the end of training (``validation.final_sets`` or ``sets``)."""
        v = self.validation
        return v.sets if v.final_sets is None else v.final_sets

    def with_steps(self, steps: int) -> Recipe:
        """A copy training for ``steps`` steps in total (milestones beyond it are an error)."""
        raw = self.to_dict()
        raw["schedule"]["steps"] = steps
        return Recipe.from_dict(raw)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, str, int, float, bool, None), as read by
        :meth:`from_dict`; JSON- and ``torch.load(weights_only=True)``-safe."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Recipe:
        """Check and convert a mapping (e.g. a parsed TOML file) into a :class:`Recipe`."""
        return _build(cls, raw, "")


def _check_degradation(spec: Any, scale: int, key: str = "data.degradation") -> None:
    """Build a degradation once to report a bad value against its key."""
    try:
        from srplug.adapters.kornia import build_degradation

        build_degradation(spec, scale)
    except SrplugError as exc:  # InputError, or Kornia missing
        _fail(key, str(exc))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ------------------------------------------------------------------------------- conversion


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        inner = _describe(args[0])
        return f"a list of {inner}" if args[-1] is Ellipsis else f"a list of {len(args)} {inner}"
    if origin is dict:
        return "a table"
    if tp is type(None):
        return "none"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against the annotation ``tp``; InputError naming ``key`` if not."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".")
    if origin is Literal:
        if value in typing.get_args(tp) and isinstance(value, str):
            return value
    elif origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except InputError:
                continue
    elif origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, (list, tuple)):
            if args[-1] is Ellipsis:
                return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
            if len(value) == len(args):
                return tuple(
                    _convert(v, a, f"{key}[{i}]")
                    for i, (v, a) in enumerate(zip(value, args, strict=True))
                )
    elif origin is dict:
        if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
            _check_plain(value, key)
            return dict(value)
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - only the annotations above are used
        raise TypeError(f"unsupported recipe annotation {tp!r}")
    _fail(key, f"must be {_describe(tp)}, got {value!r}")


def _check_plain(value: Any, key: str) -> None:
    """Model options must be plain data so checkpoints stay weights-only loadable."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_plain(v, f"{key}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{key}[{i}]")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        _fail(key, f"must be plain data (string, number, boolean, list, table), got {value!r}")


def _build(cls: type, raw: Any, prefix: str) -> Any:
    section = prefix.rstrip(".") or "recipe"
    if not isinstance(raw, Mapping):
        _fail(section, f"must be a table of keys, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in raw if k not in fields]
    if unknown:
        key = str(unknown[0])
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(fields)}"
        _fail(prefix + key, f"unknown key; {hint}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in raw:
            values[name] = _convert(raw[name], hints[name], prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            _fail(prefix + name, "is required but missing")
    return cls(**values)


# ----------------------------------------------------------------------------------- files


def _parse_toml(text: str, path: Path) -> Any:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"recipe {path} is not valid TOML: {exc}") from exc


def _parse_yaml(text: str, path: Path) -> Any:
    try:
        import yaml
    except ModuleNotFoundError as exc:
        raise InputError(
            f"reading YAML recipe {path} needs PyYAML: pip install 'srplug[yaml]' (or use TOML)"
        ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"recipe {path} is not valid YAML: {exc}") from exc


def read_recipe_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw mapping in a ``.toml``, ``.yaml``/``.yml`` or ``.json`` recipe file."""
    file = Path(path).expanduser()
    suffix = file.suffix.lower()
    if suffix not in RECIPE_SUFFIXES:
        raise InputError(
            f"recipe {file} has an unknown suffix {suffix!r}; use one of {RECIPE_SUFFIXES}"
        )
    if not file.is_file():
        raise InputError(f"recipe file {file} does not exist; check the path")
    text = file.read_text(encoding="utf-8")
    if suffix == ".toml":
        raw = _parse_toml(text, file)
    elif suffix == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"recipe {file} is not valid JSON: {exc}") from exc
    else:
        raw = _parse_yaml(text, file)
    if not isinstance(raw, dict):
        raise InputError(f"recipe {file} must hold a table of sections, got {type(raw).__name__}")
    return raw


def load_recipe(source: Recipe | Mapping[str, Any] | str | os.PathLike[str]) -> Recipe:
    """A checked :class:`Recipe` from a recipe object, a mapping, or a TOML/YAML/JSON file.

    Raises InputError naming the offending key for unknown keys and bad values.
    """
    if isinstance(source, Recipe):
        return source
    if isinstance(source, Mapping):
        return Recipe.from_dict(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return Recipe.from_dict(read_recipe_file(path))
        except InputError as exc:
            if str(path) in str(exc):
                raise
            raise InputError(f"{path}: {exc}") from exc
    raise InputError(f"a recipe is a mapping or a file path, got {type(source).__name__}")
