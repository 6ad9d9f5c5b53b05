"""A training run's folder: checked before the run, made and locked while it runs.

`hold_run_folder` owns the folder for the length of a run (an OS lock on `LOCK`, so that
two `liifsr train --out` into one folder are refused), and leaves a folder that a failed
start wrote nothing into as it was found. `liifsr train` (`liifsr.commands.train`) holds it
around `training.loop.train`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from liifsr.training.config import TrainError
from liifsr.training.loop import LOCK


def check_out(out: Path) -> None:
    """The run folder must be a folder (or not exist yet, inside an existing one)."""
    if out.exists() and not out.is_dir():
        raise TrainError(f"--out {str(out)!r} is a file, not a folder (give a new or existing run folder)")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise TrainError(f"--out {str(out)!r}: {str(parent)!r} is a file, not a folder")


# The fds of the run-folder locks this process holds (`lock_run_folder`), for `_drop_inherited_locks`.
_HELD_LOCK_FDS: set[int] = set()


def _drop_inherited_locks() -> None:
    """In a forked child (a DataLoader worker): point its copies of the held locks' fds at
    /dev/null. A flock belongs to the open file, which fork shares, so a worker that
    outlived a SIGKILLed run would keep its folder locked. (Closing the fd would leave the
    child's file object to close that number again, whatever it names by then; LOCK_UN
    would unlock the parent too.)"""
    if not _HELD_LOCK_FDS:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in _HELD_LOCK_FDS:
            os.dup2(null, fd, inheritable=False)
    finally:
        os.close(null)
    _HELD_LOCK_FDS.clear()


if hasattr(os, "register_at_fork"):  # POSIX: every os.fork, multiprocessing's included
    os.register_at_fork(after_in_child=_drop_inherited_locks)


@contextlib.contextmanager
def hold_run_folder(out: Path) -> Iterator[None]:
    """Own run folder `out` (made if missing) while the block runs (`lock_run_folder`). A
    block that fails before anything was written into the folder leaves it as it was
    found: the lock removed if this made it, the folders this made removed, and a folder
    the user made kept."""
    made = make_folders(out)
    lock = out / LOCK
    lock_made, found = not os.path.lexists(lock), entries(out)
    try:
        with lock_run_folder(out):
            try:
                yield
            except BaseException:
                # Nothing of the run's was written: unlinked while held, so that no other run has it meanwhile.
                if lock_made and found is not None and entries(out) == found | {LOCK}:
                    lock.unlink(missing_ok=True)
                raise
    except BaseException:
        remove_empty(made)
        raise


def make_folders(out: Path) -> list[Path]:
    """Make folder `out` and its missing parents; returns the folders made, deepest first."""
    missing, folder = [], out.absolute()
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    out.mkdir(parents=True, exist_ok=True)
    return missing


def entries(folder: Path) -> set[str] | None:
    """The names in `folder` (None if it cannot be listed)."""
    try:
        return {entry.name for entry in folder.iterdir()}
    except OSError:
        return None


def remove_empty(folders: list[Path]) -> None:
    """Remove these folders, deepest first, up to the first that is not empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


@contextlib.contextmanager
def lock_run_folder(out: Path) -> Iterator[None]:
    """An OS lock (flock) on `out/.liifsr-train.lock` while the block runs, so that a second
    `liifsr train --out` into it (with or without --resume) is refused instead of mixing
    two runs' checkpoints and logs. The lock is this process's alone (forked children drop
    their copies, `_drop_inherited_locks`), and the OS releases it on any exit, SIGKILL
    included, so a lock left by a killed run is no obstacle. Where the OS has no flock
    (Windows), runs are not locked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open_lock(out / LOCK) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            raise TrainError(f"run folder {str(out)!r} is in use by a running `liifsr train` ({owner}); wait for it "
                             "to finish or stop it, or train into another --out") from None
        _HELD_LOCK_FDS.add(lock.fileno())
        try:
            lock.seek(0)
            lock.truncate()
            lock.write(f"pid {os.getpid()}")
            lock.flush()
            yield
        finally:
            _HELD_LOCK_FDS.discard(lock.fileno())


def open_lock(path: Path) -> TextIO:
    """The lock file, opened for reading and writing without following a link: its pid is
    written into it, and a link (or a hard link) would have that write land in another
    file. Anything but a plain file of its own there is refused, naming it."""
    fix = "remove it, or train into another --out"
    try:  # O_NONBLOCK: a FIFO put there does not hold the open
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW met a link (EMLINK: FreeBSD's word for it)
            raise TrainError(f"the run folder's lock {str(path)!r} is a symbolic link; liifsr writes its lock "
                             f"there itself and does not follow links ({fix})") from None
        raise TrainError(f"cannot open the run folder's lock {str(path)!r}: {error.strerror or error} ({fix})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "has other hard links" if stat.S_ISREG(info.st_mode) else "is not a regular file"
        raise TrainError(f"the run folder's lock {str(path)!r} {what}; liifsr writes its lock there itself ({fix})")
    os.set_blocking(fd, True)
    return open(fd, "r+")

