"""get / list / info: names, scales, weights choices, options and their errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

import srplug
from srplug.weights import save_safetensors
from tests.helpers.models import Nearest


def build(scale: int, width: int = 1) -> nn.Module:
    return Nearest(scale, width=width)


@pytest.fixture
def weights_dir(tmp_path):
    for scale, gain in ((2, 0.5), (3, 0.25)):
        save_safetensors(
            {"gain": torch.tensor([gain]), "offset": torch.tensor(0.0)},
            tmp_path / f"x{scale}.safetensors",
        )
    save_safetensors(
        {"module.gain": torch.tensor([0.75]), "module.offset": torch.tensor(0.0)},
        tmp_path / "ddp.safetensors",
    )
    torch.save(
        {"params_ema": {"gain": torch.tensor([0.125]), "offset": torch.tensor(0.0)}},
        tmp_path / "basicsr.pth",
    )
    return tmp_path


@pytest.fixture
def scaler_plugin(weights_dir):
    def weights(tag, scale):
        file = srplug.WeightsFile(path=weights_dir / f"x{scale}.safetensors")
        card = srplug.ModelCard(params=1, metrics=(srplug.Metric("Set5", scale, 30.0, 0.9),))
        return srplug.Weights(tag=tag, scale=scale, file=file, card=card)

    class Plugin:
        @srplug.hookimpl
        def register_models(self, register):
            register(
                srplug.ModelSpec(
                    name="scaler",
                    build=build,
                    scales=(2, 3, 4),
                    weights=(weights("x2", 2), weights("x3", 3)),
                    aliases=("scaler-net",),
                )
            )

    srplug.register_plugin(Plugin(), name="scaler-plugin")
    yield
    srplug.unregister_plugin("scaler-plugin")


def gain_of(up) -> float:
    return float(up.model.gain.detach().mean())


def test_list_and_info(scaler_plugin):
    assert "scaler" in srplug.list()
    assert srplug.list("scal*") == ["scaler"]
    assert srplug.list("nothing-like-it") == []
    spec = srplug.info("scaler")
    assert spec.plugin == "scaler-plugin" and spec.scales == (2, 3, 4)
    assert srplug.info("SCALER-NET") is spec  # aliases, case-insensitive
    assert spec.weights[0].card.metric("Set5", 2).psnr == 30.0


def test_unknown_name_suggests_close_matches(scaler_plugin):
    with pytest.raises(srplug.UnknownModelError) as err:
        srplug.get("scalr")
    assert isinstance(err.value, KeyError) and isinstance(err.value, srplug.SrplugError)
    assert "scaler" in err.value.suggestions
    assert "did you mean 'scaler'" in str(err.value)
    with pytest.raises(KeyError):
        srplug.info("zzzzzz")


def test_default_weights_per_scale(scaler_plugin):
    assert gain_of(srplug.get("scaler")) == 0.5  # default scale 2
    assert gain_of(srplug.get("scaler", scale=3)) == 0.25


def test_weights_tag_sets_scale(scaler_plugin):
    up = srplug.get("scaler", weights="x3")
    assert up.scale == 3 and gain_of(up) == 0.25
    with pytest.raises(srplug.InputError, match="x3, not x2"):
        srplug.get("scaler", scale=2, weights="x3")


def test_no_default_weights_for_scale(scaler_plugin):
    with pytest.raises(srplug.WeightsError, match="no default weights for x4.*weights=None"):
        srplug.get("scaler", scale=4)
    assert gain_of(srplug.get("scaler", scale=4, weights=None)) == 1.0  # random init


def test_unknown_tag(scaler_plugin):
    with pytest.raises(srplug.WeightsError, match="no weights tagged 'x9'.*x2, x3"):
        srplug.get("scaler", weights="x9")


def test_weights_from_path(scaler_plugin, weights_dir):
    assert gain_of(srplug.get("scaler", scale=4, weights=weights_dir / "x3.safetensors")) == 0.25
    assert gain_of(srplug.get("scaler", weights=str(weights_dir / "ddp.safetensors"))) == 0.75
    assert gain_of(srplug.get("scaler", weights=weights_dir / "basicsr.pth")) == 0.125
    with pytest.raises(srplug.WeightsError, match="does not exist"):
        srplug.get("scaler", weights=weights_dir / "missing.safetensors")


def test_options_and_scale_from_the_weights_file(weights_dir):
    def options_from_weights(path, state):
        return {"scale": 4 if "x3" in path.name else 3, "width": state["gain"].numel()}

    class Plugin:
        @srplug.hookimpl
        def register_models(self, register):
            register(
                srplug.ModelSpec(
                    name="reader",
                    build=build,
                    scales=(2, 3, 4),
                    options_from_weights=options_from_weights,
                )
            )

    srplug.register_plugin(Plugin(), name="reader-plugin")
    try:
        up = srplug.get("reader", weights=weights_dir / "x3.safetensors")
        assert up.scale == 4 and gain_of(up) == 0.25
        assert srplug.get("reader", scale=4, weights=weights_dir / "x3.safetensors").scale == 4
        with pytest.raises(srplug.WeightsError, match="is for x4, not x2: pass scale=4"):
            srplug.get("reader", scale=2, weights=weights_dir / "x3.safetensors")
    finally:
        srplug.unregister_plugin("reader-plugin")


def test_mismatched_weights_file(scaler_plugin, tmp_path):
    save_safetensors({"other": torch.zeros(1)}, tmp_path / "other.safetensors")
    with pytest.raises(srplug.WeightsError, match="do not fit model 'scaler'"):
        srplug.get("scaler", weights=tmp_path / "other.safetensors")


def test_options_are_passed_and_checked(scaler_plugin):
    up = srplug.get("scaler", weights=None, width=4)
    assert up.model.gain.shape == (4,)
    with pytest.raises(srplug.InputError, match="no option.*depth.*width"):
        srplug.get("scaler", weights=None, depth=3)


@pytest.mark.parametrize(
    "scale,match",
    [
        (5, "supports scales 2, 3, 4"),
        (0, "positive"),
        (2.0, "positive integer"),
        (True, "positive integer"),
    ],
)
def test_bad_scale(scaler_plugin, scale, match):
    with pytest.raises(srplug.InputError, match=match):
        srplug.get("scaler", scale=scale, weights=None)


def test_bad_weights_type(scaler_plugin):
    with pytest.raises(srplug.InputError, match="weights must be"):
        srplug.get("scaler", weights=3)


def test_name_must_be_a_string():
    with pytest.raises(srplug.InputError):
        srplug.get(None)


def test_build_returning_non_module():
    class Plugin:
        @srplug.hookimpl
        def register_models(self, register):
            register(srplug.ModelSpec(name="not-a-module", build=lambda scale: "oops"))

    srplug.register_plugin(Plugin(), name="bad-build")
    try:
        with pytest.raises(srplug.PluginError, match="not a torch.nn.Module"):
            srplug.get("not-a-module", weights=None)
    finally:
        srplug.unregister_plugin("bad-build")


def test_concurrent_get_and_call(scaler_plugin):
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    expected = srplug.get("scaler")(img)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(srplug.get("scaler")(img))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 20 and all((r == expected).all() for r in results)
