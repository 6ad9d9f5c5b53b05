"""`liifsr plot-log RUN_DIR [RUN_DIR ...] -o curves.png`: learning-rate and loss curves of
training runs (`liifsr.plotting`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from liifsr.plotting import plot_curves, read_curves, unique_names


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (or their log.csv files)")
    parser.add_argument("-o", "--output", default="curves.png", help="image to write (default: curves.png)")


def run(args: argparse.Namespace) -> int:
    runs = [Path(r) for r in args.runs]
    curves = [read_curves(run, name) for run, name in zip(runs, unique_names(runs))]
    path = plot_curves(curves, args.output)
    print(f"wrote {path}")
    return 0
