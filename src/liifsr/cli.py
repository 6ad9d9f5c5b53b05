"""The `liifsr` command line.

`COMMANDS` is the table of subcommands: each names the module that holds it, which offers
`configure_parser(parser)` (its options) and `run(args) -> int` (the command itself).
A module is imported only when its command runs, so that `liifsr --help` stays fast (it
never imports torch). Expected failures (bad input, missing files, too little memory)
print one line `liifsr: error: ...` and exit with status 2; nothing else is written.
Ctrl-C at any moment prints `liifsr: interrupted` (status 130) and SIGTERM `liifsr:
terminated` (143); both unwind like an exception, so temporary files are removed
(`liifsr.signals`, `liifsr.files.atomic_write`). Every command runs with freed memory
kept for reuse (`liifsr.allocator`).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

from liifsr import INTERRUPTED
from liifsr.allocator import keep_freed_memory
from liifsr.signals import Terminated, ctrl_c_held, sigterm_raises

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line help and the module that holds it (imported by `load`)."""

    help: str
    module: str

    def load(self) -> tuple[Configure, Run]:
        """The module's `configure_parser` and `run`, importing it (and so torch)."""
        module = importlib.import_module(self.module)
        return module.configure_parser, module.run


COMMANDS: dict[str, Command] = {
    "upscale": Command("upscale images to any scale or size", "liifsr.commands.upscale"),
    "convert": Command("convert an official LIIF .pth into a liifsr .safetensors file", "liifsr.commands.convert"),
    "train": Command("train a model from a YAML config", "liifsr.commands.train"),
    "evaluate": Command("PSNR/SSIM of models on benchmark or DIV2K folders", "liifsr.commands.evaluate"),
    "compare": Command("side-by-side crops of several models (the paper's Figures 5 and 6)", "liifsr.commands.compare"),
    "plot-log": Command("learning-rate and loss curves of training runs", "liifsr.commands.plot_log"),
    "data": Command("download DIV2K or the benchmark sets", "liifsr.commands.data"),
    "models": Command("list the bundled models and presets", "liifsr.commands.models"),
    "export": Command("export a model to ONNX (encoder and decoder graphs) for onnxruntime", "liifsr.commands.export"),
    "serve": Command("a local web page that zooms into images, decoding the visible tiles on demand", "liifsr.commands.serve"),
}


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
            # The objects imported so far (torch's, hundreds of thousands) live as long as the
            # process: out of the collector's sweeps, and out of the ones at exit, which took
            # 0.3 s of every command on the 2-core Xeon.
            gc.freeze()
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
