"""Ctrl-C and SIGTERM for the command line (`liifsr.signals`)."""

import os
import signal

import pytest


def test_ctrl_c_during_the_imports_waits_for_them_to_finish():
    """A SIGINT inside `ctrl_c_held` lets the block run to its end, then raises KeyboardInterrupt."""
    from liifsr.signals import ctrl_c_held

    finished = False
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
            finished = True  # the rest of the block (the imports) still runs
    assert finished
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_held_keeps_an_ignored_sigint_ignored():
    """Background jobs (`liifsr ... &`) inherit an ignored SIGINT; holding it must not revive it."""
    from liifsr.signals import ctrl_c_held

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
