"""Downloading into the cache, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from srplug import hub
from srplug.errors import ChecksumError, DownloadError, InputError, WeightsError

PAYLOAD = bytes(range(256)) * 64  # 16 KiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Route:
    """What the test server answers on one path."""

    body: bytes = PAYLOAD
    status: int = 200
    declared_length: int | None = None  # Content-Length to send; None: the body's length
    chunk_delay: float = 0.0  # pause between 1 KiB chunks
    wait: threading.Event | None = None  # block before answering until set


@dataclass
class Server:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)


class _Handler(http.server.BaseHTTPRequestHandler):
    server_state: Server

    def do_GET(self) -> None:
        state = self.server_state
        state.hits[self.path] += 1
        route = state.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        if route.wait is not None:
            route.wait.wait(5)
        if route.status != 200:
            self.send_error(route.status)
            return
        self.send_response(200)
        length = route.declared_length if route.declared_length is not None else len(route.body)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        for start in range(0, len(route.body), 1024):
            self.wfile.write(route.body[start : start + 1024])
            if route.chunk_delay:
                self.wfile.flush()
                time.sleep(route.chunk_delay)
        self.close_connection = True  # a short body then ends with the connection

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(url="")
    handler = type("Handler", (_Handler,), {"server_state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        for route in state.routes.values():
            if route.wait is not None:
                route.wait.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- paths, hashing


def test_home_dir_follows_srplug_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRPLUG_HOME", str(tmp_path / "h"))
    assert hub.home_dir() == tmp_path / "h"
    assert hub.weights_cache_dir() == tmp_path / "h" / "weights"


def test_home_dir_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRPLUG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hub.home_dir() == tmp_path / ".cache" / "srplug"


def test_sha256_file(tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(PAYLOAD)
    assert hub.sha256_file(f) == PAYLOAD_SHA


def test_errors_are_weights_errors() -> None:
    assert issubclass(DownloadError, WeightsError)
    assert issubclass(ChecksumError, WeightsError)


# --------------------------------------------------------------------------- downloads


def test_download_then_cache_hit(server: Server, tmp_path: Path) -> None:
    server.routes["/w/model.safetensors"] = Route()
    url = server.url + "/w/model.safetensors"
    first = hub.download(url, sha256=PAYLOAD_SHA, cache_dir=tmp_path, progress=False)
    assert first == tmp_path / "model.safetensors"
    assert first.read_bytes() == PAYLOAD
    umask = os.umask(0)
    os.umask(umask)
    assert first.stat().st_mode & 0o777 == 0o666 & ~umask  # not a temp file's 0600
    second = hub.download(url, sha256=PAYLOAD_SHA.upper(), cache_dir=tmp_path, progress=False)
    assert second == first
    assert server.hits["/w/model.safetensors"] == 1  # the second call made no request
    assert leftovers(tmp_path) == ["model.safetensors"]


def test_download_uses_srplug_home(server: Server, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SRPLUG_HOME", str(tmp_path / "home"))
    server.routes["/a.pth"] = Route()
    path = hub.download(server.url + "/a.pth", sha256=PAYLOAD_SHA, progress=False)
    assert path == tmp_path / "home" / "weights" / "a.pth"


def test_download_custom_filename_and_no_hash(server: Server, tmp_path: Path) -> None:
    server.routes["/get?id=3"] = Route()
    url = server.url + "/get?id=3"
    path = hub.download(url, sha256=None, filename="x3.pth", cache_dir=tmp_path, progress=False)
    assert path.name == "x3.pth" and path.read_bytes() == PAYLOAD
    hub.download(url, sha256=None, filename="x3.pth", cache_dir=tmp_path, progress=False)
    assert server.hits["/get?id=3"] == 1


def test_checksum_mismatch_leaves_nothing(server: Server, tmp_path: Path) -> None:
    server.routes["/m.pth"] = Route(body=b"not the expected bytes")
    with pytest.raises(ChecksumError) as info:
        hub.download(server.url + "/m.pth", sha256=PAYLOAD_SHA, cache_dir=tmp_path, progress=False)
    message = str(info.value)
    assert PAYLOAD_SHA in message
    assert hashlib.sha256(b"not the expected bytes").hexdigest() in message
    assert leftovers(tmp_path) == []


def test_bad_cached_file_is_downloaded_again(server: Server, tmp_path: Path) -> None:
    server.routes["/c.pth"] = Route()
    (tmp_path / "c.pth").write_bytes(b"stale")
    path = hub.download(
        server.url + "/c.pth", sha256=PAYLOAD_SHA, cache_dir=tmp_path, progress=False
    )
    assert path.read_bytes() == PAYLOAD
    assert server.hits["/c.pth"] == 1


@pytest.mark.parametrize("status", [404, 500])
def test_http_error(server: Server, tmp_path: Path, status: int) -> None:
    server.routes["/e.pth"] = Route(status=status)
    url = server.url + "/e.pth"
    with pytest.raises(DownloadError) as info:
        hub.download(url, sha256=PAYLOAD_SHA, cache_dir=tmp_path, progress=False)
    message = str(info.value)
    assert url in message and str(status) in message and "weights=PATH" in message
    assert leftovers(tmp_path) == []


def test_connection_closed_mid_body(server: Server, tmp_path: Path) -> None:
    server.routes["/short.pth"] = Route(declared_length=len(PAYLOAD) * 2)
    url = server.url + "/short.pth"
    with pytest.raises(DownloadError, match="closed after 16384 of 32768 bytes"):
        hub.download(url, sha256=PAYLOAD_SHA, cache_dir=tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_connection_refused(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/nothing.pth"  # discard port: nothing listens there
    with pytest.raises(DownloadError, match="could not download"):
        hub.download(url, sha256=PAYLOAD_SHA, cache_dir=tmp_path, progress=False, timeout=2)
    assert leftovers(tmp_path) == []


def test_timeout(server: Server, tmp_path: Path) -> None:
    server.routes["/slow.pth"] = Route(wait=threading.Event())
    with pytest.raises(DownloadError, match="could not download"):
        hub.download(
            server.url + "/slow.pth",
            sha256=PAYLOAD_SHA,
            cache_dir=tmp_path,
            progress=False,
            timeout=0.2,
        )
    assert leftovers(tmp_path) == []


def test_keyboard_interrupt_cleans_up(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class InterruptingBar:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def __enter__(self) -> InterruptingBar:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def update(self, n: int) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(hub, "tqdm", InterruptingBar)
    server.routes["/k.pth"] = Route()
    with pytest.raises(KeyboardInterrupt):
        hub.download(server.url + "/k.pth", sha256=PAYLOAD_SHA, cache_dir=tmp_path)
    assert leftovers(tmp_path) == []


def test_concurrent_downloads_of_one_file(server: Server, tmp_path: Path) -> None:
    server.routes["/same.pth"] = Route(chunk_delay=0.005)
    url = server.url + "/same.pth"
    results: list[Path | BaseException] = []

    def fetch() -> None:
        try:
            results.append(
                hub.download(url, sha256=PAYLOAD_SHA, cache_dir=tmp_path, progress=False)
            )
        except BaseException as exc:  # reported through results
            results.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [tmp_path / "same.pth"] * 3
    assert (tmp_path / "same.pth").read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["same.pth"]


def test_progress_bar_on_stderr(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/p1.pth"] = Route()
    server.routes["/p2.pth"] = Route()
    hub.download(server.url + "/p1.pth", sha256=PAYLOAD_SHA, cache_dir=tmp_path, progress=True)
    captured = capsys.readouterr()
    assert "p1.pth" in captured.err and captured.out == ""
    hub.download(server.url + "/p2.pth", sha256=PAYLOAD_SHA, cache_dir=tmp_path, progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_offline_refuses_network_but_serves_cache(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes["/o.pth"] = Route()
    url = server.url + "/o.pth"
    monkeypatch.setenv("SRPLUG_OFFLINE", "1")
    with pytest.raises(DownloadError, match="SRPLUG_OFFLINE"):
        hub.download(url, sha256=PAYLOAD_SHA, cache_dir=tmp_path, progress=False)
    assert server.hits["/o.pth"] == 0
    assert leftovers(tmp_path) == []
    (tmp_path / "o.pth").write_bytes(PAYLOAD)
    assert hub.download(url, sha256=PAYLOAD_SHA, cache_dir=tmp_path) == tmp_path / "o.pth"
    monkeypatch.setenv("SRPLUG_OFFLINE", "0")
    assert not hub.is_offline()


def test_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "src" / "local.safetensors"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    monkeypatch.setenv("SRPLUG_OFFLINE", "1")  # file:// is not network
    cache = tmp_path / "cache"
    path = hub.download(source.as_uri(), sha256=PAYLOAD_SHA, cache_dir=cache, progress=False)
    assert path == cache / "local.safetensors" and path.read_bytes() == PAYLOAD
    with pytest.raises(DownloadError):
        hub.download(
            (tmp_path / "missing.pth").as_uri(), sha256=PAYLOAD_SHA, cache_dir=cache, progress=False
        )
    assert leftovers(cache) == ["local.safetensors"]


@pytest.mark.parametrize(
    ("url", "kwargs"),
    [
        ("ftp://example.com/a.pth", {}),
        ("/just/a/path.pth", {}),
        ("http://127.0.0.1/a.pth", {"sha256": "abc123"}),
        ("http://127.0.0.1/", {}),
        ("http://127.0.0.1/a.pth", {"filename": "../a.pth"}),
    ],
)
def test_invalid_arguments(url: str, kwargs: dict[str, str], tmp_path: Path) -> None:
    args = {"sha256": PAYLOAD_SHA, **kwargs}
    with pytest.raises(InputError):
        hub.download(url, cache_dir=tmp_path, progress=False, **args)
    assert leftovers(tmp_path) == []
