"""Pretrained weights: where a file lives, what it is, and how to load it safely.

A :class:`Weights` entry ties a tag (``"x2"``), a scale and a :class:`WeightsFile` (a package
resource, a URL with its sha256, or a local path) to a :class:`ModelCard` describing how the
weights were made and how well they score. Files are read as safetensors, or as PyTorch
checkpoints through ``torch.load(..., weights_only=True)`` only, so a checkpoint can never run
code.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import pickle
import re
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from srplug import hub
from srplug.atomic import atomic_open, atomic_path
from srplug.errors import ChecksumError, InputError, WeightsError

__all__ = [
    "WRAPPER_KEYS",
    "Metric",
    "ModelCard",
    "Weights",
    "WeightsFile",
    "WeightsFormat",
    "format_from_name",
    "load_checkpoint",
    "load_state_dict_file",
    "package_weights",
    "save_safetensors",
    "scale_from_name",
    "unwrap_state_dict",
]

WeightsFormat = Literal["safetensors", "torch", "tensorflow"]

#: Keys under which training code commonly nests the state dict, in order of preference.
WRAPPER_KEYS: tuple[str, ...] = ("params_ema", "params", "state_dict", "model", "net", "generator")

_SUFFIX_FORMATS: dict[str, WeightsFormat] = {
    ".safetensors": "safetensors",
    ".pt": "torch",
    ".pth": "torch",
    ".model": "torch",
    ".ckpt": "torch",
    ".bin": "torch",
    ".pb": "tensorflow",
}
_FORMATS: tuple[WeightsFormat, ...] = ("safetensors", "torch", "tensorflow")
_MAX_NESTING = 3


# --------------------------------------------------------------------------- model card


@dataclass(frozen=True)
class Metric:
    """A benchmark score: PSNR (dB) and optionally SSIM on ``dataset`` at ``scale``."""

    dataset: str
    scale: int
    psnr: float
    ssim: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise InputError(f"Metric.dataset must be a non-empty string, got {self.dataset!r}")
        _check_positive_int("Metric.scale", self.scale)
        object.__setattr__(self, "psnr", float(self.psnr))
        if self.ssim is not None:
            object.__setattr__(self, "ssim", float(self.ssim))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metric:
        """The inverse of :meth:`to_dict`; :class:`InputError` on unknown or missing keys."""
        return cls(**_checked_fields(cls, d))


@dataclass(frozen=True, kw_only=True)
class ModelCard:
    """How a set of weights was made and how well it scores.

    ``recipe`` is the training recipe's path relative to the plugin package; ``source`` says
    who made the weights (``"srplug"`` when trained here, else the upstream project, such as
    ``"EDSR-PyTorch"``). Unknown facts are ``None``.
    """

    params: int | None = None
    recipe: str | None = None
    training_data: str | None = None
    steps: int | None = None
    metrics: tuple[Metric, ...] = ()
    license: str | None = None
    source: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        for name in ("params", "steps"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise InputError(
                    f"ModelCard.{name} must be a non-negative int or None, got {value!r}"
                )
        metrics = tuple(self.metrics)
        for metric in metrics:
            if not isinstance(metric, Metric):
                raise InputError(f"ModelCard.metrics must hold Metric objects, got {metric!r}")
        object.__setattr__(self, "metrics", metrics)

    def metric(self, dataset: str, scale: int) -> Metric | None:
        """The score on ``dataset`` (case-insensitive) at ``scale``, or None if not reported."""
        wanted = dataset.casefold()
        for metric in self.metrics:
            if metric.dataset.casefold() == wanted and metric.scale == scale:
                return metric
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (metrics as a list of dicts)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["metrics"] = [m.to_dict() for m in self.metrics]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelCard:
        """Build a card from a dict such as a JSON model card; missing keys mean unknown."""
        values = _checked_fields(cls, d)
        metrics = values.get("metrics", ())
        if isinstance(metrics, (str, bytes)) or not isinstance(metrics, (list, tuple)):
            raise InputError(f"model card 'metrics' must be a list, got {metrics!r}")
        values["metrics"] = tuple(
            m if isinstance(m, Metric) else Metric.from_dict(m) for m in metrics
        )
        return cls(**values)


# --------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class WeightsFile:
    """Where a weights file lives: give exactly one of ``package`` + ``resource``, ``url``
    (with ``sha256``) or ``path``.

    ``resource`` is a ``/``-separated path inside the importable ``package``. ``sha256`` is
    required with ``url`` and optional otherwise (then the local file is checked too).
    ``filename`` names the cached download (default: the last part of the URL).
    """

    package: str | None = None
    resource: str | None = None
    url: str | None = None
    path: str | os.PathLike[str] | None = None
    sha256: str | None = None
    filename: str | None = None

    def __post_init__(self) -> None:
        if (self.package is None) != (self.resource is None):
            raise InputError("WeightsFile: package= and resource= must be given together")
        given = [
            name
            for name, value in (("package", self.package), ("url", self.url), ("path", self.path))
            if value is not None
        ]
        if len(given) != 1:
            raise InputError(
                "WeightsFile needs exactly one of package= + resource=, url= (with sha256=) or "
                f"path=; got {', '.join(given) if given else 'none'}"
            )
        if self.resource is not None:
            parts = self.resource.split("/")
            if self.resource.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise InputError(
                    f"WeightsFile.resource must be a relative path like 'weights/x2.safetensors' "
                    f"inside the package, got {self.resource!r}"
                )
        if self.url is not None and self.sha256 is None:
            raise InputError(
                f"WeightsFile with url={self.url!r} needs sha256= (compute it with `sha256sum`) "
                "so a download can be verified"
            )
        if self.filename is not None and self.url is None:
            raise InputError("WeightsFile.filename= only applies to url=")
        if self.sha256 is not None:
            object.__setattr__(self, "sha256", hub.normalize_sha256(self.sha256))

    @property
    def name(self) -> str:
        """The file's base name (used to infer its format)."""
        if self.resource is not None:
            return self.resource.rsplit("/", 1)[-1]
        if self.path is not None:
            return Path(self.path).name
        if self.filename is not None:
            return self.filename
        assert self.url is not None
        return hub.filename_from_url(self.url)

    def local_path(self, *, progress: bool = True) -> Path:
        """A local path to the file, downloading it into the cache if needed."""
        if self.url is not None:
            return hub.download(
                self.url, sha256=self.sha256, filename=self.filename, progress=progress
            )
        local = self._package_path() if self.package is not None else self._plain_path()
        if self.sha256 is not None:
            _verify_sha256(local, self.sha256)
        return local

    def _plain_path(self) -> Path:
        assert self.path is not None
        local = Path(self.path).expanduser()
        if not local.is_file():
            raise WeightsError(f"weights file not found: {local}; check the path")
        return local

    def _package_path(self) -> Path:
        assert self.package is not None and self.resource is not None
        try:
            resource = importlib.resources.files(self.package)
        except ModuleNotFoundError as exc:
            raise WeightsError(
                f"cannot find weights {self.resource!r}: package {self.package!r} is not "
                f"installed; install it (pip install {self.package.replace('_', '-')})"
            ) from exc
        for part in self.resource.split("/"):
            resource = resource.joinpath(part)
        if not resource.is_file():
            raise WeightsError(
                f"package {self.package!r} has no file {self.resource!r}; reinstall the package "
                "(its weights may have been left out of the build)"
            )
        if isinstance(resource, Path):
            return resource
        # The package is not a plain folder (e.g. a zip): copy the file out, once.
        copy = hub.home_dir() / "resources" / self.package / self.resource
        if not copy.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            with resource.open("rb") as src, atomic_open(copy) as dst:
                shutil.copyfileobj(src, dst)
        return copy


@dataclass(frozen=True)
class Weights:
    """A set of pretrained weights for one model at one scale.

    ``format`` is inferred from the file name when not given: ``.safetensors`` is
    safetensors; ``.pt``, ``.pth``, ``.model``, ``.ckpt`` and ``.bin`` are torch checkpoints;
    ``.pb`` is a frozen TensorFlow graph (its constants, for plugins' converters).
    """

    tag: str
    scale: int
    file: WeightsFile
    card: ModelCard = field(default_factory=ModelCard)
    format: WeightsFormat | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.tag, str) or not self.tag:
            raise InputError(f"Weights.tag must be a non-empty string, got {self.tag!r}")
        _check_positive_int("Weights.scale", self.scale)
        if not isinstance(self.file, WeightsFile):
            raise InputError(f"Weights.file must be a WeightsFile, got {self.file!r}")
        if not isinstance(self.card, ModelCard):
            raise InputError(f"Weights.card must be a ModelCard, got {self.card!r}")
        if self.format is None:
            fmt = format_from_name(self.file.name)
            if fmt is None:
                raise InputError(
                    f"cannot tell the format of weights file {self.file.name!r} from its name: "
                    f"pass format='safetensors' or format='torch'"
                )
            object.__setattr__(self, "format", fmt)
        elif self.format not in _FORMATS:
            raise InputError(f"Weights.format must be one of {_FORMATS}, got {self.format!r}")

    def path(self, progress: bool = True) -> Path:
        """A local path to the weights file, downloading it into the cache if needed."""
        return self.file.local_path(progress=progress)

    def state_dict(self, progress: bool = True) -> dict[str, torch.Tensor]:
        """The weights as a flat ``{name: tensor}`` dict on the CPU."""
        return load_state_dict_file(self.path(progress=progress), format=self.format)


def package_weights(package: str, model: str, *, folder: str = "weights") -> tuple[Weights, ...]:
    """The weights a plugin package ships for ``model``, found by file name.

    Looks for ``<package>/<folder>/<model>_x<scale>.safetensors`` with its model card
    ``<model>_x<scale>.json`` beside it (as ``srplug train`` exports them) and returns one
    :class:`Weights` tagged ``x<scale>`` per file, sorted by scale. A file without a card gets
    an empty card. Plugins call this in ``register_models``.
    """
    import json

    try:
        root = importlib.resources.files(package) / folder
    except ModuleNotFoundError as exc:
        raise InputError(f"package_weights: no package named {package!r}") from exc
    if not root.is_dir():
        return ()
    found: list[Weights] = []
    pattern = re.compile(rf"^{re.escape(model)}_x([1-9][0-9]?)\.safetensors$")
    for entry in root.iterdir():
        match = pattern.match(entry.name)
        if match is None:
            continue
        card_file = root / entry.name.replace(".safetensors", ".json")
        card = ModelCard()
        if card_file.is_file():
            card = ModelCard.from_dict(json.loads(card_file.read_text()))
        found.append(
            Weights(
                tag=f"x{match.group(1)}",
                scale=int(match.group(1)),
                file=WeightsFile(package=package, resource=f"{folder}/{entry.name}"),
                card=card,
            )
        )
    return tuple(sorted(found, key=lambda w: w.scale))


# --------------------------------------------------------------------------- loading


def scale_from_name(path: str | os.PathLike[str]) -> int | None:
    """The scale a weights file name announces (``fsrcnn_x3.pth`` -> 3), or None."""
    match = re.search(r"(?<![a-z0-9])x([1-9][0-9]?)(?![0-9])", Path(path).stem.lower())
    return int(match.group(1)) if match else None


def format_from_name(name: str | os.PathLike[str]) -> WeightsFormat | None:
    """The weights format implied by a file name's suffix, or None if unknown."""
    return _SUFFIX_FORMATS.get(Path(name).suffix.lower())


def load_checkpoint(
    path: str | os.PathLike[str], *, format: WeightsFormat | str | None = None
) -> dict[str, Any]:
    """The raw mapping stored in a weights file, wrappers and all.

    ``format`` defaults to the one implied by the suffix, else to what the file's first bytes
    show. Torch files are read with ``weights_only=True``: a checkpoint holding anything but
    tensors and plain containers is refused with :class:`WeightsError` and nothing in it runs.
    A frozen TensorFlow graph (``.pb``, format ``"tensorflow"``) gives its numeric ``Const``
    nodes as CPU tensors under their node names, in TensorFlow's layout (conv kernels HWIO);
    a plugin's ``convert_state_dict`` maps them onto its model.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsError(f"weights file not found: {file}; check the path")
    fmt = format if format is not None else format_from_name(file) or _sniff_format(file)
    if fmt == "safetensors":
        return _load_safetensors(file)
    if fmt == "torch":
        return _load_torch(file)
    if fmt == "tensorflow":
        return _load_tensorflow_pb(file)
    if format is not None:
        raise InputError(
            f"unknown weights format {format!r}: use 'safetensors', 'torch' or 'tensorflow'"
        )
    raise WeightsError(
        f"cannot read {file}: it is neither a safetensors file nor a PyTorch checkpoint; "
        "pass format= if it is one under an unusual name"
    )


def load_state_dict_file(
    path: str | os.PathLike[str], *, format: WeightsFormat | str | None = None
) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` state dict from a weights file.

    :func:`load_checkpoint` followed by :func:`unwrap_state_dict`.
    """
    return unwrap_state_dict(load_checkpoint(path, format=format), source=str(path))


def unwrap_state_dict(
    obj: Mapping[str, Any], *, source: str | None = None
) -> dict[str, torch.Tensor]:
    """The flat tensor mapping inside a checkpoint.

    ``obj`` is returned as is when all its values are tensors; otherwise the first of
    :data:`WRAPPER_KEYS` holding such a mapping (looked for up to three levels deep) is used.
    A ``"module."`` prefix (from ``DataParallel``) is stripped when every key has it.
    ``source`` names the file in error messages.
    """
    found = _find_tensor_mapping(obj, _MAX_NESTING)
    if found is None:
        where = f" in {source}" if source else ""
        keys = list(obj.keys()) if isinstance(obj, Mapping) else []
        shown = ", ".join(repr(k) for k in keys[:20]) + (", ..." if len(keys) > 20 else "")
        raise WeightsError(
            f"no state dict (a mapping of names to tensors) found{where}: top-level keys are "
            f"[{shown}], none of the known wrappers {list(WRAPPER_KEYS)} holds tensors; "
            "convert the checkpoint with the model's converter or save its state dict directly"
        )
    state = dict(found)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def save_safetensors(
    state_dict: Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``state_dict`` to a safetensors file atomically; return the path.

    Tensors are detached, moved to the CPU and made contiguous; tensors sharing memory are
    copied so each is stored on its own.
    """
    from safetensors.torch import save_file

    if metadata is not None and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise InputError("save_safetensors: metadata must map str to str")
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise InputError(
                f"save_safetensors: expected str keys and tensor values, got {key!r}: "
                f"{type(value).__name__}"
            )
        tensor = value.detach().cpu().contiguous()
        if tensor.numel():
            ptr = tensor.untyped_storage().data_ptr()
            if ptr in seen:
                tensor = tensor.clone()
            seen.add(ptr)
        tensors[key] = tensor
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return target


# --------------------------------------------------------------------------- helpers


def _load_safetensors(file: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    try:
        return load_file(str(file), device="cpu")
    except Exception as exc:
        raise WeightsError(
            f"cannot read safetensors file {file}: it is truncated or corrupted ({exc}); "
            "delete it and download or export it again"
        ) from exc


def _load_torch(file: Path) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            obj = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():
            raise _corrupt_torch(file, exc) from exc
        detail = _weights_only_detail(str(exc))
        raise WeightsError(
            f"refusing to load {file}: it is not a safe weights-only checkpoint{detail}. It "
            "holds pickled Python objects or code that loading would execute (or it is "
            "corrupted). If you trust its source, convert it to .safetensors in a separate "
            "step and pass that file instead"
        ) from exc
    except Exception as exc:
        raise _corrupt_torch(file, exc) from exc
    if not isinstance(obj, Mapping):
        raise WeightsError(
            f"{file} holds a {type(obj).__name__}, not a mapping of names to tensors; save the "
            "model's state_dict() instead"
        )
    return obj if isinstance(obj, dict) else dict(obj)


def _load_tensorflow_pb(file: Path) -> dict[str, Any]:
    """The numeric constants of a frozen TensorFlow graph as ``{node name: CPU tensor}``."""
    from srplug.formats.tensorflow_pb import read_pb_constants

    return {
        name: torch.from_numpy(value.copy())
        for name, value in read_pb_constants(file).items()
        if value.dtype != object
    }


def _corrupt_torch(file: Path, exc: BaseException) -> WeightsError:
    text = str(exc).split("\n", 1)[0].split(". ", 1)[0].rstrip(".")
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return WeightsError(
        f"cannot read PyTorch checkpoint {file}: it is truncated or corrupted ({reason}); "
        "delete it and download or export it again"
    )


def _weights_only_detail(message: str) -> str:
    """The short reason torch gives for a weights-only refusal, as ' (reason)' or ''."""
    match = re.search(r"WeightsUnpickler error:\s*([^\n]+)", message) or re.search(
        r"(Trying to load unsupported GLOBAL \S+)", message
    )
    if not match:
        return ""
    reason = match.group(1).strip()
    reason = reason.split(" was not an allowed global")[0]
    return f" ({reason})"


def _sniff_format(file: Path) -> WeightsFormat | None:
    """Guess the format from the first bytes: safetensors header, zip or pickle."""
    with open(file, "rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 0:
        return "safetensors"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "torch"
    return None


def _find_tensor_mapping(obj: Any, depth: int) -> Mapping[str, torch.Tensor] | None:
    if not isinstance(obj, Mapping) or not obj:
        return None
    if all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        return obj
    if depth <= 0:
        return None
    for key in WRAPPER_KEYS:
        found = _find_tensor_mapping(obj.get(key), depth - 1)
        if found is not None:
            return found
    return None


def _verify_sha256(file: Path, expected: str) -> None:
    actual = hub.sha256_file(file)
    if actual != expected:
        raise ChecksumError(
            f"sha256 mismatch for {file}: expected {expected}, got {actual}; the file is "
            "corrupted or a different version: replace it with the expected file"
        )


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive int, got {value!r}")


def _checked_fields(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(d, Mapping):
        raise InputError(f"{cls.__name__}.from_dict expects a mapping, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise InputError(f"unknown {cls.__name__} keys {unknown}; expected some of {sorted(names)}")
    required = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(d))
    if missing:
        raise InputError(f"{cls.__name__} is missing keys {missing}")
    return dict(d)
