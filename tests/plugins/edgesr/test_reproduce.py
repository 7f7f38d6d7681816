"""The authors' edge-SR files under srplug's standard evaluation reproduce known PSNRs.

The one-layer reference numbers come from an independent implementation of the standard
protocol (issue 3). For eSR-CNN there is no such reference: its gains over bicubic are
compared with the authors' own table, whose protocol is offset from the standard one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from srplug_edgesr.convert import parse_model_id

import srplug
from srplug.cli import main
from srplug.datasets import BenchmarkDataset
from srplug.evaluation import evaluate

# model id -> srplug model, scale, PSNR on (Set5, Set14, B100)
REFERENCE = {
    "eSR-MAX_s2_K7_C13": ("esr-max", 2, (34.83, 31.21, 30.35)),
    "eSR-TM_s2_K7_C16": ("esr-tm", 2, (36.00, 32.07, 30.92)),
    "eSR-TR_s2_K7_C13": ("esr-tr", 2, (36.21, 32.20, 31.02)),
    "eSR-TM_s4_K7_C16": ("esr-tm", 4, (29.98, 27.14, 26.63)),
}
TOLERANCE = 0.03  # dB


def cli_eval(capsys, esr_files: Path, data_root: Path, model_id: str, *sets: str) -> list[float]:
    """PSNRs from `srplug eval MODEL --weights FILE --scale s --dataset ... --json`."""
    name, scale, _ = REFERENCE[model_id]
    argv = ["eval", name, "--weights", str(esr_files / f"{model_id}.model")]
    argv += ["--scale", str(scale), "--data", str(data_root), "--dataset", *sets]
    assert main([*argv, "--json", "--no-progress"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["dataset"] for r in results] == list(sets)
    return [r["psnr"] for r in results]


@pytest.mark.data
@pytest.mark.parametrize("model_id", list(REFERENCE))
def test_set5_set14_match_reference(capsys, esr_files: Path, data_root: Path, model_id: str):
    got = cli_eval(capsys, esr_files, data_root, model_id, "Set5", "Set14")
    expected = REFERENCE[model_id][2][:2]
    assert got == pytest.approx(expected, abs=TOLERANCE), (got, expected)


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("model_id", list(REFERENCE))
def test_b100_matches_reference(capsys, esr_files: Path, data_root: Path, model_id: str):
    (got,) = cli_eval(capsys, esr_files, data_root, model_id, "B100")
    assert got == pytest.approx(REFERENCE[model_id][2][2], abs=TOLERANCE)


def _psnr(upscale, name: str, scale: int, data_root: Path) -> float:
    return evaluate(upscale, BenchmarkDataset(name, scale, data_root=data_root)).psnr


@pytest.mark.data
def test_cnn_gains_match_the_authors(esr_files: Path, data_root: Path, authors_results) -> None:
    """eSR-CNN_s2_C8_D3_S9: the gain over bicubic equals the authors' gain within 0.1 dB.

    0.1 dB is the spread of the same comparison for the one-layer files above, whose
    standard-protocol PSNRs match the independent reference (e.g. eSR-TM_s2_K7_C16 on Set5:
    gain 2.34 here vs 2.43 in the authors' table). The TM-style reduction ``softmax(key)``
    instead of ``softmax(key * key)`` on the same weights is dB's off.
    """
    model_id = "eSR-CNN_s2_C8_D3_S9"
    # eager: the reduction is swapped below, which the fused kernel would not see
    up = srplug.get("esr-cnn", scale=2, weights=esr_files / f"{model_id}.model", kernels="eager")
    bicubic = srplug.get("bicubic", scale=2)
    theirs = authors_results[model_id]
    their_bicubic = authors_results["Bicubic_s2"]
    for name in ("Set5", "Set14"):
        gain = _psnr(up, name, 2, data_root) - _psnr(bicubic, name, 2, data_root)
        their_gain = float(theirs[f"psnr_{name}"]) - float(their_bicubic[f"psnr_{name}"])
        assert gain == pytest.approx(their_gain, abs=0.1), name

    def softmax_of_key(groups, out=None):
        value, key = groups
        result = (value * torch.softmax(key, dim=1)).sum(dim=1)
        return result if out is None else out.copy_(result)

    up.model.reduce = softmax_of_key  # type: ignore[union-attr]
    assert _psnr(up, "Set5", 2, data_root) < float(theirs["psnr_Set5"]) - 1.0


@pytest.mark.data
@pytest.mark.slow
def test_cnn_offset_from_authors_equals_one_layer_offset(
    esr_files: Path, data_root: Path, authors_results
) -> None:
    """Over many files, (srplug PSNR - authors' PSNR) on Set5 x2 is the same for eSR-CNN as
    for eSR-TM, whose forward is verified: the eSR-CNN forward is the authors' one."""
    offsets: dict[str, list[float]] = {"eSR-CNN": [], "eSR-TM": []}
    for model_id in sorted(authors_results):
        parsed = parse_model_id(model_id)
        if parsed is None or parsed.family not in offsets or parsed.scale != 2:
            continue
        if len(offsets[parsed.family]) == 12 or parsed.options["C"] % 2:
            continue
        up = srplug.get(parsed.model_name, scale=2, weights=esr_files / f"{model_id}.model")
        ours = _psnr(up, "Set5", 2, data_root)
        offsets[parsed.family].append(ours - float(authors_results[model_id]["psnr_Set5"]))
    cnn, tm = (float(np.mean(offsets[f])) for f in ("eSR-CNN", "eSR-TM"))
    assert len(offsets["eSR-CNN"]) == len(offsets["eSR-TM"]) == 12
    assert abs(cnn - tm) < 0.05, (cnn, tm)
    assert max(abs(o - cnn) for o in offsets["eSR-CNN"]) < 0.1
