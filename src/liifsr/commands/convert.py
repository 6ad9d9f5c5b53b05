"""`liifsr convert`: an official LIIF checkpoint (.pth) as a liifsr .safetensors model file."""

from __future__ import annotations

import argparse
from pathlib import Path

from liifsr.checkpoint import convert_liif
from liifsr.files import check_output_path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="official LIIF checkpoint (.pth)")
    parser.add_argument("target", type=Path, help="output .safetensors file")


def run(args: argparse.Namespace) -> int:
    check_output_path(args.target, (".safetensors",), "model")
    config = convert_liif(args.source, args.target)
    print(f"{args.source} -> {args.target} ({config.describe()})")
    return 0
