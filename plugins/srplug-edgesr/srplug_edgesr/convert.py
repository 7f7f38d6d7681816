"""Reading the edge-SR authors' ``*.model`` files (github.com/pnavarre/eSR, ``model-files/``).

The files are plain torch state dicts whose keys already match :mod:`srplug_edgesr.model`
(``filter.weight``; ``filter.{0,2,4}.*`` for eSR-CNN). The configuration is only in the file
name, ``<family>_s<scale>_<field><value>...``: ``eSR-MAX_s2_K7_C13``, ``eSR-TM_s4_K7_C16``,
``eSR-TR_s3_K5_C4``, ``eSR-CNN_s2_C8_D3_S9`` (``s`` = scale, ``K`` = filter size,
``C`` = candidates, ``D`` / ``S`` = eSR-CNN layer widths; note ``s`` and ``S`` differ).

:func:`options_reader` makes the ``options_from_weights`` callback of each registered model:
it reads the build options from the name (falling back to the tensor shapes), refuses a file
of another family with a :class:`~srplug.errors.WeightsError` naming the model to use, and
checks that name and tensors agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from srplug.errors import WeightsError

__all__ = [
    "FAMILY_GROUPS",
    "MODEL_NAMES",
    "ModelId",
    "get_from_file",
    "options_reader",
    "parse_model_id",
    "read_options",
    "structure_of",
]

#: srplug model name of each edge-SR family in the authors' naming.
MODEL_NAMES: dict[str, str] = {
    "eSR-MAX": "esr-max",
    "eSR-TM": "esr-tm",
    "eSR-TR": "esr-tr",
    "eSR-CNN": "esr-cnn",
}
#: Filter groups per candidate and phase: 1 (max), 2 (value, match), 3 (value, query, key).
FAMILY_GROUPS: dict[str, int] = {"eSR-MAX": 1, "eSR-TM": 2, "eSR-TR": 3, "eSR-CNN": 2}
_OTHER_FAMILIES = ("ESPCN", "FSRCNN", "Bicubic")
_ID_PATTERN = re.compile(
    r"(?:^|[^A-Za-z0-9-])(?P<family>eSR-MAX|eSR-TM|eSR-TR|eSR-CNN|ESPCN|FSRCNN|Bicubic)"
    r"(?P<fields>(?:_[A-Za-z]+\d+)*)(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_FIELD_PATTERN = re.compile(r"_([A-Za-z]+)(\d+)")
#: File-name field -> build option of :mod:`srplug_edgesr`.
_FIELD_OPTIONS = {"K": "k", "C": "C", "D": "D", "S": "S"}
_SCALES = (2, 3, 4)


@dataclass(frozen=True)
class ModelId:
    """A parsed authors' model id such as ``eSR-TM_s2_K7_C16``.

    ``family`` is spelled as the authors do (``"eSR-TM"``, ``"ESPCN"``); ``scale`` is the
    ``s`` field (None when absent); ``options`` maps build options (``k``, ``C``, ``D``,
    ``S``) to the integers in the name.
    """

    family: str
    scale: int | None
    options: dict[str, int] = field(default_factory=dict)

    @property
    def model_name(self) -> str | None:
        """The srplug model that loads this family, or None for the authors' baselines."""
        return MODEL_NAMES.get(self.family)


def parse_model_id(name: str | Path) -> ModelId | None:
    """Parse the authors' naming from a file name or id; None when it does not follow it.

    >>> parse_model_id("weights/eSR-CNN_s2_C8_D3_S9.model")
    ModelId(family='eSR-CNN', scale=2, options={'C': 8, 'D': 3, 'S': 9})
    """
    stem = Path(name).name
    match = _ID_PATTERN.search(stem)
    if match is None:
        return None
    canonical = {f.casefold(): f for f in (*MODEL_NAMES, *_OTHER_FAMILIES)}
    family = canonical[match["family"].casefold()]
    scale: int | None = None
    options: dict[str, int] = {}
    for key, value in _FIELD_PATTERN.findall(match["fields"]):
        if key == "s":
            scale = int(value)
        elif key in _FIELD_OPTIONS:
            options[_FIELD_OPTIONS[key]] = int(value)
    return ModelId(family=family, scale=scale, options=options)


def structure_of(state_dict: Mapping[str, torch.Tensor]) -> str:
    """What a state dict looks like: ``"one-layer"`` (eSR-MAX/TM/TR), ``"cnn"``, or ``"other"``.

    One-layer files hold exactly ``filter.weight`` ``(F, 1, k, k)``; eSR-CNN files hold
    ``filter.N.weight`` convolutions (biases on all but the last).
    """
    keys = set(state_dict)
    if keys == {"filter.weight"} and state_dict["filter.weight"].dim() == 4:
        return "one-layer"
    if keys and all(re.fullmatch(r"filter\.\d+\.(weight|bias)", k) for k in keys):
        return "cnn"
    return "other"


def _options_from_tensors(family: str, state_dict: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Options fixed by the shapes alone: ``k`` or ``D`` / ``S`` (``C`` needs the scale)."""
    if family != "eSR-CNN":
        return {"k": int(state_dict["filter.weight"].shape[-1])}
    convs = sorted(
        (k for k in state_dict if k.endswith(".weight")), key=lambda k: int(k.split(".")[1])
    )
    if len(convs) == 3:
        return {
            "D": int(state_dict[convs[0]].shape[0]),
            "S": int(state_dict[convs[1]].shape[0]),
        }
    if len(convs) == 2:
        return {"D": 0, "S": int(state_dict[convs[0]].shape[0])}
    return {}


def _last_filters(family: str, state_dict: Mapping[str, torch.Tensor]) -> int:
    if family != "eSR-CNN":
        return int(state_dict["filter.weight"].shape[0])
    last = max((k for k in state_dict if k.endswith(".weight")), key=lambda k: int(k.split(".")[1]))
    return int(state_dict[last].shape[0])


def _wrong_family(path: Path, found: ModelId, wanted: str) -> WeightsError:
    model = found.model_name
    if model is None:
        return WeightsError(
            f"{path.name!r} is the edge-SR authors' {found.family} baseline, not an edge-SR "
            f"network; {MODEL_NAMES[wanted]!r} cannot load it"
        )
    scale = f"scale={found.scale}, " if found.scale is not None else ""
    return WeightsError(
        f"{path.name!r} holds an {found.family} network, not {wanted}: load it with model "
        f"{model!r}, e.g. srplug.get({model!r}, {scale}weights=path)"
    )


def read_options(family: str, path: Path, state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Build options of the ``family`` network (authors' spelling) stored in ``path``.

    Raises:
        WeightsError: the name or the tensors show another family, or name and tensors
            disagree (a renamed or damaged file).
    """
    parsed = parse_model_id(path)
    if parsed is not None and parsed.family != family:
        raise _wrong_family(path, parsed, family)
    structure = structure_of(state_dict)
    expected = "cnn" if family == "eSR-CNN" else "one-layer"
    if structure != expected:
        keys = ", ".join(sorted(state_dict)[:6])
        what = {
            "cnn": "an eSR-CNN network (filter.N.* layers): load it with 'esr-cnn'",
            "one-layer": "a one-layer eSR-MAX/TM/TR network (filter.weight only)",
            "other": "no edge-SR network",
        }[structure]
        raise WeightsError(f"{path.name!r} holds {what}, not {family} (keys: {keys})")
    from_tensors = _options_from_tensors(family, state_dict)
    options: dict[str, Any] = dict(from_tensors)
    if parsed is not None:
        for key, value in parsed.options.items():
            if key in from_tensors and from_tensors[key] != value:
                raise WeightsError(
                    f"{path.name!r}: the name says {key}={value} but the tensors hold "
                    f"{key}={from_tensors[key]}"
                )
            options[key] = value
    filters = _last_filters(family, state_dict)
    groups = FAMILY_GROUPS[family]
    if parsed is not None and parsed.scale is not None and "C" in options:
        needed = groups * parsed.scale**2 * options["C"]
        if filters != needed:
            raise WeightsError(
                f"{path.name!r}: {family} x{parsed.scale} with C={options['C']} has "
                f"{needed} output filters ({groups}*s*s*C), the file holds {filters}; "
                "the file is renamed or of another family"
            )
    elif "C" not in options:
        scales = [parsed.scale] if parsed is not None and parsed.scale else list(_SCALES)
        fits = [(s, filters // (groups * s * s)) for s in scales if filters % (groups * s * s) == 0]
        if not fits:
            raise WeightsError(
                f"{path.name!r}: {filters} output filters are not {groups}*s*s*C for any "
                f"scale in {scales}; not an {family} network"
            )
        if len(fits) == 1:
            options["C"] = fits[0][1]
    if parsed is not None and parsed.scale is not None:
        options["scale"] = parsed.scale  # srplug.get builds at the file's scale
    return options


def options_reader(family: str) -> Callable[[Path, dict[str, torch.Tensor]], dict[str, Any]]:
    """The ``ModelSpec.options_from_weights`` callback for ``family`` (``"eSR-TM"`` ...)."""
    if family not in MODEL_NAMES:
        raise ValueError(f"unknown edge-SR family {family!r}")

    def options_from_weights(path: Path, state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
        return read_options(family, Path(path), state_dict)

    options_from_weights.__doc__ = f"Build options of an {family} weights file (name, shapes)."
    return options_from_weights


def get_from_file(path: str | Path, **kwargs: Any) -> Any:
    """``srplug.get`` for an authors' file, taking model name and scale from its name.

    ``get_from_file("eSR-TM_s4_K7_C16.model")`` is ``srplug.get("esr-tm", scale=4,
    weights=path)``; ``kwargs`` (``device``, ``dtype``, options) are passed on.
    """
    import srplug

    parsed = parse_model_id(path)
    if parsed is None or parsed.model_name is None:
        raise WeightsError(
            f"{Path(path).name!r} is not named like an edge-SR model file "
            "(eSR-MAX|TM|TR_s<scale>_K<k>_C<C>, eSR-CNN_s<scale>_C<C>_D<D>_S<S>)"
        )
    kwargs.setdefault("scale", parsed.scale)
    return srplug.get(parsed.model_name, weights=Path(path), **kwargs)
