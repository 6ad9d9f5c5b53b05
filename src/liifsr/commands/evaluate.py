"""`liifsr evaluate`: PSNR, SSIM and edge width of models on benchmark or DIV2K folders (`liifsr.evaluation`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from liifsr.commands.options import add_runtime_options
from liifsr.degrade import SPEC_HELP
from liifsr.evaluation.datasets import DEFAULT_SCALES, PROTOCOL_CHOICES, parse_degrade, parse_scales
from liifsr.evaluation.loop import evaluate
from liifsr.evaluation.reports import check_report_path, format_markdown, write_report


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", dest="models", action="extend", nargs="+", required=True, metavar="M",
        help="bundled model name, .safetensors/.pth file, or 'bicubic' (repeatable)",
    )
    parser.add_argument(
        "--dataset", dest="datasets", action="extend", nargs="+", required=True, type=Path, metavar="DIR",
        help="a benchmark set (HR/, optionally LR_bicubic/X{s}/) or DIV2K (DIV2K_valid_HR/, "
        "optionally DIV2K_valid_LR_bicubic/X{s}/), as `liifsr data download` lays them out (repeatable)",
    )
    parser.add_argument("--scales", default=DEFAULT_SCALES, help=f"comma-separated whole scales (default {DEFAULT_SCALES})")
    parser.add_argument(
        "--protocol", choices=PROTOCOL_CHOICES, default="auto",
        help="benchmark: Y, shave scale; div2k: RGB, shave scale+6; auto (default): div2k for DIV2K's "
        "layout and folders named *div2k*, else benchmark (printed for every dataset)",
    )
    parser.add_argument(
        "--degrade", metavar="SPEC",
        help=f"degrade every LR input (bicubic's too), the same per image for every model: {SPEC_HELP}; "
        "the reports name it (default: clean)",
    )
    parser.add_argument("--out", type=Path, help="write the report to FILE.md, .csv or .json (JSON also holds the "
                        "per-image scores; Markdown is always printed)")
    add_runtime_options(parser)
    parser.add_argument("--images", type=int, metavar="N",
                        help="score N images of each dataset, spread evenly over its sorted list (default: all)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars nor protocol lines on stderr")


def run(args: argparse.Namespace) -> int:
    scales = parse_scales(args.scales)
    parse_degrade(args.degrade)  # a bad chain is a one-line error before any work
    if args.images is not None and args.images < 1:
        raise ValueError(f"bad --images {args.images}: give a number of images >= 1")
    if args.out is not None:
        check_report_path(args.out)  # before hours of evaluation, not after
    records = evaluate(args.models, args.datasets, scales, args.protocol, args.device, progress=not args.quiet,
                       precision=args.precision, images=args.images, chunk_size=args.chunk, tile_size=args.tile,
                       degrade=args.degrade)
    if args.out is not None:
        write_report(records, args.out)
    print(format_markdown(records), end="")
    return 0
