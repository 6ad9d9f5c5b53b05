"""`liifsr train CONFIG --out DIR`: the command, its options and the run folder's lock."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import torch
import torch.distributed as dist

from liifsr.config import load_yaml
from liifsr.runtime import add_runtime_options, check_precision
from liifsr.training.config import TrainConfig, TrainError, check_config
from liifsr.training.distributed import init_distributed
from liifsr.training.loop import LOCK, train


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML training config (see configs/)")
    parser.add_argument("--out", required=True, help="run folder for checkpoints and logs")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optim.lr=2e-4 (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in OUT from its last checkpoint (starts afresh if OUT has none)")
    add_runtime_options(parser, overrides_config=True)
    parser.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    parser.add_argument("--workers", type=int, help="DataLoader workers per process (overrides num_workers)")
    parser.add_argument("--threads", type=int, help="CPU threads per process (overrides threads; 0 = all cores)")


def load_train_config(args: argparse.Namespace) -> TrainConfig:
    config = load_yaml(TrainConfig, args.config, args.overrides)
    cli = {"precision": args.precision, "compile": args.compile, "device": args.device, "val_chunk": args.chunk,
           "val_tile": args.tile,
           "num_workers": args.workers, "threads": args.threads}
    config = replace(config, **{key: value for key, value in cli.items() if value is not None})
    check_config(config)
    return config


def run(args: argparse.Namespace) -> int:
    config = load_train_config(args)
    check_out(Path(args.out))
    if config.threads:
        torch.set_num_threads(config.threads)
    env = init_distributed(config.device)
    if env.is_main:
        check_precision(env.device, config.precision)
    try:
        with hold_run_folder(Path(args.out)) if env.is_main else contextlib.nullcontext():
            train(config, Path(args.out), env, resume=args.resume)
        if env.world_size > 1:
            dist.barrier()  # leave together: tearing gloo down while a peer still talks can abort it
    finally:
        if env.world_size > 1:
            dist.destroy_process_group()
    return 0




@contextlib.contextmanager
def hold_run_folder(out: Path) -> Iterator[None]:
    """Own run folder `out` while the block runs: an OS lock (flock) on `out/.liifsr-train.lock`,
    so that a second `liifsr train --out` into it (with or without --resume) is refused
    instead of mixing two runs' checkpoints and logs. The OS releases the lock on any exit,
    SIGKILL included, so a lock left by a killed run is no obstacle. Where the OS has no
    flock (Windows), runs are not locked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    with open_lock(out / LOCK) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            raise TrainError(f"run folder {str(out)!r} is in use by a running `liifsr train` ({owner}); wait for it "
                             "to finish or stop it, or train into another --out") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        yield


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


def check_out(out: Path) -> None:
    """The run folder must be a folder (or not exist yet, inside an existing one)."""
    if out.exists() and not out.is_dir():
        raise TrainError(f"--out {str(out)!r} is a file, not a folder (give a new or existing run folder)")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise TrainError(f"--out {str(out)!r}: {str(parent)!r} is a file, not a folder")
