"""The authors' published files: names, URLs, hash prefixes, and fetching them (only from a
local HTTP server on 127.0.0.1)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from srplug_edsr import OFFICIAL, OfficialFile, fetch_official

import srplug
from srplug.errors import ChecksumError, DownloadError, InputError
from tests.plugins.edsr.reference import edsr_pytorch_forward, edsr_pytorch_state


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``(base URL, folder)``: an HTTP server on 127.0.0.1 serving the folder."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_official_table() -> None:
    assert set(OFFICIAL) == {
        "edsr_baseline_x2",
        "edsr_baseline_x3",
        "edsr_baseline_x4",
        "edsr_x2",
        "edsr_x3",
        "edsr_x4",
        "mdsr",
        "mdsr_baseline",
    }
    x4 = OFFICIAL["edsr_x4"]
    assert (x4.model, x4.scale, x4.sha256_prefix) == ("edsr", 4, "4f62e9ef")
    assert x4.url() == "https://cv.snu.ac.kr/research/EDSR/models/edsr_x4-4f62e9ef.pt"
    assert OFFICIAL["mdsr"].url().endswith("/mdsr-4a78bedf.pt")
    for entry in OFFICIAL.values():
        assert len(entry.sha256_prefix) == 8 and int(entry.sha256_prefix, 16) >= 0
        srplug.info(entry.model)  # every entry names a registered model


def _published_like(folder: Path, scale: int = 2) -> tuple[OfficialFile, dict]:
    """An EDSR-PyTorch-layout file named with its own hash prefix, as the authors name them."""
    state = edsr_pytorch_state(scale, 2, 16)
    tmp = folder / "tmp.pt"
    torch.save(state, tmp)
    prefix = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    name = f"edsr_baseline_x{scale}-{prefix}.pt"
    tmp.rename(folder / name)
    return OfficialFile("edsr-baseline", scale, name, OFFICIAL["edsr_baseline_x2"].card), state


def test_fetch_and_load(served: tuple[str, Path]) -> None:
    base, folder = served
    entry, state = _published_like(folder)
    path = fetch_official(entry, base_url=base, progress=False)
    assert path.parent == srplug.hub.weights_cache_dir() and path.name == entry.name
    up = srplug.get("edsr-baseline", weights=path)
    x = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        got = up.model.double()(x.double())
    assert (got - edsr_pytorch_forward(state, x, 2, 1.0)).abs().max().item() < 1e-5
    (folder / entry.name).unlink()  # the cached copy is used from now on
    assert fetch_official(entry, base_url=base, progress=False) == path


def test_wrong_hash_prefix_is_refused_and_deleted(served: tuple[str, Path]) -> None:
    base, folder = served
    entry, _ = _published_like(folder)
    wrong = "00000000" if entry.sha256_prefix != "00000000" else "11111111"
    renamed = entry.name.replace(entry.sha256_prefix, wrong)
    (folder / entry.name).rename(folder / renamed)
    bad = OfficialFile(entry.model, entry.scale, renamed, entry.card)
    with pytest.raises(ChecksumError, match=f"does not start with {wrong}"):
        fetch_official(bad, base_url=base, progress=False)
    assert not (srplug.hub.weights_cache_dir() / renamed).exists()


def test_missing_file_and_unknown_key(served: tuple[str, Path]) -> None:
    base, _ = served
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_official("edsr_x2", base_url=base, progress=False)
    with pytest.raises(InputError, match="no official EDSR/MDSR file 'edsr_x8'"):
        fetch_official("edsr_x8")
