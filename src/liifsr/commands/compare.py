"""`liifsr compare`: side-by-side crops of several models, like the paper's Figures 5 and 6
(`liifsr.compare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from liifsr.commands.options import add_runtime_options
from liifsr.compare import DEFAULT_SCALE, FIGURE_FORMATS, Box, compare
from liifsr.degrade import SPEC_HELP


def parse_box(text: str) -> Box:
    """--box 'x,y,w,h' (left, top, width, height)."""
    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"bad --box {text!r}: give four whole numbers x,y,w,h (left, top, width, height)") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise ValueError(f"bad --box {text!r}: x and y must be >= 0, width and height >= 1")
    return Box(x, y, w, h)


def parse_models(text: str) -> list[str]:
    """--models 'A,B,...'."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("give at least one model with --models A,B,...")
    return names


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="the image (the HR, or with --lr-crop the source of the LR crop)")
    parser.add_argument("--models", required=True, help="comma-separated bundled names or model files (bicubic is always shown)")
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE, help=f"upscaling factor (default {DEFAULT_SCALE:g})")
    parser.add_argument("--box", required=True, help="region x,y,w,h in image pixels (the HR image's, by default)")
    parser.add_argument("-o", "--out", type=Path, required=True, help=f"figure file ({', '.join(FIGURE_FORMATS)})")
    parser.add_argument("--lr-crop", action="store_true", help="use the box of the image itself as the LR input (Figure 5)")
    parser.add_argument("--degrade", metavar="SPEC", help=f"degrade the LR input (every method's): {SPEC_HELP}")
    add_runtime_options(parser, automatic_precision=True)


def run(args: argparse.Namespace) -> int:
    dest = compare(args.image, parse_models(args.models), args.scale, parse_box(args.box), args.out, args.lr_crop,
                   args.device, args.precision, args.chunk, args.tile, degrade=args.degrade)
    print(dest)
    return 0
