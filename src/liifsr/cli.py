"""The `liifsr` command line.

Each subcommand lives in the module that does the work: it exposes
`configure_parser(parser)` and `run(args) -> int`. Modules are imported lazily so that
`liifsr --help` stays fast. Expected failures (bad input, missing files) print one line
`liifsr: error: ...` and exit with status 2; nothing else is written.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
COMMANDS = {
    "upscale": ("liifsr.cli_upscale", "upscale images to any scale or size"),
    "convert": ("liifsr.cli_upscale", "convert an official LIIF .pth into a liifsr .safetensors file"),
    "train": ("liifsr.train", "train a model from a YAML config"),
    "evaluate": ("liifsr.evaluate", "PSNR/SSIM of models on benchmark or DIV2K folders"),
    "compare": ("liifsr.compare", "side-by-side crops of several models (the paper's Figures 5 and 6)"),
    "plot-log": ("liifsr.plotting", "learning-rate and loss curves of training runs"),
    "data": ("liifsr.download", "download DIV2K or the benchmark sets"),
    "models": ("liifsr.cli_upscale", "list the bundled models and presets"),
    "export": ("liifsr.onnx_export", "export a model to ONNX (encoder and decoder graphs) for onnxruntime"),
    "serve": ("liifsr.serve", "a local web page that zooms into images, decoding the visible tiles on demand"),
}

# Errors that are the user's to fix: reported in one line, without a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError)


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line that points to --help, instead of the full usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = OneLineParser(prog="liifsr", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # only import the module that will run
            module = importlib.import_module(module_name)
            configure = getattr(module, f"configure_{name.replace('-', '_')}_parser", None) or module.configure_parser
            configure(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    run = getattr(module, f"run_{args.command.replace('-', '_')}", None) or module.run
    try:
        return run(args) or 0
    except USER_ERRORS as error:
        message = " ".join(str(error).split())  # always one line
        print(f"liifsr: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("liifsr: interrupted", file=sys.stderr)
        return 130
