"""The model registry: :class:`ModelSpec`, and ``get`` / ``list`` / ``info``.

Plugins describe each model with a :class:`ModelSpec` passed to the ``register`` callback of
the ``register_models`` hook. The registry collects them once (lazily, on the first lookup),
checks them, and refuses a name two plugins claim.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from srplug import plugins
from srplug.errors import (
    DuplicateModelError,
    InputError,
    PluginError,
    SrplugError,
    UnknownModelError,
    WeightsError,
)
from srplug.protocols import Channels

if TYPE_CHECKING:
    from srplug.upsampler import TensorUpsampler
    from srplug.weights import Weights

__all__ = ["ModelSpec", "get", "info", "invalidate", "list_models", "models"]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ModelSpec:
    """Everything srplug needs to know about one model.

    ``build(scale=s, **options)`` returns a ``torch.nn.Module`` that maps a float
    ``(N, C, h, w)`` tensor in [0, 1] (C = 3 for ``channels="rgb"``, 1 for ``"y"``) to
    ``(N, C, h*s, w*s)``. Mean shifts, bicubic pre-upsampling and the like live inside it.
    """

    name: str
    """Registry name: lower case, digits, ``.``, ``_`` and ``-`` (``edsr-baseline``)."""
    build: Callable[..., torch.nn.Module]
    channels: Channels = "rgb"
    scales: tuple[int, ...] | None = None
    """Supported scales; ``None`` means any integer >= 1."""
    default_scale: int | None = None
    """Scale used when ``get`` is given none (default: the smallest supported, else 2)."""
    weights: tuple[Weights, ...] = ()
    """Weights the plugin ships or links to; the first one per scale is the default."""
    description: str = ""
    paper: str | None = None
    license: str | None = None
    aliases: tuple[str, ...] = ()
    network: bool = True
    """False for parameter-free operators (bicubic): ``Upsampler.model`` is then ``None``."""
    convert_state_dict: Callable[[StateDict], StateDict] | None = None
    """Maps other projects' checkpoint layouts onto this model's keys."""
    options_from_weights: Callable[[Path, StateDict], dict[str, Any]] | None = None
    """Reads build options (e.g. channel counts) from a weights file name or contents.

    A ``"scale"`` entry is the scale the file was trained for: it becomes the scale when
    ``get`` is given none, and a different requested scale is refused.
    """
    smoke_options: Mapping[str, Any] = field(default_factory=dict)
    """Build options that keep the architecture but shrink it (fewer blocks), so the
    contract test over every registered model stays fast; never used for real inference."""
    plugin: str = field(default="", compare=False)
    """Name of the plugin that registered the spec (filled in by the registry)."""

    def resolved_default_scale(self) -> int:
        if self.default_scale is not None:
            return self.default_scale
        return min(self.scales) if self.scales else 2

    def weights_for(self, scale: int) -> tuple[Weights, ...]:
        return tuple(w for w in self.weights if w.scale == scale)

    def find_weights(self, tag: str) -> Weights | None:
        return next((w for w in self.weights if w.tag == tag), None)


def _validate_spec(spec: object) -> ModelSpec:
    if not isinstance(spec, ModelSpec):
        raise PluginError(f"register() takes a srplug.ModelSpec, got {type(spec).__name__}")
    if not isinstance(spec.name, str) or not NAME_PATTERN.match(spec.name):
        raise PluginError(
            f"model name {spec.name!r} is invalid: use lower-case letters, digits, '.', '_' "
            "and '-', starting with a letter or digit"
        )
    for alias in spec.aliases:
        if not isinstance(alias, str) or not NAME_PATTERN.match(alias):
            raise PluginError(f"alias {alias!r} of model {spec.name!r} is not a valid name")
    if not callable(spec.build):
        raise PluginError(f"model {spec.name!r}: build must be callable")
    if spec.channels not in ("rgb", "y"):
        raise PluginError(f"model {spec.name!r}: channels must be 'rgb' or 'y'")
    if spec.scales is not None and (
        not spec.scales or any(not _is_int(s) or s < 1 for s in spec.scales)
    ):
        raise PluginError(f"model {spec.name!r}: scales must be positive integers")
    from srplug.weights import Weights

    for w in spec.weights:
        if not isinstance(w, Weights):
            raise PluginError(f"model {spec.name!r}: weights must be srplug.Weights objects")
    return spec


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class _Catalogue:
    specs: dict[str, ModelSpec] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, tuple[str, str]] = field(default_factory=dict)


_lock = threading.RLock()
_catalogue: _Catalogue | None = None


def invalidate() -> None:
    """Drop the collected specs; the next lookup asks the plugins again."""
    global _catalogue
    with _lock:
        _catalogue = None


def _collect() -> _Catalogue:
    pm = plugins.get_plugin_manager()
    cat = _Catalogue()
    owner: dict[str, str] = {}
    for impl in pm.hook.register_models.get_hookimpls():  # registration order
        name = impl.plugin_name
        batch: list[ModelSpec] = []
        try:
            impl.function(register=batch.append)
            batch = [replace(_validate_spec(spec), plugin=name) for spec in batch]
        except Exception as exc:  # skip the whole plugin: it must not break the others
            plugins.record_failure(name, exc)
            continue
        status = plugins.status_of(name)
        for spec in batch:
            keys = (spec.name, *spec.aliases)
            clashes = [k for k in keys if owner.get(k, name) != name]
            for key in clashes:
                cat.conflicts[key] = (owner[key], name)
                err = DuplicateModelError(key, owner[key], name)
                plugins.record_failure(name, err, state="conflict")
            if spec.name in clashes:
                continue
            for key in keys:
                owner.setdefault(key, name)
            cat.specs[spec.name] = spec
            for alias in spec.aliases:
                cat.aliases.setdefault(alias, spec.name)
            if status is not None and spec.name not in status.models:
                status.models.append(spec.name)
    return cat


def _get_catalogue() -> _Catalogue:
    global _catalogue
    with _lock:
        if _catalogue is None:
            _catalogue = _collect()
        return _catalogue


def models() -> dict[str, ModelSpec]:
    """Every registered model by name (a copy)."""
    return dict(_get_catalogue().specs)


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered.

    ``pattern`` is a glob (``"edsr*"``); one without wildcards matches as a substring.
    """
    names = sorted(_get_catalogue().specs)
    if pattern:
        pattern = pattern.lower()
        if not any(ch in pattern for ch in "*?["):
            pattern = f"*{pattern}*"
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def info(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered under ``name`` (or one of its aliases).

    Raises :class:`~srplug.errors.UnknownModelError` (a ``KeyError``) with close matches, or
    :class:`~srplug.errors.DuplicateModelError` when two plugins claim the name.
    """
    if not isinstance(name, str):
        raise InputError(f"model name must be a string, got {type(name).__name__}")
    cat = _get_catalogue()
    key = name.strip().lower()
    if key in cat.conflicts:
        raise DuplicateModelError(key, *cat.conflicts[key])
    key = cat.aliases.get(key, key)
    spec = cat.specs.get(key)
    if spec is None:
        candidates = list(cat.specs) + list(cat.aliases)
        close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
        close += [c for c in candidates if c.startswith(key) and c not in close][: 3 - len(close)]
        raise UnknownModelError(name, close)
    return spec


def _check_scale(spec: ModelSpec, scale: object) -> int:
    if scale is None:
        return spec.resolved_default_scale()
    if not _is_int(scale) or scale < 1:
        raise InputError(f"scale must be a positive integer, got {scale!r}")
    if spec.scales is not None and scale not in spec.scales:
        supported = ", ".join(str(s) for s in spec.scales)
        raise InputError(f"model {spec.name!r} supports scales {supported}, not {scale}")
    return scale


def _looks_like_path(value: str | os.PathLike[str]) -> bool:
    if isinstance(value, os.PathLike):
        return True
    return os.sep in value or "/" in value or Path(value).suffix != "" or Path(value).exists()


def _resolve_weights(
    spec: ModelSpec, scale: int | None, weights: object
) -> tuple[int, Weights | Path | None]:
    """Decide which weights to load and the scale they imply."""
    if weights is None:
        return _check_scale(spec, scale), None
    if not isinstance(weights, (str, os.PathLike)):
        raise InputError(
            f"weights must be None, 'default', a tag or a path, got {type(weights).__name__}"
        )
    if isinstance(weights, str) and weights == "default":
        scale = _check_scale(spec, scale)
        if not spec.network:
            return scale, None
        available = spec.weights_for(scale)
        if not available:
            tags = ", ".join(w.tag for w in spec.weights) or "none"
            raise WeightsError(
                f"model {spec.name!r} has no default weights for x{scale} (shipped: {tags}); "
                "pass weights=None for random initialisation or weights=PATH for a file"
            )
        return scale, available[0]
    if isinstance(weights, str) and (found := spec.find_weights(weights)) is not None:
        if scale is not None and scale != found.scale:
            raise InputError(
                f"weights {weights!r} of model {spec.name!r} are for x{found.scale}, not x{scale}"
            )
        return _check_scale(spec, found.scale), found
    if _looks_like_path(weights):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file {str(path)!r} does not exist")
        return _check_scale(spec, scale), path
    tags = ", ".join(w.tag for w in spec.weights) or "none"
    raise WeightsError(
        f"model {spec.name!r} has no weights tagged {weights!r} (available: {tags}); "
        "pass 'default', one of those tags, a file path, or None"
    )


def _scale_from_file(spec: ModelSpec, path: Path, file_scale: int, requested: int | None) -> int:
    """The scale to build for weights trained at ``file_scale`` (checked against a request)."""
    if requested is not None and requested != file_scale:
        raise WeightsError(
            f"weights file {str(path)!r} is for x{file_scale}, not x{requested}: pass "
            f"scale={file_scale} or the {spec.name} file for x{requested}"
        )
    return _check_scale(spec, file_scale)


def _build(spec: ModelSpec, scale: int, options: Mapping[str, Any]) -> torch.nn.Module:
    try:
        params = inspect.signature(spec.build).parameters
    except (TypeError, ValueError):  # builtins without a signature: just try
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if params and not takes_any:
        unknown = sorted(set(options) - set(params))
        if unknown:
            known = sorted(k for k in params if k != "scale")
            raise InputError(
                f"model {spec.name!r} has no option(s) {', '.join(unknown)}; "
                f"its options are: {', '.join(known) or 'none'}"
            )
    try:
        module = spec.build(scale=scale, **options)
    except SrplugError:
        raise
    except Exception as exc:  # a plugin bug must not escape as a bare traceback
        raise PluginError(
            f"model {spec.name!r} (plugin {spec.plugin!r}) failed to build with "
            f"scale={scale} and options {dict(options)}: {type(exc).__name__}: {exc}; "
            "report this to the plugin's authors"
        ) from exc
    if not isinstance(module, torch.nn.Module):
        raise PluginError(
            f"model {spec.name!r} (plugin {spec.plugin!r}): build() returned "
            f"{type(module).__name__}, not a torch.nn.Module"
        )
    return module


def _load_into(spec: ModelSpec, module: torch.nn.Module, state: StateDict, source: str) -> None:
    if spec.convert_state_dict is not None:
        state = spec.convert_state_dict(state)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        details = " ".join(line.strip() for line in str(exc).splitlines()[1:] if line.strip())
        if len(details) > 600:
            details = details[:600] + " ..."
        raise WeightsError(
            f"weights {source} do not fit model {spec.name!r} ({details or exc}); "
            "check the model name, scale and options"
        ) from exc


def get(
    name: str,
    scale: int | None = None,
    weights: str | os.PathLike[str] | None = "default",
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    tile: int | str | None = None,
    tile_overlap: int | None = None,
    precision: str | None = None,
    compile: bool = False,
    ensemble: bool = False,
    kernels: str = "auto",
    **options: Any,
) -> TensorUpsampler:
    """Build the upsampler registered as ``name``.

    Args:
        name: registered model name or alias (``srplug.list()`` shows them).
        scale: integer scale; default: the model's default scale (or the weights' scale).
        weights: ``"default"`` (the shipped weights for ``scale``), a tag such as ``"x2"``,
            a path to a weights file (safetensors, or a torch file read with
            ``weights_only=True``), or ``None`` for random initialisation.
        device: where to run (``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...); default CPU.
        dtype: compute dtype (``torch.float32`` default, ``"bfloat16"``, ``"float16"``).
        tile: run in tiles of this many LR pixels (``"auto"``: sized from free memory);
            tiles overlap by the model's receptive field, so convolutional models give the
            untiled result, and they are streamed to ``device`` from a CPU image.
        tile_overlap: context pixels per tile side instead of the measured receptive field.
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"auto"`` (measured on a probe
            image: low precision only when faster and close to fp32; the decision is in
            ``.precision_report``). Exclusive with ``dtype``.
        compile: run the model through ``torch.compile`` (falls back to eager with a
            warning, recorded in ``.compile_report``, when compiling fails).
        ensemble: x8 self-ensemble (rotations and flips, outputs averaged).
        kernels: ``"auto"`` (fused kernels on the CPU in float32 when the C++ extension is
            available, see :func:`srplug.ops.fuse`), ``"fused"`` or ``"eager"``; the choice
            is in ``.kernels_report``.
        **options: model options passed to the plugin's ``build`` (e.g. channel counts).

    Returns:
        An :class:`~srplug.protocols.Upsampler`.
    """
    from srplug.upsampler import ModuleUpsampler

    spec = info(name)
    requested_scale = scale
    scale, chosen = _resolve_weights(spec, scale, weights)
    state: StateDict | None = None
    source = ""
    if isinstance(chosen, Path):
        from srplug.weights import load_state_dict_file

        state = load_state_dict_file(chosen)
        source = f"file {str(chosen)!r}"
        if spec.options_from_weights is not None:
            inferred = dict(spec.options_from_weights(chosen, state))
            file_scale = inferred.pop("scale", None)
            if file_scale is not None:
                scale = _scale_from_file(spec, chosen, file_scale, requested_scale)
            options = {**inferred, **options}
    elif chosen is not None:
        state = chosen.state_dict()
        source = f"{spec.name}:{chosen.tag}"
    module = _build(spec, scale, options)
    if state is not None:
        _load_into(spec, module, state, source)
    return ModuleUpsampler(
        module,
        name=spec.name,
        scale=scale,
        channels=spec.channels,
        device=device,
        dtype=dtype,
        network=spec.network,
        tile=tile,
        tile_overlap=tile_overlap,
        precision=precision,
        compile=compile,
        ensemble=ensemble,
        kernels=kernels,
    )
