"""Ctrl-C and SIGTERM for the command line: SIGTERM raised as an exception (`Terminated`) so
that it unwinds and cleans up as Ctrl-C does, and Ctrl-C held while torch is imported
(`ctrl_c_held`). Imports no torch."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it unwinds (and cleans up) like Ctrl-C."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` in this process while the block runs.

    Forked children (DataLoader workers) inherit the handler; there it restores the
    default action and re-sends the signal, so they still die as SIGTERM intends.
    """
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    pid = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != pid:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Hold Ctrl-C while the block runs and raise KeyboardInterrupt after it, if one came.

    Importing torch runs C++ (pybind11) and embedded Python that a KeyboardInterrupt
    must not cross: there it aborts the process, gets swallowed, leaves a module half
    imported, or marks the interpreter to kill itself with SIGINT at exit whatever the
    exit status. A SIGINT that the parent shell ignores (`&` jobs) stays ignored.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt
