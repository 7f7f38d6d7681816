"""Weights descriptors, model cards, and safe loading of weights files."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import pickle
import re
import sys
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from srplug.errors import ChecksumError, InputError, WeightsError
from srplug.weights import (
    Metric,
    ModelCard,
    Weights,
    WeightsFile,
    format_from_name,
    load_checkpoint,
    load_state_dict_file,
    save_safetensors,
    unwrap_state_dict,
)


def small_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
        "conv.bias": torch.randn(4, generator=g),
        "scale": torch.tensor([2], dtype=torch.int64),
    }


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def no_temp_files(folder: Path) -> bool:
    return not any(p.name.startswith(".") for p in folder.iterdir())


CARD = ModelCard(
    params=1234,
    recipe="recipes/x2.toml",
    training_data="DIV2K",
    steps=1000,
    metrics=(Metric("Set5", 2, 33.66, 0.9299), Metric("Set14", 2, 30.24)),
    license="Apache-2.0",
    source="srplug",
    notes="bicubic baseline",
)


# --------------------------------------------------------------------------- model card


def test_model_card_metric_lookup() -> None:
    assert CARD.metric("set5", 2) == Metric("Set5", 2, 33.66, 0.9299)
    assert CARD.metric("Set14", 2).ssim is None  # type: ignore[union-attr]
    assert CARD.metric("Set5", 4) is None
    assert CARD.metric("Urban100", 2) is None


def test_model_card_json_round_trip() -> None:
    d = json.loads(json.dumps(CARD.to_dict()))
    assert d["metrics"][0] == {"dataset": "Set5", "scale": 2, "psnr": 33.66, "ssim": 0.9299}
    assert ModelCard.from_dict(d) == CARD


def test_model_card_defaults_and_errors() -> None:
    assert ModelCard.from_dict({}) == ModelCard()
    assert ModelCard(metrics=[Metric("Set5", 2, 30)]).metrics == (Metric("Set5", 2, 30.0),)
    with pytest.raises(InputError, match="unknown ModelCard keys"):
        ModelCard.from_dict({"param": 3})
    with pytest.raises(InputError, match="missing keys"):
        ModelCard.from_dict({"metrics": [{"dataset": "Set5", "scale": 2}]})
    with pytest.raises(InputError):
        ModelCard(params=-1)
    with pytest.raises(InputError):
        Metric("Set5", 0, 30.0)


# --------------------------------------------------------------------------- descriptors


def test_weights_file_needs_exactly_one_location() -> None:
    with pytest.raises(InputError, match="exactly one"):
        WeightsFile()
    with pytest.raises(InputError, match="exactly one"):
        WeightsFile(path="a.pth", url="http://x/a.pth", sha256="0" * 64)
    with pytest.raises(InputError, match="together"):
        WeightsFile(package="srplug")
    with pytest.raises(InputError, match="sha256"):
        WeightsFile(url="http://x/a.pth")
    with pytest.raises(InputError, match="relative"):
        WeightsFile(package="srplug", resource="../secrets.pth")
    assert WeightsFile(url="http://x/a.pth", sha256="AB" * 32).sha256 == "ab" * 32


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("x2.safetensors", "safetensors"),
        ("x2.pt", "torch"),
        ("x2.PTH", "torch"),
        ("EDSR_x2.model", "torch"),
        ("x2.ckpt", "torch"),
        ("x2.onnx", None),
    ],
)
def test_format_from_name(name: str, fmt: str | None) -> None:
    assert format_from_name(name) == fmt


def test_weights_format_inferred_or_required() -> None:
    w = Weights("x2", 2, WeightsFile(path="w/x2.pth"), CARD)
    assert w.format == "torch"
    with pytest.raises(InputError, match="format="):
        Weights("x2", 2, WeightsFile(path="w/x2.weights"), CARD)
    assert Weights("x2", 2, WeightsFile(path="w/x2.weights"), format="safetensors").format == (
        "safetensors"
    )
    with pytest.raises(InputError):
        Weights("x2", 0, WeightsFile(path="w/x2.pth"))


def test_weights_from_local_path(tmp_path: Path) -> None:
    file = save_safetensors(small_state(), tmp_path / "x2.safetensors")
    w = Weights("x2", 2, WeightsFile(path=file, sha256=sha(file)), CARD)
    assert w.path() == file
    assert_same(w.state_dict(), small_state())
    bad = Weights("x2", 2, WeightsFile(path=file, sha256="0" * 64))
    with pytest.raises(ChecksumError, match="expected 0000"):
        bad.path()
    with pytest.raises(WeightsError, match="not found"):
        Weights("x2", 2, WeightsFile(path=tmp_path / "missing.pth")).state_dict()


def test_weights_from_package_resource(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = f"srplug_test_pkg_{os.getpid()}"
    root = tmp_path / "site" / package
    (root / "weights").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    save_safetensors(small_state(), root / "weights" / "x2.safetensors")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, package, raising=False)
    w = Weights("x2", 2, WeightsFile(package=package, resource="weights/x2.safetensors"), CARD)
    assert w.path() == root / "weights" / "x2.safetensors"
    assert_same(w.state_dict(), small_state())
    missing = WeightsFile(package=package, resource="weights/x4.safetensors")
    with pytest.raises(WeightsError, match=re.escape("no file 'weights/x4.safetensors'")):
        missing.local_path()
    with pytest.raises(WeightsError, match="not installed"):
        WeightsFile(package="srplug_no_such_pkg", resource="w.pth").local_path()


def test_weights_from_zipped_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = f"srplug_test_zip_{os.getpid()}"
    file = save_safetensors(small_state(), tmp_path / "x2.safetensors")
    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"{package}/__init__.py", "")
        z.write(file, f"{package}/weights/x2.safetensors")
    monkeypatch.syspath_prepend(str(archive))
    monkeypatch.delitem(sys.modules, package, raising=False)
    w = Weights("x2", 2, WeightsFile(package=package, resource="weights/x2.safetensors"))
    local = w.path()
    assert local.is_relative_to(Path(os.environ["SRPLUG_HOME"]))  # copied out of the zip
    assert_same(w.state_dict(), small_state())
    assert w.path() == local


def test_weights_from_stdlib_package_resource() -> None:
    # Any file that ships inside an installed package resolves the same way.
    w = WeightsFile(package="json", resource="__init__.py")
    assert w.local_path().read_text(encoding="utf-8").startswith('r"""JSON')


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Counter[str]]]:
    """Serve tmp_path/"served" on 127.0.0.1 and count requests per path."""
    served = tmp_path / "served"
    served.mkdir()
    hits: Counter[str] = Counter()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(served), **kwargs)

        def do_GET(self) -> None:
            hits[self.path] += 1
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_weights_from_url(tmp_path: Path, file_server: tuple[str, Counter[str]]) -> None:
    base, hits = file_server
    file = tmp_path / "served" / "net_x2.pth"
    torch.save({"params_ema": small_state()}, file)
    w = Weights("x2", 2, WeightsFile(url=f"{base}/net_x2.pth", sha256=sha(file)), CARD)
    assert w.format == "torch"
    assert_same(w.state_dict(progress=False), small_state())
    assert_same(w.state_dict(progress=False), small_state())
    assert hits["/net_x2.pth"] == 1
    cached = w.path(progress=False)
    assert cached.parent == Path(os.environ["SRPLUG_HOME"]) / "weights"


# --------------------------------------------------------------------------- save / load


def test_save_load_round_trip_with_metadata(tmp_path: Path) -> None:
    state = small_state()
    state["t"] = torch.arange(12.0).reshape(3, 4).t()  # not contiguous
    base = torch.arange(8.0)
    state["a"], state["b"] = base[:4], base[4:]  # share one storage
    path = save_safetensors(state, tmp_path / "sub" / "m.safetensors", metadata={"scale": "2"})
    assert_same(load_state_dict_file(path), {k: v.contiguous() for k, v in state.items()})
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"scale": "2"}
    assert no_temp_files(path.parent)


def test_save_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        save_safetensors({"a": [1, 2]}, tmp_path / "m.safetensors")  # type: ignore[dict-item]
    with pytest.raises(InputError):
        save_safetensors(small_state(), tmp_path / "m.safetensors", metadata={"a": 1})  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


def test_load_torch_plain_state_dict(tmp_path: Path) -> None:
    torch.save(small_state(), tmp_path / "plain.pt")
    assert_same(load_state_dict_file(tmp_path / "plain.pt"), small_state())


def test_unwrap_prefers_params_ema(tmp_path: Path) -> None:
    ema = small_state()
    raw = {k: v + 1 for k, v in ema.items()}
    file = tmp_path / "basicsr.pth"
    torch.save({"params": raw, "params_ema": ema, "iter": 5}, file)
    checkpoint = load_checkpoint(file)
    assert set(checkpoint) == {"params", "params_ema", "iter"}  # raw, wrappers kept
    assert_same(load_state_dict_file(file), ema)
    assert_same(unwrap_state_dict({"params": raw}), raw)


def test_unwrap_strips_module_prefix() -> None:
    state = small_state()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    assert_same(unwrap_state_dict(wrapped), state)
    partly = {"module.a": torch.zeros(1), "b": torch.zeros(1)}
    assert set(unwrap_state_dict(partly)) == {"module.a", "b"}  # only when all keys have it


def test_unwrap_nested_and_missing() -> None:
    state = small_state()
    assert_same(unwrap_state_dict({"model": {"net": state, "cfg": "x"}}), state)
    with pytest.raises(WeightsError, match=r"top-level keys are \['optimizer', 'epoch'\]"):
        unwrap_state_dict({"optimizer": {"lr": 0.1}, "epoch": 3}, source="ckpt.pth")


def test_load_safetensors_with_torch_suffix_by_format(tmp_path: Path) -> None:
    file = tmp_path / "odd.weights"
    save_safetensors(small_state(), file)
    assert_same(load_state_dict_file(file), small_state())  # sniffed
    assert_same(load_state_dict_file(file, format="safetensors"), small_state())
    with pytest.raises(InputError, match="unknown weights format"):
        load_checkpoint(file, format="onnx")


class _Payload:
    """Pickles to a call that creates ``marker`` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


class _ShellPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("payload", [_Payload, _ShellPayload])
def test_pickle_payload_is_refused_and_never_runs(tmp_path: Path, payload: type) -> None:
    if payload is _ShellPayload and os.name != "posix":
        pytest.skip("uses touch")
    marker = tmp_path / "pwned"
    file = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "extra": payload(marker)}, file)
    for load in (load_checkpoint, load_state_dict_file):
        with pytest.raises(WeightsError, match="not a safe weights-only checkpoint") as info:
            load(file)
        assert str(file) in str(info.value)
    assert not marker.exists()
    # The payload is live: an unrestricted unpickler would have run it.
    with open(file, "rb") as f:
        torch.load(f, map_location="cpu", weights_only=False)
    assert marker.exists()


def test_plain_pickle_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    file = tmp_path / "evil.pt"
    file.write_bytes(pickle.dumps({"x": _Payload(marker)}, protocol=2))
    with pytest.raises(WeightsError, match="not a safe weights-only checkpoint"):
        load_state_dict_file(file)
    assert not marker.exists()


def test_truncated_files(tmp_path: Path) -> None:
    safetensors_file = save_safetensors(small_state(), tmp_path / "good.safetensors")
    torch_file = tmp_path / "good.pth"
    torch.save(small_state(), torch_file)
    legacy_file = tmp_path / "legacy.pt"  # the pre-1.6 non-zip format
    torch.save(small_state(), legacy_file, _use_new_zipfile_serialization=False)
    for good in (safetensors_file, torch_file, legacy_file):
        data = good.read_bytes()
        for size in (0, 5, len(data) // 2, len(data) - 10):
            cut = tmp_path / f"cut{size}{good.suffix}"
            cut.write_bytes(data[:size])
            with pytest.raises(WeightsError) as info:
                load_state_dict_file(cut)
            assert str(cut) in str(info.value)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(WeightsError, match=re.escape("garbage.pth")):
        load_state_dict_file(garbage)
    unknown = tmp_path / "garbage.dat"
    unknown.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(WeightsError, match="neither a safetensors file nor a PyTorch"):
        load_state_dict_file(unknown)
    with pytest.raises(WeightsError, match="not found"):
        load_state_dict_file(tmp_path / "missing.safetensors")
    tensor_file = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(WeightsError, match="not a mapping"):
        load_state_dict_file(tensor_file)


@pytest.mark.parametrize(
    "name,scale",
    [
        ("fsrcnn_x3.pth", 3),
        ("EDSR_x4-4f62e9ef.pt", 4),
        ("RCAN_BIX4.pt", None),
        ("model.safetensors", None),
        ("x12.safetensors", 12),
        ("max2.pth", None),
    ],
)
def test_scale_from_name(name, scale):
    from srplug.weights import scale_from_name

    assert scale_from_name(name) == scale


def test_package_weights_finds_files_and_cards(tmp_path, monkeypatch):
    from srplug.weights import ModelCard, package_weights, save_safetensors

    pkg = tmp_path / "shipper_pkg"
    (pkg / "weights").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for scale in (4, 2):
        save_safetensors(
            {"w": torch.full((1,), float(scale))}, pkg / "weights" / f"net_x{scale}.safetensors"
        )
    card = ModelCard(params=1, steps=10, source="srplug")
    (pkg / "weights" / "net_x2.json").write_text(json.dumps(card.to_dict()))
    save_safetensors({"w": torch.zeros(1)}, pkg / "weights" / "other_x2.safetensors")
    monkeypatch.syspath_prepend(str(tmp_path))

    found = package_weights("shipper_pkg", "net")
    assert [w.tag for w in found] == ["x2", "x4"]
    assert found[0].card == card and found[1].card == ModelCard()
    assert float(found[1].state_dict()["w"]) == 4.0
    assert package_weights("shipper_pkg", "missing") == ()
    with pytest.raises(InputError, match="no package"):
        package_weights("no_such_pkg_here", "net")
