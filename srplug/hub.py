"""Downloading weights files into a local cache.

Files land in :func:`weights_cache_dir` (``$SRPLUG_HOME/weights``, by default
``~/.cache/srplug/weights``). A download streams into a uniquely named temporary file beside
its final place, is hashed while it streams, is checked against the expected sha256 and is
then renamed into place atomically, so the final path never holds a partial file, even when
two processes fetch the same file at once. Set ``SRPLUG_OFFLINE=1`` to forbid network access:
files already in the cache still resolve.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from tqdm import tqdm

from srplug.atomic import atomic_open
from srplug.errors import ChecksumError, DownloadError, InputError

__all__ = [
    "OFFLINE_ENV",
    "download",
    "filename_from_url",
    "home_dir",
    "is_offline",
    "normalize_sha256",
    "sha256_file",
    "weights_cache_dir",
]

HOME_ENV = "SRPLUG_HOME"
OFFLINE_ENV = "SRPLUG_OFFLINE"

_SCHEMES = ("http", "https", "file")
_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_USER_AGENT = "srplug (+https://pypi.org/project/srplug/)"

logger = logging.getLogger(__name__)


def home_dir() -> Path:
    """srplug's data folder: ``$SRPLUG_HOME`` if set, else ``~/.cache/srplug``."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "srplug"


def weights_cache_dir() -> Path:
    """The folder downloaded weights are cached in: ``home_dir() / "weights"``."""
    return home_dir() / "weights"


def is_offline() -> bool:
    """Whether ``SRPLUG_OFFLINE`` is set to a true value (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The lowercase hex sha256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def normalize_sha256(value: str) -> str:
    """``value`` as 64 lowercase hex digits; :class:`InputError` if it is not a sha256."""
    if not isinstance(value, str) or not _SHA256_RE.fullmatch(value.strip().lower()):
        raise InputError(
            f"invalid sha256 {value!r}: expected 64 hex digits, as printed by `sha256sum FILE`"
        )
    return value.strip().lower()


def download(
    url: str,
    *,
    sha256: str | None,
    filename: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    timeout: float = 30,
) -> Path:
    """Download ``url`` into the cache (once) and return the local path.

    A cached file is reused when its sha256 matches (or when ``sha256`` is None); a cached file
    with the wrong hash is downloaded again. ``filename`` names the cached file (default: the
    last part of the URL path); ``cache_dir`` defaults to :func:`weights_cache_dir`.
    ``timeout`` is in seconds and applies to each network operation. Raises
    :class:`DownloadError` when the file cannot be fetched, :class:`ChecksumError` when the
    fetched file has the wrong hash; nothing is left behind in either case.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise InputError(
            f"cannot download {url!r}: only http://, https:// and file:// URLs are supported; "
            "download the file yourself and pass weights=PATH"
        )
    expected = normalize_sha256(sha256) if sha256 is not None else None
    name = filename if filename is not None else filename_from_url(url)
    _check_filename(name, url)
    directory = Path(cache_dir) if cache_dir is not None else weights_cache_dir()
    target = directory / name

    if target.is_file():
        if expected is None:
            return target
        actual = sha256_file(target)
        if actual == expected:
            return target
        logger.warning(
            "cached %s has sha256 %s, expected %s; downloading it again", target, actual, expected
        )

    if scheme != "file" and is_offline():
        raise DownloadError(
            f"not downloading {url}: {OFFLINE_ENV} is set, so srplug does not use the network. "
            f"Unset {OFFLINE_ENV}, or download the file on another machine and either place it "
            f"at {target} or pass weights=PATH"
        )

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create the cache folder {directory} to download {url}: {exc}. "
            f"Set {HOME_ENV} to a writable folder, or download the file manually and pass "
            "weights=PATH"
        ) from exc

    return _download_to(url, target, expected=expected, progress=progress, timeout=timeout)


def _download_to(
    url: str, target: Path, *, expected: str | None, progress: bool, timeout: float
) -> Path:
    """Stream ``url`` to a temp file beside ``target``, verify it, rename it into place."""
    try:
        try:
            with atomic_open(target) as out:
                actual = _fetch(url, out, target, timeout=timeout, progress=progress)
                if expected is not None and actual != expected:
                    raise ChecksumError(
                        f"sha256 mismatch for {url}: expected {expected}, got {actual}. The file "
                        "on the server differs from the one srplug expects (corrupted transfer "
                        "or a changed file); retry, or download it manually, check it and pass "
                        "weights=PATH"
                    )
        except PermissionError:
            # Windows refuses to replace a file another process holds open; if that process
            # put the same verified file there, our copy is not needed.
            if expected is None or not target.is_file() or sha256_file(target) != expected:
                raise
    except (DownloadError, ChecksumError, KeyboardInterrupt):
        raise
    except urllib.error.HTTPError as exc:
        exc.close()
        raise _download_error(url, target, f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        what = (
            "cannot read the file" if url.lower().startswith("file:") else "cannot reach the server"
        )
        raise _download_error(url, target, f"{what} ({exc.reason})") from exc
    except TimeoutError as exc:
        raise _download_error(url, target, f"no data for {timeout} s ({exc})") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise _download_error(url, target, reason) from exc
    return target


def _fetch(url: str, out: BinaryIO, target: Path, *, timeout: float, progress: bool) -> str:
    """Write the body of ``url`` to ``out``; return its sha256; check its length."""
    request = urllib.request.Request(
        url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    )
    digest = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = _content_length(response.headers.get("Content-Length"))
        with tqdm(
            total=total,
            desc=target.name,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            disable=not progress,
            leave=False,
        ) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise _download_error(
            url, target, f"the connection closed after {received} of {total} bytes"
        )
    return digest.hexdigest()


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


def filename_from_url(url: str) -> str:
    """The file name a URL points to (its last path part); :class:`InputError` if none."""
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    if not name:
        raise InputError(f"cannot tell a file name from the URL {url!r}: pass filename=")
    return name


def _check_filename(name: str, url: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise InputError(
            f"invalid cache file name {name!r} for {url}: pass a plain file name as filename="
        )


def _download_error(url: str, target: Path, reason: str) -> DownloadError:
    return DownloadError(
        f"could not download {url}: {reason}. Check the URL and your connection and retry, "
        f"or download the file manually and either place it at {target} or pass weights=PATH"
    )
