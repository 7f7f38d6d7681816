"""Loading the edge-SR authors' model files: options from the name, clear errors otherwise."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from srplug_edgesr import get_from_file
from srplug_edgesr.convert import ModelId, parse_model_id, read_options, structure_of
from srplug_edgesr.model import EdgeSR

import srplug

# one file per family and scale (configs other than the defaults, so options must be read)
FILES = [
    ("esr-max", "eSR-MAX_s2_K5_C4"),
    ("esr-max", "eSR-MAX_s3_K3_C9"),
    ("esr-max", "eSR-MAX_s4_K7_C16"),
    ("esr-tm", "eSR-TM_s2_K3_C1"),
    ("esr-tm", "eSR-TM_s3_K7_C16"),
    ("esr-tm", "eSR-TM_s4_K5_C8"),
    ("esr-tr", "eSR-TR_s2_K7_C13"),
    ("esr-tr", "eSR-TR_s3_K5_C2"),
    ("esr-tr", "eSR-TR_s4_K3_C11"),
    ("esr-cnn", "eSR-CNN_s2_C8_D3_S9"),
    ("esr-cnn", "eSR-CNN_s3_C2_D1_S3"),
    ("esr-cnn", "eSR-CNN_s4_C6_D9_S15"),
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("eSR-TM_s2_K7_C16.model", ModelId("eSR-TM", 2, {"k": 7, "C": 16})),
        ("/a/b/eSR-CNN_s4_C8_D3_S9.model", ModelId("eSR-CNN", 4, {"C": 8, "D": 3, "S": 9})),
        ("copy_of_esr-max_s3_K5_C2.pth", ModelId("eSR-MAX", 3, {"k": 5, "C": 2})),
        ("ESPCN_s2_D16_S32.model", ModelId("ESPCN", 2, {"D": 16, "S": 32})),
        ("Bicubic_s2.model", ModelId("Bicubic", 2, {})),
        ("x2.safetensors", None),
        ("eSR-TMX_s2_K7_C16.model", None),
    ],
)
def test_parse_model_id(name: str, expected: ModelId | None) -> None:
    assert parse_model_id(name) == expected


def test_model_names() -> None:
    assert parse_model_id("eSR-TR_s2_K7_C13").model_name == "esr-tr"  # type: ignore[union-attr]
    assert parse_model_id("FSRCNN_s2_D56_S12_M4").model_name is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("name", "model_id"), FILES)
def test_authors_files_load(esr_files: Path, name: str, model_id: str) -> None:
    """The file loads with no option given, and the weights are the file's."""
    path = esr_files / f"{model_id}.model"
    parsed = parse_model_id(model_id)
    assert parsed is not None
    up = srplug.get(name, scale=parsed.scale, weights=path)
    net = up.model
    assert isinstance(net, EdgeSR) and net.scale == parsed.scale
    assert net.channels == parsed.options["C"]
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == set(net.state_dict())
    for key, tensor in state.items():
        torch.testing.assert_close(net.state_dict()[key], tensor.float(), rtol=0, atol=0)
    y = torch.rand(1, 1, 6, 5)
    assert up.upscale_tensor(y).shape == (1, 1, 6 * net.scale, 5 * net.scale)


def test_get_from_file_takes_the_scale_from_the_name(esr_files: Path) -> None:
    up = get_from_file(esr_files / "eSR-TM_s4_K7_C16.model")
    assert (up.name, up.scale) == ("esr-tm", 4)
    with pytest.raises(srplug.WeightsError, match="not named like"):
        get_from_file(esr_files / "ESPCN_s2_D16_S32.model")


@pytest.mark.parametrize(
    ("name", "model_id", "match"),
    [
        ("esr-tm", "eSR-TR_s2_K7_C13", r"eSR-TR network, not eSR-TM: load it with .*'esr-tr'"),
        ("esr-max", "eSR-TM_s2_K7_C16", r"eSR-TM network, not eSR-MAX: .*'esr-tm'"),
        ("esr-cnn", "eSR-TR_s2_K7_C13", r"'esr-tr'"),
        ("esr-tr", "eSR-CNN_s2_C8_D3_S9", r"eSR-CNN network, not eSR-TR: .*'esr-cnn'"),
        ("esr-max", "ESPCN_s2_D16_S32", r"authors' ESPCN baseline, not an edge-SR network"),
        ("esr-tm", "Bicubic_s2", r"Bicubic baseline"),
    ],
)
def test_wrong_family_is_refused(esr_files: Path, name: str, model_id: str, match: str) -> None:
    with pytest.raises(srplug.WeightsError, match=match):
        srplug.get(name, scale=2, weights=esr_files / f"{model_id}.model")


def test_renamed_file_is_refused(esr_files: Path, tmp_path: Path) -> None:
    """A TR file renamed as TM: the name's config does not fit the tensors."""
    fake = tmp_path / "eSR-TM_s2_K7_C13.model"
    shutil.copy(esr_files / "eSR-TR_s2_K7_C13.model", fake)
    with pytest.raises(srplug.WeightsError, match=r"has 104 output filters.*holds 156"):
        srplug.get("esr-tm", scale=2, weights=fake)
    fake = tmp_path / "eSR-MAX_s2_K5_C13.model"
    shutil.copy(esr_files / "eSR-MAX_s2_K7_C13.model", fake)
    with pytest.raises(srplug.WeightsError, match=r"name says k=5 but the tensors hold k=7"):
        srplug.get("esr-max", scale=2, weights=fake)


def test_structure_without_a_name_is_checked(tmp_path: Path) -> None:
    """Files not named like the authors': the keys still tell one-layer from eSR-CNN."""
    cnn = srplug.get("esr-cnn", weights=None).model
    one = srplug.get("esr-tm", weights=None).model
    assert cnn is not None and one is not None
    assert structure_of(cnn.state_dict()) == "cnn"
    assert structure_of(one.state_dict()) == "one-layer"
    assert structure_of({"net.0.weight": torch.zeros(1)}) == "other"
    path = tmp_path / "weights.pt"
    torch.save(cnn.state_dict(), path)
    with pytest.raises(srplug.WeightsError, match=r"eSR-CNN network .* load it with 'esr-cnn'"):
        srplug.get("esr-tm", weights=path)
    torch.save(one.state_dict(), path)
    with pytest.raises(srplug.WeightsError, match=r"one-layer eSR-MAX/TM/TR network"):
        srplug.get("esr-cnn", weights=path)


def test_options_from_shapes_when_unnamed(tmp_path: Path) -> None:
    """k (and D, S) come from the shapes; C too when only one scale fits."""
    path = tmp_path / "mine.pt"
    net = srplug.get("esr-max", scale=3, weights=None, k=5, C=7).model  # 63 filters
    assert net is not None
    torch.save(net.state_dict(), path)
    up = srplug.get("esr-max", scale=3, weights=path)
    assert (up.model.kernel_size, up.model.channels) == (5, 7)  # type: ignore[union-attr]
    cnn = srplug.get("esr-cnn", scale=2, weights=None, C=2, D=5, S=6).model
    assert cnn is not None
    options = read_options("eSR-CNN", path, cnn.state_dict())
    assert options == {"D": 5, "S": 6, "C": 2}  # 16 filters: only x2 with C = 2 fits
    with pytest.raises(srplug.WeightsError, match="not 3\\*s\\*s\\*C for any scale"):
        read_options("eSR-TR", path, {"filter.weight": torch.zeros(50, 1, 3, 3)})


@pytest.mark.parametrize(
    ("name", "model_id", "kwargs", "match"),
    [
        ("esr-tm", "eSR-TM_s4_K7_C16", {"scale": 2}, r"is for x4, not x2: pass scale=4"),
        ("esr-tr", "eSR-TR_s2_K7_C13", {"C": 4}, r"at x2 they hold C=13: pass C=13"),
        ("esr-max", "eSR-MAX_s2_K7_C13", {"k": 3}, r"7x7 filters: pass k=7"),
        ("esr-cnn", "eSR-CNN_s2_C8_D3_S9", {"S": 6}, r"filter.2.weight has shape \(9, 3, 3, 3\)"),
    ],
)
def test_wrong_shape_is_explained(
    esr_files: Path, name: str, model_id: str, kwargs: dict[str, int], match: str
) -> None:
    """Scale or options that do not fit the file: WeightsError saying what would fit."""
    with pytest.raises(srplug.WeightsError, match=match):
        srplug.get(name, weights=esr_files / f"{model_id}.model", **kwargs)


def test_scale_comes_from_the_file(esr_files: Path) -> None:
    up = srplug.get("esr-tm", weights=esr_files / "eSR-TM_s4_K7_C16.model")
    assert up.scale == 4


def test_missing_and_unexpected_keys_are_named() -> None:
    net = srplug.get("esr-tm", weights=None).model
    assert net is not None
    with pytest.raises(
        srplug.WeightsError, match=r'Missing key\(s\) in state_dict: "filter.weight"'
    ):
        net.load_state_dict({})
    state = {**net.state_dict(), "extra": torch.zeros(1)}
    with pytest.raises(srplug.WeightsError, match=r'Unexpected key\(s\) in state_dict: "extra"'):
        net.load_state_dict(state)
    net.load_state_dict(state, strict=False)  # non-strict loading still works
