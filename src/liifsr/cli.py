"""The `liifsr` command line.

`COMMANDS` is the table of subcommands: each names the function that adds its options
to a parser and the function that runs it. Those live in the module that does the
work and are imported only when their command runs, so that `liifsr --help` stays
fast (it never imports torch). Expected failures (bad input, missing files) print one
line `liifsr: error: ...` and exit with status 2; nothing else is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

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
    from liifsr.train import configure_parser, run

    return configure_parser, run


def _evaluate() -> tuple[Configure, Run]:
    from liifsr.evaluate import configure_parser, run

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

# Errors that are the user's to fix: reported in one line, without a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError)


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
    parser, run = build_parser(argv)
    args = parser.parse_args(argv)
    assert run is not None  # parse_args exits unless argv named a command
    try:
        return run(args) or 0
    except USER_ERRORS as error:
        message = " ".join(str(error).split())  # always one line
        print(f"liifsr: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("liifsr: interrupted", file=sys.stderr)
        return 130
