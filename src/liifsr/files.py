"""Output files: the one check of an output path and the one atomic writer.

Every file liifsr writes (images, figures, reports, logs, configs, checkpoints) goes
through :func:`atomic_write`: a temporary file in the destination folder, renamed into
place only when writing succeeded, so an interrupted or failed run never leaves a
partial file nor clobbers a previous good one. :func:`check_output_path` runs the same
destination checks up front, so a command fails before its expensive work, not after.

Problems surface as :class:`OutputError` with a one-line message that names the file,
the problem and the fix.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Container, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OutputError", "about", "atomic_write", "check_distinct_outputs", "check_output_path", "named_class", "one_line",
           "shown"]


class OutputError(ValueError):
    """An output path that cannot be written; the message says why and what to do."""


def one_line(text: object) -> str:
    """Collapse whitespace, so that third-party error texts cannot break the one-line rule."""
    return " ".join(str(text).split())


def shown(path: str | os.PathLike[str]) -> str:
    """`path` as printed in a line of output: as is, or quoted and escaped (repr) when it holds
    a newline or another character that would break the line or fake another."""
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def about(path: str | os.PathLike[str], message: str) -> str:
    """`message` in one line, led by `path` unless it names the path already (as is or quoted)."""
    message = one_line(message)
    text = os.fspath(path)
    named = (text.isprintable() and text in message) or repr(text) in message
    return message if named else f"{shown(path)}: {message}"


def output_error(path: str | os.PathLike[str], problem: str, fix: str, what: str = "") -> OutputError:
    """'cannot write [what ]'path': problem (fix)'; repr quotes and escapes the path."""
    label = f"{what} " if what else ""
    return OutputError(f"cannot write {label}{os.fspath(path)!r}: {one_line(problem)} ({fix})")


def check_output_path(
    path: str | os.PathLike[str], suffixes: Sequence[str] | None = None, what: str = ""
) -> Path:
    """Check that `path` can be written: an accepted extension (lower case, with the dot;
    None = any), not a folder, and a parent folder that exists and is writable."""
    dest = Path(path)
    if suffixes is not None:
        accepted = ", ".join(suffixes)
        if not dest.suffix:
            raise output_error(path, "output file name has no extension", f"add one of {accepted}", what)
        if dest.suffix.lower() not in suffixes:
            raise output_error(path, f"unsupported output format {dest.suffix.lower()!r}", f"use one of {accepted}", what)
    if dest.is_dir():
        raise output_error(path, "it is a directory", "give a file name, not a folder", what)
    parent = dest.parent
    if not parent.exists():
        raise output_error(path, f"directory {os.fspath(parent)!r} does not exist", "create it first", what)
    if not parent.is_dir():
        raise output_error(path, f"{os.fspath(parent)!r} is not a directory", "choose another output path", what)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise output_error(
            path, f"permission denied for directory {os.fspath(parent)!r}", "choose another location or fix its permissions", what
        )
    return dest


def check_distinct_outputs(jobs: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]]) -> None:
    """Refuse (input, output) pairs that would destroy data, before any work: an output
    that is one of the inputs (of any pair: no output of a run is read by it as an input),
    two outputs with one name (only the last would survive), or an output where another
    output needs a folder.

    Paths are compared after resolving links and `..`; an existing output is compared
    with the inputs by identity (device and inode), which also catches hard links. Each
    path is looked up in dicts, once: a collection of thousands of files is checked in
    about as many system calls, not in their square.
    """
    by_path: dict[Path, Path] = {}
    by_identity: dict[tuple[int, int], Path] = {}
    for source, _ in jobs:
        path = Path(source)
        by_path.setdefault(path.resolve(), path)
        identity = _identity(path)
        if identity is not None:
            by_identity.setdefault(identity, path)
    seen: dict[Path, Path] = {}
    for source, target in jobs:
        key = Path(target).resolve()
        identity = _identity(key)
        other = by_path.get(key) or (by_identity.get(identity) if identity is not None else None)
        if other is not None:
            raise output_error(target, f"it is the input {os.fspath(other)!r}",
                               "choose another output name or folder; liifsr never overwrites its inputs")
        if key in seen:
            raise output_error(target, f"inputs {os.fspath(seen[key])!r} and {os.fspath(source)!r} would both be written there",
                               "upscale them in separate runs or into separate folders")
        seen[key] = Path(source)
    folders = {parent: key for key in seen for parent in key.parents}
    clash = next((key for key in seen if key in folders), None)
    if clash is not None:
        raise output_error(clash, f"it is the output of {os.fspath(seen[clash])!r}, and also the folder of the output "
                           f"{os.fspath(folders[clash])!r}", "rename one of the inputs, or choose another --suffix")


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, None for a path that does not exist (yet)."""
    try:
        info = path.stat()
    except (OSError, ValueError):  # missing, unreadable, or a name the OS refuses (NUL)
        return None
    return info.st_dev, info.st_ino


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; move it into place only if the block succeeds.

    The temporary file lives in the destination folder (so `os.replace` is an atomic
    rename on the same file system) and keeps the extension, so writers that infer the
    format from the name still work. On any failure, KeyboardInterrupt included, it is
    removed and `path` is untouched. Unlike `NamedTemporaryFile` (always mode 0600) the
    file gets the usual umask-derived permissions, or those of the file it replaces, even
    when the writer recreates it with its own mode (safetensors writes 0600).
    SIGTERM cleans up the same way: `liifsr.cli` turns it into an exception.
    """
    dest = check_output_path(path)
    tmp = _create_temp_file(dest)
    try:
        umask_mode = stat.S_IMODE(tmp.stat().st_mode)
        yield tmp
        _set_mode(dest, tmp, umask_mode)
        _fsync(tmp)
        os.replace(tmp, dest)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if is_write_error(error):  # the writer's own words, with the file they are about
            raise output_error(dest, write_problem(error), write_fix(error)) from error
        raise


# Errors of writers that are not OSErrors but report one (safetensors writes in Rust and
# raises its own type, e.g. "No space left on device (os error 28)").
WRITER_ERRORS = (("safetensors._safetensors_rust", "SafetensorError"),)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def named_class(error: BaseException, names: Container[tuple[str, str]]) -> tuple[str, str] | None:
    """The (module, class name) in `names` of `error`'s class or the nearest of its bases,
    or None: a dependency's error type recognised without importing the dependency."""
    return next(((cls.__module__, cls.__qualname__) for cls in type(error).__mro__
                 if (cls.__module__, cls.__qualname__) in names), None)


def is_write_error(error: BaseException) -> bool:
    """Whether `error`, raised inside an atomic write, is the write failing (disk full, I/O
    error, a writer's own error type) rather than the work before it (which keeps its type)."""
    if isinstance(error, OutputError):
        return False
    if isinstance(error, OSError):
        return not isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError))
    return named_class(error, WRITER_ERRORS) is not None


def write_problem(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return one_line(error) or type(error).__name__


def write_fix(error: BaseException) -> str:
    text = str(error)
    full = (isinstance(error, OSError) and error.errno in _DISK_FULL) or "os error 28" in text or "No space left" in text
    if full:
        return "free some space on its disk, or write elsewhere, and run again; nothing was replaced"
    return "check the disk and the folder, and run again; nothing was replaced"


def _create_temp_file(dest: Path) -> Path:
    """An empty, hidden, uniquely named file beside `dest`.

    `os.open` with mode 0o666 lets the kernel apply the umask, so the final file gets
    normal permissions without touching the process-wide umask.
    """
    for _ in range(100):
        tmp = dest.with_name(f".{dest.stem}.{secrets.token_hex(4)}.tmp{dest.suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as error:
            raise output_error(dest, error.strerror or str(error), "choose another location") from None
        os.close(fd)
        return tmp
    raise output_error(dest, "could not create a temporary file", "clean up stray .tmp files")


def _set_mode(dest: Path, tmp: Path, umask_mode: int) -> None:
    """Keep the permissions of a file we overwrite, as a plain open('w') would; else the umask's."""
    try:
        mode = stat.S_IMODE(dest.stat().st_mode)
    except FileNotFoundError:
        mode = umask_mode
    if stat.S_IMODE(tmp.stat().st_mode) != mode:
        os.chmod(tmp, mode)


def _fsync(path: Path) -> None:
    """Flush to disk before the rename, so that a crash cannot leave an empty file in place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
