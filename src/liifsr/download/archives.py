"""Safe extraction of zip and tar archives: unpacked into a hidden staging folder next to the
target, members that would land outside it (absolute paths, `..`, links) or special files
refused up front, the result moved into place with renames, and a marker written last, so
that an interrupted extraction is simply redone."""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from liifsr.download.errors import DownloadError


def extract_archive(archive: Path, dest: Path) -> bool:
    """Unpack a zip or tar ``archive`` into ``dest``; False if it already was.

    Extraction happens in a staging folder inside ``dest`` (same file system,
    so the final moves are renames); the marker is written only at the end.
    """
    archive, dest = Path(archive), Path(dest)
    marker = marker_path(dest, archive.name)
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


def marker_path(dest: Path, archive_name: str) -> Path:
    """The file whose presence says `archive_name` is fully unpacked in `dest`."""
    return dest / f".{archive_name}.extracted"


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
