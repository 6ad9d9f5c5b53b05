"""The C library's memory allocator, tuned for decoding and training (`keep_freed_memory`):
every command runs with it. Imports no torch."""

from __future__ import annotations

import ctypes
import os


def glibc() -> bool:
    """Whether this process runs on glibc (asked of the C library itself; no file is read)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, OSError, ValueError):  # no confstr (Windows), or a libc without the name (musl, macOS)
        return False


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse, for the rest of the process.

    Decoding and training allocate and free the same 1-32 MiB blocks many times a
    second. By default glibc gives such blocks back to the system (unmapped, or trimmed
    off the heap), and each reuse then pays a page fault per 4 KiB and the kernel's
    zeroing (tests/test_allocator.py counts them). Served from the heap (blocks up to 32 MiB),
    the heap grown 64 MiB at a time and trimmed only past 1 GiB of free space, they are
    reused instead; the process keeps its peak memory rather than giving it back. Every
    command runs with this; returns whether it applied (not off glibc).
    """
    if not glibc():  # mallopt's option numbers are glibc's own: musl, macOS and Windows are left alone
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError, TypeError, ValueError):  # no C library to open, or no mallopt in it
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h
    settings = {M_MMAP_THRESHOLD: 32 * 2**20, M_TRIM_THRESHOLD: 2**30, M_TOP_PAD: 64 * 2**20}
    return all(mallopt(option, value) == 1 for option, value in settings.items())
