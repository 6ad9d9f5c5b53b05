"""Resumable HTTP downloads with the standard library: a download goes to `<file>.part`; a
rerun asks the server for the rest (`Range: bytes=N-`) and appends when it answers 206, or
starts over when it answers 200 (a server without range support)."""

from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from liifsr.download.errors import DownloadError, interrupted
from liifsr.download.verify import CHUNK_SIZE, Hash, hash_file, verify
from liifsr.progress import progress_bar

TIMEOUT_S = 60.0
USER_AGENT = "liifsr-download (python urllib)"

# Errors that mean "the connection failed", as opposed to a bad file or a full
# disk: these keep the .part file so the next run can resume.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    urllib.error.URLError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
    ssl.SSLError,
)


def download_file(
    url: str,
    dest: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` resumably, verifying ``size``/``sha256`` when given.

    An existing ``dest`` is trusted (it only ever appears after verification)
    apart from a cheap size check.
    """
    dest = Path(dest)
    if dest.exists():
        _check_existing(dest, size)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = _fetch_to_part(url, part, dest.name, size, progress)
    verify(part, dest.name, size, sha256, digest)
    os.replace(part, dest)
    return dest


def _check_existing(dest: Path, size: int | None) -> None:
    actual = dest.stat().st_size
    if size is not None and actual != size:
        raise DownloadError(
            f"{dest} exists but has {actual} bytes, expected {size}; delete it and rerun"
        )


def _fetch_to_part(url: str, part: Path, name: str, size: int | None, progress: bool) -> Hash:
    """Bring ``part`` up to the full file and return the SHA-256 of all its bytes."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()  # longer than the real file: cannot be a prefix of it
        offset = 0
    if size is not None and offset == size:
        return hash_file(part)  # complete already; the verification decides
    try:
        response = _open(url, offset)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left after offset
            return hash_file(part)
        raise DownloadError(
            f"{name}: server answered HTTP {exc.code} {exc.reason} for {url}; check the URL or mirror"
        ) from None
    except _NETWORK_ERRORS as exc:
        raise interrupted(name, part, exc) from None
    with response:
        return _receive(response, part, name, offset, size, progress)


def _open(url: str, offset: int) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


def _receive(
    response: http.client.HTTPResponse,
    part: Path,
    name: str,
    offset: int,
    size: int | None,
    progress: bool,
) -> Hash:
    """Write the response body to ``part`` (appending on 206, restarting otherwise)."""
    if response.status == 206:
        start, total = _parse_content_range(response.headers.get("Content-Range", ""))
        if start != offset:
            raise DownloadError(
                f"{name}: server resumed at byte {start} instead of {offset}; "
                f"delete {part} and rerun"
            )
    else:
        offset = 0  # 200: the server ignored Range, so the body is the whole file
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
    if size is not None and total is not None and total != size:
        raise DownloadError(
            f"{name}: server reports {total} bytes, expected {size}; "
            "the mirror serves a different file (check base_url)"
        )
    digest = hash_file(part) if offset else hashlib.sha256()
    with part.open("ab" if offset else "wb") as sink, progress_bar(
        total=total if total is not None else size,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        enabled=None if progress else False,
    ) as bar:
        try:
            _stream(response, sink, digest, bar.update)
        except _NETWORK_ERRORS as exc:
            raise interrupted(name, part, exc) from None
    received = part.stat().st_size
    if total is not None and received < total:
        raise interrupted(name, part, f"connection closed after {received} of {total} bytes")
    return digest


def _stream(
    response: http.client.HTTPResponse,
    sink: BinaryIO,
    digest: Hash,
    advance: Callable[[int], object],
) -> None:
    while chunk := response.read(CHUNK_SIZE):
        sink.write(chunk)
        digest.update(chunk)
        advance(len(chunk))


def _parse_content_range(value: str) -> tuple[int, int | None]:
    """``bytes START-END/TOTAL`` -> (START, TOTAL or None when ``*``)."""
    try:
        unit, _, spec = value.strip().partition(" ")
        span, _, total = spec.partition("/")
        if unit != "bytes":
            raise ValueError(value)
        return int(span.split("-")[0]), None if total == "*" else int(total)
    except ValueError:
        raise DownloadError(f"server sent an unreadable Content-Range {value!r}") from None
