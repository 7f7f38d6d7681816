"""DefaultTrainer in-process: outputs, exact resume, precision, validation, errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

import srplug
import srplug.ops
from srplug.datasets import BenchmarkDataset
from srplug.errors import DatasetError, InputError
from srplug.evaluation import evaluate
from srplug.protocols import Trainer
from srplug.train import DefaultTrainer, StepEvent
from srplug.train.checkpoint import load_training_checkpoint
from srplug.train.trainer import lr_scale_groups
from srplug.weights import load_state_dict_file
from tests.train.tiny_models import TinySR


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


def losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_log(run) if "loss" in r}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def trainer(**kwargs) -> DefaultTrainer:
    return DefaultTrainer(progress=False, log=lambda message: None, **kwargs)


def test_default_trainer_satisfies_the_protocol():
    assert isinstance(DefaultTrainer(), Trainer)


def test_fit_writes_weights_card_log_and_checkpoints(recipe_dict, tmp_path, val_folder):
    events: list[StepEvent] = []
    t = trainer(callbacks=[events.append])
    result = t.fit(recipe_dict, output_dir=tmp_path / "run")
    run = tmp_path / "run"
    assert result.steps == 12 and result.weights == run / "tiny-y_x2.safetensors"
    assert [e.step for e in events] == list(range(1, 13)) and events[-1].ema is not None
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "last.pt",
        "step_000006.pt",
        "step_000012.pt",
    ]
    log = losses(run)
    assert sorted(log) == list(range(1, 13))
    assert sum(log[s] for s in (10, 11, 12)) < sum(log[s] for s in (1, 2, 3))  # it learns
    val_steps = [r["step"] for r in read_log(run) if "val" in r]
    assert val_steps == [6, 12]

    card = json.loads((run / "tiny-y_x2.json").read_text())
    assert card["params"] == sum(p.numel() for p in TinySR(2, 1, 8).parameters())
    assert card["steps"] == 12 and card["source"] == "srplug" and card["training_data"] == "hr"
    (metric,) = card["metrics"]
    assert metric["dataset"] == "val" and metric["scale"] == 2
    assert metric["psnr"] == result.metrics["val/x2/psnr"]
    assert json.loads((run / "recipe.json").read_text())["schedule"]["steps"] == 12

    # The exported weights are the EMA weights, and score the same through srplug.get.
    final = load_training_checkpoint(result.checkpoint)
    assert_same_state(load_state_dict_file(result.weights), final["ema"]["module"])
    upsampler = srplug.get("tiny-y", 2, weights=result.weights)
    scored = evaluate(upsampler, BenchmarkDataset(val_folder, 2))
    assert scored.psnr == pytest.approx(metric["psnr"], abs=1e-9)
    assert t.evaluate([val_folder])[0].psnr == pytest.approx(metric["psnr"], abs=1e-9)


VARIANTS = {
    "y-fp32-l1": {},
    "rgb-bf16-everything": {
        "model": {"name": "tiny-rgb", "scale": 2, "options": {"width": 4}},
        "optim": {
            "name": "adamw",
            "weight_decay": 0.01,
            "grad_clip": 0.05,
            "lr_scale": {"body.2.*": 0.1},
        },
        "schedule": {"kind": "step", "warmup": 0, "milestones": [4, 9], "gamma": 0.5},
        "loss": {"kind": "charbonnier"},
        "precision": {"mode": "bf16"},
        "data": {"workers": 1},
    },
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_resume_continues_exactly(recipe_dict, tmp_path, variant):
    """12 steps in one go == 7 steps, stop, resume for 5: same losses, weights, EMA."""
    recipe = copy.deepcopy(recipe_dict)
    for section, values in VARIANTS[variant].items():
        recipe[section].update(values)
    full = trainer().fit(recipe, output_dir=tmp_path / "full")
    first = trainer().fit(recipe, output_dir=tmp_path / "split", stop_at=7)
    assert first.steps == 7 and first.weights is None
    assert load_training_checkpoint(first.checkpoint)["step"] == 7
    second = trainer().resume(first.checkpoint)
    assert second.steps == 12 and second.weights is not None

    assert losses(tmp_path / "split") == losses(tmp_path / "full")
    assert read_log(tmp_path / "split") == read_log(tmp_path / "full")  # validation too
    a = load_training_checkpoint(full.checkpoint)
    b = load_training_checkpoint(second.checkpoint)
    assert_same_state(a["model"], b["model"])
    assert_same_state(a["ema"]["module"], b["ema"]["module"])
    assert a["optimizer"]["state"][0]["step"] == b["optimizer"]["state"][0]["step"] == 12
    assert_same_state(load_state_dict_file(full.weights), load_state_dict_file(second.weights))
    assert second.metrics == full.metrics


def test_resume_can_extend_a_finished_run(recipe_dict, tmp_path):
    recipe = {**recipe_dict, "schedule": {"steps": 6, "kind": "constant"}}
    done = trainer().fit(recipe, output_dir=tmp_path / "run")
    more = trainer().resume(done.checkpoint, steps=9)
    assert more.steps == 9 and sorted(losses(tmp_path / "run")) == list(range(1, 10))
    assert load_training_checkpoint(more.checkpoint)["recipe"]["schedule"]["steps"] == 9
    with pytest.raises(InputError, match="below the 9 steps"):
        trainer().resume(more.checkpoint, steps=5)


def test_resume_remembers_the_data_root(recipe_dict, tmp_path, hr_folder, val_folder, monkeypatch):
    """Set names resolve on resume under the root the run trained with: no --data needed."""
    monkeypatch.delenv("SRPLUG_DATA", raising=False)
    root = tmp_path / "data"
    root.mkdir()
    (root / "hr").symlink_to(hr_folder, target_is_directory=True)
    (root / "val").symlink_to(val_folder, target_is_directory=True)
    recipe = copy.deepcopy(recipe_dict)
    recipe["data"]["train"] = ["hr"]
    recipe["validation"]["sets"] = ["val"]
    first = trainer(data_root=root).fit(recipe, output_dir=tmp_path / "run", stop_at=7)
    assert load_training_checkpoint(first.checkpoint)["data_root"] == str(root.resolve())
    monkeypatch.chdir(tmp_path / "run")  # another working folder: the stored root is absolute
    second = trainer().resume(first.checkpoint)
    assert second.steps == 12 and second.weights is not None
    assert [r["step"] for r in read_log(tmp_path / "run") if "val" in r] == [6, 12]

    # --data still wins over the stored root.
    elsewhere = tmp_path / "moved"
    elsewhere.mkdir()
    with pytest.raises(DatasetError, match="moved"):
        trainer(data_root=elsewhere).resume(second.checkpoint, steps=13)


def test_auto_precision_measures_reports_and_sticks(recipe_dict, tmp_path):
    recipe = {**recipe_dict, "precision": {"mode": "auto", "probe_steps": 2}}
    messages: list[str] = []
    t = DefaultTrainer(progress=False, log=messages.append)
    first = t.fit(recipe, output_dir=tmp_path / "run", stop_at=3)
    (note,) = [m for m in messages if m.startswith("precision auto -> ")]
    chosen = load_training_checkpoint(first.checkpoint)["precision"]
    assert chosen in ("fp32", "bf16") and note.startswith(f"precision auto -> {chosen}:")
    assert "ms vs fp32" in note and "loss change" in note
    messages.clear()
    t.resume(first.checkpoint)
    assert f"precision {chosen} (as when the run started)" in messages
    assert chosen in json.loads((tmp_path / "run" / "tiny-y_x2.json").read_text())["notes"]


def test_refusals(recipe_dict, tmp_path, val_folder):
    t = trainer()
    with pytest.raises(InputError, match=r"call fit\(\) or resume\(\) first"):
        t.evaluate([val_folder])
    t.fit({**recipe_dict, "schedule": {"steps": 2}}, output_dir=tmp_path / "run")
    with pytest.raises(InputError, match="already holds a training run; continue it with"):
        t.fit(recipe_dict, output_dir=tmp_path / "run")
    with pytest.raises(InputError, match="the trained network is x2"):
        t.evaluate([val_folder], scale=3)
    leaky = copy.deepcopy(recipe_dict)
    leaky["data"]["train"].append(str(val_folder))
    with pytest.raises(DatasetError, match="never be trained on"):
        t.fit(leaky, output_dir=tmp_path / "leaky")
    parameterless = copy.deepcopy(recipe_dict)
    parameterless["model"]["name"] = "bicubic"
    with pytest.raises(InputError, match="no parameters to train"):
        t.fit(parameterless, output_dir=tmp_path / "bicubic")
    with pytest.raises(InputError, match="needs a CUDA device"):
        t.fit({**recipe_dict, "precision": {"mode": "fp16"}}, output_dir=tmp_path / "fp16")


def test_models_train_as_eager_modules_in_bf16(recipe_dict, tmp_path):
    """The trainer builds plain modules (kernels="eager"), not srplug's fused inference
    layers: ESPCN's 64->32 3x3 layer would otherwise be a Winograd Conv3x3."""
    recipe = copy.deepcopy(recipe_dict)
    recipe["model"] = {"name": "espcn", "scale": 2}
    recipe["precision"]["mode"] = "bf16"
    recipe["schedule"].update(steps=2, warmup=1)
    recipe["validation"]["every"] = 2
    recipe["checkpoint"]["every"] = 2
    seen: list[set[type]] = []
    t = trainer(callbacks=[lambda e: seen.append({type(m) for m in e.model.modules()})])
    result = t.fit(recipe, output_dir=tmp_path / "run")
    assert result.steps == 2 and len(seen) == 2
    assert torch.nn.Conv2d in seen[0] and srplug.ops.Conv3x3 not in seen[0]
    assert srplug.ops.Conv2dAct not in seen[0]
    state = load_state_dict_file(result.weights)
    fresh = srplug.get("espcn", 2, weights=None, kernels="eager").model
    assert state.keys() == fresh.state_dict().keys()
    assert all(torch.isfinite(v).all() for v in state.values())


def test_lr_scale_gives_matched_parameters_their_own_rate(recipe_dict, tmp_path):
    recipe = copy.deepcopy(recipe_dict)
    recipe["optim"]["lr_scale"] = {"body.2.weight": 0.1, "body.2.*": 0.5}
    result = trainer().fit(recipe, output_dir=tmp_path / "run")
    groups = load_training_checkpoint(result.checkpoint)["optimizer"]["param_groups"]
    base = recipe["optim"]["lr"]
    # first matching pattern wins: the weight at 0.1, the bias at 0.5, body.0 unscaled
    assert [(len(g["params"]), g["initial_lr"]) for g in groups] == [
        (2, base),
        (1, pytest.approx(0.1 * base)),
        (1, pytest.approx(0.5 * base)),
    ]
    # the schedule moves every group by the same factor (cosine to min_lr at the end)
    ratios = [g["lr"] / g["initial_lr"] for g in groups]
    assert ratios == pytest.approx([ratios[0]] * 3) and ratios[0] < 1


def test_lr_scale_groups_refuse_a_pattern_that_matches_nothing():
    named = list(TinySR(2).named_parameters())
    groups = lr_scale_groups(named, 1e-3, {"body.0.*": 2.0})
    assert [g["lr"] for g in groups] == [1e-3, 2e-3]
    assert [len(g["params"]) for g in groups] == [2, 2]
    assert len(lr_scale_groups(named, 1e-3, {})) == 1
    # every parameter scaled: group 0 stays at the base rate, empty
    groups = lr_scale_groups(named, 1e-3, {"*": 0.5})
    assert [(len(g["params"]), g["lr"]) for g in groups] == [(0, 1e-3), (4, 5e-4)]
    with pytest.raises(InputError, match="no trainable parameters"):
        lr_scale_groups([], 1e-3, {})
    with pytest.raises(InputError, match=r"'deconv\.\*' matches no trainable parameter.*body"):
        lr_scale_groups(named, 1e-3, {"body.*": 0.5, "deconv.*": 0.1})
    # a pattern whose parameters all went to an earlier one says so and names that one
    with pytest.raises(InputError, match=r"'body\.0\.weight' sets no rate.*earlier.*'body\.\*'"):
        lr_scale_groups(named, 1e-3, {"body.*": 0.5, "body.0.weight": 0.1})
