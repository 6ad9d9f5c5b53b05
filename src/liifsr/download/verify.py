"""The checks of a downloaded file: its SHA-256 (computed while it streams in, the resumed
prefix hashed from disk first) and its size, before the `.part` file gets its final name."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Protocol

from liifsr.download.errors import DownloadError, interrupted

CHUNK_SIZE = 1 << 20  # bytes read at a time, from the network or the disk


class Hash(Protocol):
    """A running digest (hashlib's)."""

    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def hash_file(path: Path) -> Hash:
    """The SHA-256 of a file's bytes so far (more can be added to it)."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest


def verify(part: Path, name: str, size: int | None, sha256: str | None, digest: Hash) -> None:
    """Check the finished ``part``; delete it when it cannot be the right file."""
    actual = part.stat().st_size
    if size is not None and actual < size:
        raise interrupted(name, part, f"only {actual} of {size} bytes received")
    if size is not None and actual > size:
        part.unlink()
        raise DownloadError(
            f"{name}: size mismatch, expected {size} bytes, got {actual}; the file was deleted, "
            "rerun to download it again"
        )
    got = digest.hexdigest()
    if sha256 is None:
        warnings.warn(
            f"{name}: no published SHA-256 to verify against ({actual} bytes, "
            f"{'size checked' if size is not None else 'size unknown'}); computed sha256={got}",
            stacklevel=3,
        )
        return
    if got != sha256.lower():
        part.unlink()
        raise DownloadError(
            f"{name}: SHA-256 mismatch, expected {sha256}, got {got}; the corrupt download was "
            "deleted, rerun to fetch it again (if it persists, the server's file has changed)"
        )
