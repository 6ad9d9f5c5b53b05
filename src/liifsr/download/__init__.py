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

The package: ``catalogue.py`` (the datasets and their archives), ``transfer.py``
(resumable HTTP), ``verify.py`` (size and SHA-256), ``archives.py`` (safe extraction),
and here the steps that join them for one dataset.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from liifsr.download.archives import extract_archive, marker_path
from liifsr.download.catalogue import DATASETS, DatasetSpec, FileRecord, select_parts
from liifsr.download.errors import DownloadError
from liifsr.download.transfer import download_file

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


def fetch_records(
    records: Sequence[FileRecord],
    root: Path,
    *,
    base_url: str | None = None,
    progress: bool = True,
) -> list[Path]:
    """Download and unpack each record; the table-free core of :func:`download_dataset`."""
    return [_fetch_record(record, Path(root), base_url, progress) for record in records]


def _fetch_record(record: FileRecord, root: Path, base_url: str | None, progress: bool) -> Path:
    target = root / record.provides
    dest = root / record.extract_to
    if marker_path(dest, record.name).exists() and target.exists():
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
    marker_path(dest, record.name).unlink(missing_ok=True)  # target was gone: redo
    extract_archive(archive, dest)
    if not target.exists():
        marker_path(dest, record.name).unlink(missing_ok=True)
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


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr)
