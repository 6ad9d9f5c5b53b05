"""`liifsr upscale`, `liifsr convert` and `liifsr models`: the inference commands."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from liifsr.checkpoint import DEFAULT_MODEL, MODEL_FACTS, bundled_models, convert_liif, load_model, read_metadata
from liifsr.config import MODEL_PRESETS
from liifsr.files import check_distinct_outputs, check_output_path
from liifsr.imageio import MAX_INPUT_PIXELS, LoadedImage, check_writable, read_image, write_image_bands
from liifsr.inference import (
    DEFAULT_CHUNK,
    MAX_OUTPUT_PIXELS,
    UpscaleError,
    check_options,
    check_output_size,
    output_size,
    resize_alpha,
    upscale_bands,
)
from liifsr.runtime import add_runtime_options, resolve_device, warn_if_slow


def parse_scale(text: str) -> tuple[float, float]:
    """'3.5' or 'SY,SX' -> (sy, sx); positive and finite."""
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"scale {text!r} is not a number or SY,SX pair") from None
    if len(values) not in (1, 2) or any(not math.isfinite(v) or v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"scale {text!r} must be one or two positive finite numbers (e.g. 3.5 or 2,3)")
    return (values[0], values[-1])


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W)."""
    height, sep, width = text.lower().partition("x")
    if not sep or not height.isdigit() or not width.isdigit() or int(height) == 0 or int(width) == 0:
        raise argparse.ArgumentTypeError(f"size {text!r} must look like HEIGHTxWIDTH with positive integers, e.g. 1080x1920")
    return int(height), int(width)


def configure_upscale_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="input image(s)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--scale", type=parse_scale, help="scale factor S, or SY,SX per axis")
    target.add_argument("--size", type=parse_size, help="output size HEIGHTxWIDTH")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", type=Path, help="output file (one input)")
    out.add_argument("--out-dir", type=Path, help="output folder (any number of inputs; names kept)")
    parser.add_argument("--model", default=None, help=f"bundled model name or model file (default: {DEFAULT_MODEL})")
    add_runtime_options(parser)
    parser.add_argument("--tile", type=int, default=None, help="LR tile size for the encoder (default: automatic)")
    parser.add_argument("--chunk", type=int, default=None, help=f"queries decoded at once (default: {DEFAULT_CHUNK})")
    parser.add_argument("--allow-huge", action="store_true",
                        help=f"allow outputs beyond {MAX_OUTPUT_PIXELS / 1e6:.0f} megapixels and inputs beyond "
                        f"{MAX_INPUT_PIXELS / 1e6:.0f} megapixels")


def output_path(source: Path, args: argparse.Namespace, bit_depth: int) -> Path:
    if args.output is not None:
        return args.output
    name = source.name if bit_depth == 8 else source.with_suffix(".png").name  # 16-bit needs PNG
    return args.out_dir / name


def run_upscale(args: argparse.Namespace) -> int:
    if args.output is not None and len(args.inputs) > 1:
        raise UpscaleError(f"-o takes one input but {len(args.inputs)} were given (use --out-dir DIR)")
    check_options(args.chunk, args.tile, args.precision)
    # Read and validate everything before the model runs, so errors come first and cheap
    # (check_writable also finds a missing --out-dir).
    jobs = []
    for source in args.inputs:
        image = read_image(source, max_pixels=None if args.allow_huge else MAX_INPUT_PIXELS)
        target = output_path(source, args, image.bit_depth)
        out_hw = output_size(image.rgb.shape[:2], args.scale, args.size)
        check_output_size(out_hw, args.allow_huge)
        check_writable(target, bit_depth=image.bit_depth, alpha=image.alpha is not None, size=out_hw)
        jobs.append((source, image, target, out_hw))
    check_distinct_outputs([(source, target) for source, _, target, _ in jobs])
    device = resolve_device(args.device)
    model = load_model(args.model, device=device)
    if args.precision != "fp32" and str(args.model).endswith(".onnx"):
        raise UpscaleError("exported ONNX models run in fp32 (drop --precision)")
    warn_if_slow(device, args.precision)
    for source, image, target, out_hw in jobs:
        bands = upscaled_bands(model, image, out_hw, args)
        write_image_bands(target, out_hw, bands, alpha=image.alpha is not None, grayscale=image.grayscale,
                          bit_depth=image.bit_depth)
        print(f"{source} -> {target} ({out_hw[0]}x{out_hw[1]}, HEIGHTxWIDTH)")
    return 0


def upscaled_bands(model, image: LoadedImage, out_hw: tuple[int, int], args: argparse.Namespace):
    """(rgb, alpha) float bands of the output, top to bottom; a bar on a terminal when slow."""
    lr = torch.from_numpy(image.rgb).permute(2, 0, 1).unsqueeze(0)
    for rows, rgb in upscale_bands(model, lr, out_hw, chunk_size=args.chunk, tile_size=args.tile,
                                   precision=args.precision, progress=None):
        alpha = None if image.alpha is None else resize_alpha(image.alpha, out_hw, rows)
        yield rgb.numpy(), alpha


def configure_convert_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="official LIIF checkpoint (.pth)")
    parser.add_argument("target", type=Path, help="output .safetensors file")


def run_convert(args: argparse.Namespace) -> int:
    check_output_path(args.target, (".safetensors",), "model")
    config = convert_liif(args.source, args.target)
    print(f"{args.source} -> {args.target} ({config.encoder.name}, {config.decoder.activation} MLP {config.decoder.hidden})")
    return 0


def configure_models_parser(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run_models(args: argparse.Namespace) -> int:
    del args
    print("bundled models (trained weights; their results: docs/results.md):")
    for name, path in sorted(bundled_models().items()):
        meta = read_metadata(path)
        print(f"  {name}{'  (default)' if name == DEFAULT_MODEL else ''}")
        for label, key in MODEL_FACTS.items():
            if key in meta:
                unit = " dB" if key.endswith("psnr") else ""
                value = f"{float(meta[key]):.2f}" if unit else meta[key]
                print(f"      {label}: {value}{unit}")
    print("presets (architectures for `liifsr train`):")
    for name in MODEL_PRESETS:
        print(f"  {name}")
    return 0
