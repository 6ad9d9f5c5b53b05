"""The `liifsr` command line.

`COMMANDS` is the table of subcommands: each names the function that adds its options
to a parser and the function that runs it. Those live in the module that does the
work and are imported only when their command runs, so that `liifsr --help` stays
fast (it never imports torch). Expected failures (bad input, missing files, too
little memory) print one line `liifsr: error: ...` and exit with status 2; nothing
else is written. Ctrl-C at any moment prints `liifsr: interrupted` (status 130) and
SIGTERM `liifsr: terminated` (143); both unwind like an exception, so temporary files
are removed (`liifsr.files.atomic_write`).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from liifsr import INTERRUPTED

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


def _upscale() -> tuple[Configure, Run]:
    from liifsr.cli_upscale import configure_upscale_parser, run_upscale

    return configure_upscale_parser, run_upscale


def _convert() -> tuple[Configure, Run]:
    from liifsr.cli_upscale import configure_convert_parser, run_convert

    return configure_convert_parser, run_convert


def _models() -> tuple[Configure, Run]:
    from liifsr.cli_upscale import configure_models_parser, run_models

    return configure_models_parser, run_models


def _train() -> tuple[Configure, Run]:
    from liifsr.training.cli import configure_parser, run

    return configure_parser, run


def _evaluate() -> tuple[Configure, Run]:
    from liifsr.evaluation.cli import configure_parser, run

    return configure_parser, run


def _compare() -> tuple[Configure, Run]:
    from liifsr.compare import configure_parser, run

    return configure_parser, run


def _plot_log() -> tuple[Configure, Run]:
    from liifsr.plotting import configure_parser, run

    return configure_parser, run


def _data() -> tuple[Configure, Run]:
    from liifsr.download import configure_data_parser, run_data

    return configure_data_parser, run_data


def _export() -> tuple[Configure, Run]:
    from liifsr.onnx_export import configure_parser, run

    return configure_parser, run


def _serve() -> tuple[Configure, Run]:
    from liifsr.serve import configure_parser, run

    return configure_parser, run


@dataclass(frozen=True)
class Command:
    help: str
    load: Callable[[], tuple[Configure, Run]]  # imports the command's module


COMMANDS: dict[str, Command] = {
    "upscale": Command("upscale images to any scale or size", _upscale),
    "convert": Command("convert an official LIIF .pth into a liifsr .safetensors file", _convert),
    "train": Command("train a model from a YAML config", _train),
    "evaluate": Command("PSNR/SSIM of models on benchmark or DIV2K folders", _evaluate),
    "compare": Command("side-by-side crops of several models (the paper's Figures 5 and 6)", _compare),
    "plot-log": Command("learning-rate and loss curves of training runs", _plot_log),
    "data": Command("download DIV2K or the benchmark sets", _data),
    "models": Command("list the bundled models and presets", _models),
    "export": Command("export a model to ONNX (encoder and decoder graphs) for onnxruntime", _export),
    "serve": Command("a local web page that zooms into images, decoding the visible tiles on demand", _serve),
}

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


def glibc() -> bool:
    """Whether this process runs on glibc (asked of the C library itself; no file is read)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (AttributeError, OSError, ValueError):  # no confstr (Windows), or a libc without the name (musl, macOS)
        return False


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse, for the rest of the process.

    Decoding and training allocate and free the same 1-32 MiB blocks many times a
    second. By default glibc gives such blocks back to the system (unmapped, or trimmed
    off the heap), and each reuse then pays a page fault per 4 KiB and the kernel's
    zeroing (tests/test_cli.py counts them). Served from the heap (blocks up to 32 MiB),
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


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line that points to --help, instead of the full usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, Run | None]:
    """The parser, and the run function of the command `argv` names (None if it names none).

    Only that command's module is imported and only its options are added.
    """
    parser = OneLineParser(prog="liifsr", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    run = None
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        if name == wanted:
            configure, run = command.load()
            configure(sub)
    return parser, run


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        with sigterm_raises():
            with ctrl_c_held():
                parser, run = build_parser(argv)  # imports the command's module (and torch)
            args = parser.parse_args(argv)
            assert run is not None  # parse_args exits unless argv named a command
            keep_freed_memory()
            return run(args) or 0
    except BrokenPipeError:
        # The reader of our output left (`liifsr models | head`): stop quietly, as a pipe
        # writer killed by SIGPIPE would; stdout goes to /dev/null so the flush at exit is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except Terminated:
        print("liifsr: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as error:
        from liifsr.errors import error_message  # here: `liifsr --help` imports no more than it needs

        message = error_message(error)
        if message is None:
            raise
        return _error(message)


def _error(text: str) -> int:
    if "tqdm" in sys.modules:  # a bar may still be on the screen
        from liifsr.progress import close_all

        close_all()
    message = " ".join(text.split())  # always one line
    print(f"liifsr: error: {message}", file=sys.stderr)
    return 2
