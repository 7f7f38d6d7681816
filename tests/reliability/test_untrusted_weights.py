"""Untrusted weights: a pickle payload never runs, whichever door the file comes through;
damaged files and interrupted downloads give clear srplug errors and leave nothing behind.

``tests/test_weights.py`` covers the loader itself (payload in a torch file, truncated
files) and ``tests/test_hub.py`` the downloader (closed connections, hash mismatch); these
tests cover the public entry points and the failure modes those do not.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from srplug.adapters.opencv import DnnSuperResImpl

import srplug
from srplug import cli, hub
from srplug.errors import ChecksumError, DownloadError, WeightsError
from srplug.weights import Weights, WeightsFile, load_state_dict_file, save_safetensors
from tests.reliability.conftest import fuzz, outcome, scratch_dir


class Payload:
    """Unpickles to a call that creates ``marker`` (what an attacker's checkpoint does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def espcn_state() -> dict[str, torch.Tensor]:
    return srplug.get("espcn", 2, weights=None).model.state_dict()


def evil_files(folder: Path, marker: Path) -> dict[str, Path]:
    """Checkpoints carrying the payload in every container torch reads, under several names."""
    state = {k: v.float() for k, v in espcn_state().items()}
    payload = {"params": state, "extra": Payload(marker)}
    files = {}
    files["zip"] = folder / "evil_x2.pth"
    torch.save(payload, files["zip"])
    files["legacy"] = folder / "legacy_x2.pt"
    torch.save(payload, files["legacy"], _use_new_zipfile_serialization=False)
    files["plain-pickle"] = folder / "plain_x2.ckpt"
    files["plain-pickle"].write_bytes(pickle.dumps(payload, protocol=4))
    files["no-suffix"] = folder / "weights_x2"  # format sniffed from the first bytes
    files["no-suffix"].write_bytes(files["zip"].read_bytes())
    files["odd-suffix"] = folder / "weights_x2.dat"
    files["odd-suffix"].write_bytes(pickle.dumps(payload, protocol=2))
    files["as-safetensors"] = folder / "fake_x2.safetensors"
    files["as-safetensors"].write_bytes(files["zip"].read_bytes())
    assert not marker.exists()
    return files


@pytest.fixture
def evil(tmp_path: Path) -> tuple[dict[str, Path], Path]:
    marker = tmp_path / "pwned"
    return evil_files(tmp_path, marker), marker


KINDS = ["zip", "legacy", "plain-pickle", "no-suffix", "odd-suffix", "as-safetensors"]


@pytest.mark.parametrize("kind", KINDS)
def test_payload_never_runs_through_get(evil, kind: str) -> None:
    files, marker = evil
    with pytest.raises(WeightsError) as info:
        srplug.get("espcn", 2, weights=files[kind])
    assert files[kind].name in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["zip", "legacy", "plain-pickle"])
def test_payload_never_runs_through_weights_file(evil, kind: str) -> None:
    files, marker = evil
    w = Weights("x2", 2, WeightsFile(path=files[kind]))
    with pytest.raises(WeightsError, match="not a safe weights-only checkpoint"):
        w.state_dict()
    assert not marker.exists()


def test_payload_never_runs_through_the_cli(evil) -> None:
    files, marker = evil
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(
            ["upscale", "espcn", "-s", "2", "-w", str(files["zip"]), "-o", str(marker.parent)]
        )
    assert code == 1 and err.getvalue().startswith("srplug: error:")
    assert "not a safe weights-only checkpoint" in err.getvalue()
    assert not marker.exists()


def test_payload_never_runs_through_the_opencv_adapter(evil) -> None:
    files, marker = evil
    sr = DnnSuperResImpl.create()
    sr.readModel(str(files["zip"]))
    with pytest.raises(WeightsError):
        sr.setModel("espcn", 2)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4")
def test_payload_never_runs_through_training_resume(evil) -> None:
    from srplug.train.checkpoint import load_training_checkpoint

    files, marker = evil
    for kind in ("zip", "legacy", "plain-pickle"):
        with pytest.raises(WeightsError):
            load_training_checkpoint(files[kind])
    assert not marker.exists()


@fuzz(30)
@given(data=st.data())
def test_mutated_payload_files_never_run_code(data: st.DataObject) -> None:
    """Random byte edits of payload-carrying checkpoints: refused, and the payload never
    runs (an edit can break the file, never turn on the unrestricted unpickler)."""
    kind = data.draw(st.sampled_from(["zip", "legacy", "plain-pickle"]))
    blob = bytearray(EVIL_BLOBS[kind])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    target = SCRATCH / f"mutant.{'pth' if kind != 'plain-pickle' else 'ckpt'}"
    target.write_bytes(bytes(blob[:cut]))
    outcome("weights.mutated-payload", lambda: load_state_dict_file(target))
    assert not MARKER.exists()


SCRATCH = scratch_dir("srplug-evil-")
MARKER = SCRATCH / "pwned"
EVIL_BLOBS = {
    kind: path.read_bytes()
    for kind, path in evil_files(SCRATCH, MARKER).items()
    if kind in ("zip", "legacy", "plain-pickle")
}


@fuzz(50)
@given(data=st.data())
def test_damaged_weights_give_a_weights_error(data: st.DataObject) -> None:
    """Truncated, bit-flipped or spliced safetensors / torch files: a state dict or a
    WeightsError naming the file, never a raw error from safetensors, zipfile or pickle."""
    kind = data.draw(st.sampled_from(sorted(GOOD_BLOBS)))
    blob = bytearray(GOOD_BLOBS[kind])
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    if data.draw(st.integers(0, 4)) == 0:
        blob[0:0] = data.draw(st.binary(max_size=16))
    target = SCRATCH / f"damaged{Path(kind).suffix}"
    target.write_bytes(bytes(blob))
    state, err = outcome("weights.damaged", lambda: load_state_dict_file(target))
    if err is not None:
        assert isinstance(err, WeightsError) and str(target) in str(err)
    else:
        assert all(isinstance(v, torch.Tensor) for v in state.values())


def _good_blobs() -> dict[str, bytes]:
    g = torch.Generator().manual_seed(0)
    state = {"a.weight": torch.randn(3, 2, generator=g), "b": torch.arange(4)}
    out = {}
    out["x.safetensors"] = save_safetensors(state, SCRATCH / "good.safetensors").read_bytes()
    torch.save(state, SCRATCH / "good.pth")
    out["x.pth"] = (SCRATCH / "good.pth").read_bytes()
    torch.save({"state_dict": state}, SCRATCH / "legacy.pt", _use_new_zipfile_serialization=False)
    out["x.pt"] = (SCRATCH / "legacy.pt").read_bytes()
    return out


GOOD_BLOBS = _good_blobs()


# ----------------------------------------------------------------- interrupted downloads


BODY = bytes(range(256)) * 256  # 64 KiB
BODY_SHA = hashlib.sha256(BODY).hexdigest()


@contextlib.contextmanager
def raw_server(respond) -> Iterator[str]:
    """A one-connection-at-a-time HTTP server on 127.0.0.1 whose replies ``respond(conn)``
    writes byte by byte, so a test can cut the connection anywhere."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                respond(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def reset_after(conn: socket.socket, data: bytes) -> None:
    """Send ``data`` then abort the connection with a TCP reset (SO_LINGER 0)."""
    conn.sendall(data)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def test_connection_reset_mid_body_leaves_nothing(tmp_path: Path) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode()
    server = raw_server(lambda conn: reset_after(conn, head + BODY[:20000]))
    with server as url, pytest.raises(DownloadError) as info:
        hub.download(url + "/w.pth", sha256=BODY_SHA, cache_dir=tmp_path, progress=False)
    assert "could not download" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_chunked_body_cut_short_leaves_nothing(tmp_path: Path) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = f"{len(BODY):x}\r\n".encode() + BODY[:30000]  # promised 64 KiB, sent 30,000 B
    server = raw_server(lambda conn: conn.sendall(head + chunk))
    with server as url, pytest.raises(DownloadError):
        hub.download(url + "/w.pth", sha256=BODY_SHA, cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_body_without_length_cut_short_fails_the_hash(tmp_path: Path) -> None:
    """Without Content-Length a cut is invisible to HTTP: the sha256 catches it (which is
    why a ``WeightsFile`` URL must come with its sha256)."""
    head = b"HTTP/1.0 200 OK\r\n\r\n"
    server = raw_server(lambda conn: conn.sendall(head + BODY[:30000]))
    with server as url, pytest.raises(ChecksumError, match="sha256 mismatch"):
        hub.download(url + "/w.pth", sha256=BODY_SHA, cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_download_then_get_refuses_a_changed_file(tmp_path: Path) -> None:
    """A registered model whose URL serves other bytes than its sha256: ChecksumError from
    ``srplug.get``, nothing cached, and the next attempt downloads again."""
    state = {k: v.clone() for k, v in espcn_state().items()}
    good = save_safetensors(state, tmp_path / "good.safetensors").read_bytes()
    served = {"body": good[:-1] + bytes([good[-1] ^ 1])}  # one bit flipped

    def respond(conn: socket.socket) -> None:
        body = served["body"]
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)

    build = srplug.info("espcn").build  # the real network
    with raw_server(respond) as url:
        expected = hashlib.sha256(good).hexdigest()

        class Plugin:
            @srplug.hookimpl
            def register_models(self, register):
                file = WeightsFile(url=f"{url}/espcn_x2.safetensors", sha256=expected)
                register(
                    srplug.ModelSpec(
                        name="remote-espcn",
                        build=build,
                        channels="y",
                        scales=(2,),
                        weights=(Weights("x2", 2, file),),
                    )
                )

        srplug.register_plugin(Plugin(), name="remote-plugin")
        try:
            cache = hub.weights_cache_dir()
            with pytest.raises(ChecksumError, match="sha256 mismatch"):
                srplug.get("remote-espcn", 2)
            assert not cache.exists() or list(cache.iterdir()) == []
            served["body"] = good
            up = srplug.get("remote-espcn", 2)
            assert up(np.zeros((4, 4, 3), np.uint8)).shape == (8, 8, 3)
            assert [p.name for p in cache.iterdir()] == ["espcn_x2.safetensors"]
        finally:
            srplug.unregister_plugin("remote-plugin")
