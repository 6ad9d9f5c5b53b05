"""Download, verify and unpack the DIV2K and SR-benchmark datasets.

``liifsr data download div2k|benchmark DIR`` ends up in :func:`download_dataset`.
Everything is fetched from the official hosts (or a mirror given as
``base_url``) with the standard library only, so that a flaky multi-GiB
download can be resumed instead of restarted.

Resulting layout under ``DIR`` (the same as the archives' own layout, which
is what the LIIF/EDSR configs expect)::

    DIR/
      downloads/                        the archives themselves (safe to delete
        DIV2K_train_HR.zip              once unpacked; they are not re-fetched
        DIV2K_train_HR.zip.part         while the unpacked data is present)
        benchmark.tar                   <- .part = interrupted download, resumed
      DIV2K/
        DIV2K_train_HR/0001.png ... 0800.png
        DIV2K_valid_HR/0801.png ... 0900.png
        DIV2K_train_LR_bicubic/X2/0001x2.png ...   (also X3/, X4/)
        DIV2K_valid_LR_bicubic/X2/0801x2.png ...   (also X3/, X4/)
        .DIV2K_train_HR.zip.extracted   marker: this archive is fully unpacked
      benchmark/
        Set5/HR/baby.png
        Set5/LR_bicubic/X2/babyx2.png ...          (also X3/, X4/)
        Set14/  B100/  Urban100/                   (same structure)
      .benchmark.tar.extracted

Guarantees, and why:

* A download goes to ``<file>.part``; a rerun asks the server for the rest
  (``Range: bytes=N-``) and appends when it answers 206, or starts over when
  it answers 200 (server without range support).
* The SHA-256 is computed while streaming (the resumed prefix is hashed from
  disk first), and the size and hash are checked *before* the ``.part`` is
  renamed, so a final file name always means "verified".  Where no hash is
  published, the computed one is reported in a warning instead.
* Archives are unpacked into a hidden staging folder next to the target,
  members escaping it are rejected up front, and the result is moved into
  place with renames; the ``.extracted`` marker is written last, so an
  interrupted extraction is simply redone.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import ssl
import sys
import tarfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import BinaryIO, Protocol

from liifsr.progress import progress_bar

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "DownloadError",
    "FileRecord",
    "download_dataset",
    "download_file",
    "extract_archive",
    "fetch_records",
    "select_parts",
]

ARCHIVE_DIR = "downloads"
CHUNK_SIZE = 1 << 20
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


class DownloadError(RuntimeError):
    """A download or extraction failed; the message is one line saying what to do."""


@dataclass(frozen=True)
class FileRecord:
    """One downloadable archive and where its content lands.

    ``size``/``sha256`` are ``None`` when no published value was found; the
    file is then checked as far as possible and the computed hash reported.
    ``extract_to`` and ``provides`` are relative to the download root:
    the archive is unpacked into ``extract_to`` and must then contain
    ``provides`` (which is what :func:`download_dataset` returns).
    """

    name: str
    url: str
    size: int | None
    sha256: str | None
    part: str
    extract_to: str
    provides: str


@dataclass(frozen=True)
class DatasetSpec:
    """The archives of one dataset and which of them a plain download fetches."""

    files: tuple[FileRecord, ...]
    default_parts: tuple[str, ...]

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(record.part for record in self.files)


# --------------------------------------------------------------------------
# Official sources.
# --------------------------------------------------------------------------

_DIV2K_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"


def _div2k(name: str, size: int, sha256: str, part: str, provides: str) -> FileRecord:
    return FileRecord(name, _DIV2K_URL + name, size, sha256, part, "DIV2K", "DIV2K/" + provides)


# Sizes and SHA-256 of the DIV2K zips: tensorflow/datasets,
# tensorflow_datasets/datasets/div2k/checksums.tsv (formerly
# tensorflow_datasets/url_checksums/div2k.txt), which pins exactly these URLs.
_DIV2K_FILES = (
    _div2k("DIV2K_train_HR.zip", 3530603713,
           "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
           "train_hr", "DIV2K_train_HR"),
    _div2k("DIV2K_valid_HR.zip", 448993893,
           "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
           "valid_hr", "DIV2K_valid_HR"),
    _div2k("DIV2K_train_LR_bicubic_X2.zip", 925390592,
           "a53a424317575838dadce4bcd97cf7b744d6855f43740ed5f0245af3cf4bd850",
           "train_lr_x2", "DIV2K_train_LR_bicubic/X2"),
    _div2k("DIV2K_train_LR_bicubic_X3.zip", 427847282,
           "ad5c8e5507e2765823d3c2c5bd0934842efcd487c5370604c224090898b3163a",
           "train_lr_x3", "DIV2K_train_LR_bicubic/X3"),
    _div2k("DIV2K_train_LR_bicubic_X4.zip", 246914039,
           "f006b837f4eb52b82909aa01478e6d6d199eefce932179491d0c9dbb706dde3a",
           "train_lr_x4", "DIV2K_train_LR_bicubic/X4"),
    _div2k("DIV2K_valid_LR_bicubic_X2.zip", 117763600,
           "60eed9875c697df51204aa579e2a699e1d5215095788a097ff54dd17e2664d57",
           "valid_lr_x2", "DIV2K_valid_LR_bicubic/X2"),
    _div2k("DIV2K_valid_LR_bicubic_X3.zip", 54513392,
           "04b9a2ed3b4a0715d3924d3ae8514830c3328fac8d30512ce716d6f419e052a3",
           "valid_lr_x3", "DIV2K_valid_LR_bicubic/X3"),
    _div2k("DIV2K_valid_LR_bicubic_X4.zip", 31505881,
           "a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553",
           "valid_lr_x4", "DIV2K_valid_LR_bicubic/X4"),
)

# The EDSR authors publish no checksum for benchmark.tar.  Size and SHA-256
# below come from a third-party project that pins and checks them:
# github.com/YeapJieShen/single-image-super-resolution,
# tests/reference/fetch_urban100.py and tests/utils/test_imresize.py
# ("SHA-256 ... (250112000-byte archive)"); 250 MB matches the size other
# READMEs quote for this tar.
_BENCHMARK_FILES = (
    FileRecord(
        name="benchmark.tar",
        url="https://cv.snu.ac.kr/research/EDSR/benchmark.tar",
        size=250112000,
        sha256="80c21c333bbf6ceb5308b7243761f8284478274413a97b96f1d63e9045fd93e8",
        part="benchmark",
        extract_to=".",  # the tar already holds a top-level benchmark/ folder
        provides="benchmark",
    ),
)

DATASETS: Mapping[str, DatasetSpec] = MappingProxyType({
    "div2k": DatasetSpec(
        files=_DIV2K_FILES,
        default_parts=("train_hr", "valid_hr", "valid_lr_x2", "valid_lr_x3", "valid_lr_x4"),
    ),
    "benchmark": DatasetSpec(files=_BENCHMARK_FILES, default_parts=("benchmark",)),
})


# --------------------------------------------------------------------------
# Public entry points.
# --------------------------------------------------------------------------


def download_dataset(
    name: str,
    root: Path,
    *,
    base_url: str | None = None,
    parts: list[str] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Fetch, verify and unpack the chosen parts of dataset ``name`` into ``root``.

    ``parts`` defaults to the dataset's ``default_parts``; ``base_url`` is a
    mirror holding the archives under their file names (``base_url/<name>``).
    Returns the unpacked folders, one per part, in table order.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    check_root(Path(root))
    records = select_parts(DATASETS[name], parts)
    return fetch_records(records, Path(root), base_url=base_url, progress=progress)


def check_root(root: Path) -> None:
    """The download folder must be a folder, or not exist yet below folders."""
    for path in (root, *root.absolute().parents):
        if path.exists():
            if not path.is_dir():
                raise ValueError(f"cannot download into {str(root)!r}: {str(path)!r} is a file, not a folder "
                                 "(give a folder)")
            return


def select_parts(spec: DatasetSpec, parts: Sequence[str] | None) -> list[FileRecord]:
    """The records for ``parts`` (default parts if ``None``), rejecting unknown names."""
    wanted = spec.default_parts if parts is None else tuple(parts)
    unknown = sorted(set(wanted) - set(spec.parts))
    if unknown:
        raise ValueError(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(spec.parts)}")
    return [record for record in spec.files if record.part in wanted]


def fetch_records(
    records: Sequence[FileRecord],
    root: Path,
    *,
    base_url: str | None = None,
    progress: bool = True,
) -> list[Path]:
    """Download and unpack each record; the table-free core of :func:`download_dataset`."""
    return [_fetch_record(record, Path(root), base_url, progress) for record in records]


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
    _verify(part, dest.name, size, sha256, digest)
    os.replace(part, dest)
    return dest


def extract_archive(archive: Path, dest: Path) -> bool:
    """Unpack a zip or tar ``archive`` into ``dest``; False if it already was.

    Extraction happens in a staging folder inside ``dest`` (same file system,
    so the final moves are renames); the marker is written only at the end.
    """
    archive, dest = Path(archive), Path(dest)
    marker = _marker_path(dest, archive.name)
    if marker.exists():
        return False
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / f".{archive.name}.extracting"
    shutil.rmtree(staging, ignore_errors=True)  # leftovers of an interrupted run
    staging.mkdir()
    try:
        _unpack(archive, staging)
        _merge_tree(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(f"{archive.name}\n")
    return True


# --------------------------------------------------------------------------
# One record: skip, download, unpack.
# --------------------------------------------------------------------------


def _fetch_record(record: FileRecord, root: Path, base_url: str | None, progress: bool) -> Path:
    target = root / record.provides
    dest = root / record.extract_to
    if _marker_path(dest, record.name).exists() and target.exists():
        _say(progress, f"{record.name}: already unpacked in {target}")
        return target
    archive = download_file(
        _resolve_url(record, base_url),
        root / ARCHIVE_DIR / record.name,
        size=record.size,
        sha256=record.sha256,
        progress=progress,
    )
    _say(progress, f"{record.name}: unpacking into {dest}")
    _marker_path(dest, record.name).unlink(missing_ok=True)  # target was gone: redo
    extract_archive(archive, dest)
    if not target.exists():
        _marker_path(dest, record.name).unlink(missing_ok=True)
        raise DownloadError(
            f"{record.name} was unpacked but {target} is missing; the archive layout is not the "
            "expected one (wrong mirror?)"
        )
    return target


def _resolve_url(record: FileRecord, base_url: str | None) -> str:
    """Official URL, or the same file name under a mirror."""
    if base_url is None:
        return record.url
    return base_url.rstrip("/") + "/" + record.name


def _marker_path(dest: Path, archive_name: str) -> Path:
    return dest / f".{archive_name}.extracted"


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr)


# --------------------------------------------------------------------------
# Resumable HTTP download.
# --------------------------------------------------------------------------


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def _check_existing(dest: Path, size: int | None) -> None:
    actual = dest.stat().st_size
    if size is not None and actual != size:
        raise DownloadError(
            f"{dest} exists but has {actual} bytes, expected {size}; delete it and rerun"
        )


def _fetch_to_part(url: str, part: Path, name: str, size: int | None, progress: bool) -> _Hash:
    """Bring ``part`` up to the full file and return the SHA-256 of all its bytes."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()  # longer than the real file: cannot be a prefix of it
        offset = 0
    if size is not None and offset == size:
        return _hash_file(part)  # complete already; the verification decides
    try:
        response = _open(url, offset)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left after offset
            return _hash_file(part)
        raise DownloadError(
            f"{name}: server answered HTTP {exc.code} {exc.reason} for {url}; check the URL or mirror"
        ) from None
    except _NETWORK_ERRORS as exc:
        raise _interrupted(name, part, exc) from None
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
) -> _Hash:
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
    digest = _hash_file(part) if offset else hashlib.sha256()
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
            raise _interrupted(name, part, exc) from None
    received = part.stat().st_size
    if total is not None and received < total:
        raise _interrupted(name, part, f"connection closed after {received} of {total} bytes")
    return digest


def _stream(
    response: http.client.HTTPResponse,
    sink: BinaryIO,
    digest: _Hash,
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


def _hash_file(path: Path) -> _Hash:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest


def _interrupted(name: str, part: Path, reason: object) -> DownloadError:
    kept = part.stat().st_size if part.exists() else 0
    if kept:
        return DownloadError(
            f"download of {name} interrupted ({reason}); the partial file {part} ({kept} bytes) "
            "is kept, rerun the same command to resume"
        )
    return DownloadError(f"download of {name} failed ({reason}); nothing was saved, rerun to retry")


def _verify(part: Path, name: str, size: int | None, sha256: str | None, digest: _Hash) -> None:
    """Check the finished ``part``; delete it when it cannot be the right file."""
    actual = part.stat().st_size
    if size is not None and actual < size:
        raise _interrupted(name, part, f"only {actual} of {size} bytes received")
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


# --------------------------------------------------------------------------
# Safe extraction.
# --------------------------------------------------------------------------


def _unpack(archive: Path, staging: Path) -> None:
    """Dispatch on content, not suffix; unreadable archives become one-line errors."""
    try:
        if zipfile.is_zipfile(archive):
            _unpack_zip(archive, staging)
        elif tarfile.is_tarfile(archive):
            _unpack_tar(archive, staging)
        else:
            raise DownloadError(f"{archive} is neither a zip nor a tar archive; delete it and rerun")
    except (zipfile.BadZipFile, tarfile.ReadError, EOFError) as exc:
        raise DownloadError(f"{archive} is corrupt ({exc}); delete it and rerun") from None


def _unpack_zip(archive: Path, staging: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            _safe_target(staging, member, archive.name)
        zf.extractall(staging)


def _unpack_tar(archive: Path, staging: Path) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for member in members:
            _check_tar_member(staging, member, archive.name)
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12
            tf.extractall(staging, members=members, filter="data")
        else:
            tf.extractall(staging, members=members)


def _check_tar_member(staging: Path, member: tarfile.TarInfo, archive_name: str) -> None:
    _safe_target(staging, member.name, archive_name)
    if member.issym():
        _safe_target(staging, str(PurePosixPath(member.name).parent / member.linkname), archive_name)
    elif member.islnk():
        _safe_target(staging, member.linkname, archive_name)
    elif not (member.isfile() or member.isdir()):
        raise DownloadError(f"{archive_name}: refusing to extract special file {member.name!r}")


def _safe_target(staging: Path, member: str, archive_name: str) -> Path:
    """Where ``member`` would land, or an error if that is outside ``staging``."""
    pure = PurePosixPath(member.replace("\\", "/"))
    if pure.is_absolute() or (pure.parts and ":" in pure.parts[0]):  # /x, C:x
        raise DownloadError(f"{archive_name}: refusing to extract {member!r}: absolute path")
    root = staging.resolve()
    target = (root / pure).resolve()
    if not target.is_relative_to(root):
        raise DownloadError(
            f"{archive_name}: refusing to extract {member!r}: it would land outside {staging}"
        )
    return target


def _merge_tree(src: Path, dst: Path) -> None:
    """Move ``src``'s entries into ``dst``, descending only where both have a folder.

    Several archives share a parent (DIV2K_train_LR_bicubic/X2, /X3, ...), so
    a plain rename of the staging folder would clobber siblings.
    """
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir() and not target.is_symlink():
            _merge_tree(entry, target)
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)


# --------------------------------------------------------------------------
# command line: `liifsr data download NAME DIR`


def configure_data_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    download = actions.add_parser("download", help="download and unpack a dataset (resumable)")
    download.add_argument("name", choices=sorted(DATASETS), help="which dataset")
    download.add_argument("root", type=Path, metavar="DIR", help="folder to download and unpack into")
    download.add_argument("--parts", default=None, help="comma-separated parts (default: the dataset's usual ones)")
    download.add_argument("--mirror", default=None, help="base URL of a mirror holding the same files")


def run_data(args: argparse.Namespace) -> int:
    parts = args.parts.split(",") if args.parts else None
    try:
        folders = download_dataset(args.name, args.root, base_url=args.mirror, parts=parts)
    except DownloadError as error:  # network and checksum problems are the user's to act on
        raise ValueError(str(error)) from None
    for folder in folders:
        print(folder)
    return 0
