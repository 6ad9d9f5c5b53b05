"""`liifsr upscale`, `liifsr convert` and `liifsr models`: the inference commands."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING


from liifsr.checkpoint import convert_liif
from liifsr.zoo import DEFAULT_MODEL, list_models, load_model
from liifsr.models import MODEL_PRESETS
from liifsr.files import about, check_distinct_outputs, check_output_path
from liifsr.imageio import MAX_INPUT_PIXELS, LoadedImage, check_writable, collect_images, read_image, write_image_bands
from liifsr.checks import Fit, MAX_OUTPUT_PIXELS, UpscaleError, check_options, check_output_size, output_size
from liifsr.inference import upscale_image_bands
from liifsr.progress import progress_bar
from liifsr.runtime import add_runtime_options, check_precision, launched_ranks, resolve_device

if TYPE_CHECKING:
    from liifsr.models import ImplicitModel
    from liifsr.onnx_runtime import OnnxLIIF


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


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number of pixels")
    return int(text)


def quality(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"quality {text!r} must be a whole number from 1 to 100")
    return int(text)


OUTPUT_EXTENSIONS = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tiff"}


def configure_upscale_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IN",
                        help="input images, or folders of them (searched recursively; the tree is mirrored under --out-dir)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--scale", type=parse_scale, help="scale factor S, or SY,SX per axis")
    target.add_argument("--size", type=parse_size, help="output size HEIGHTxWIDTH")
    target.add_argument("--long-side", type=positive_int, metavar="N", help="the output's long side N pixels, aspect kept")
    target.add_argument("--short-side", type=positive_int, metavar="N", help="the output's short side N pixels, aspect kept")
    target.add_argument("--fit", type=parse_size, metavar="HEIGHTxWIDTH",
                        help="the largest output within HEIGHTxWIDTH, aspect kept")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", type=Path, help="output file (one input)")
    out.add_argument("--out-dir", type=Path, help="output folder (any number of inputs and folders; names kept)")
    parser.add_argument("--ext", choices=sorted(OUTPUT_EXTENSIONS), help="output format with --out-dir (default: the input's)")
    parser.add_argument("--quality", type=quality, help="1-100: lossy JPEG or WebP at that quality (default: JPEG 95, WebP lossless)")
    parser.add_argument("--suffix", default="", help="added to each output name before its extension, e.g. _x4")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip inputs whose output exists (complete: liifsr writes atomically), to resume a run")
    parser.add_argument("--model", default=None, help=f"bundled model name or model file (default: {DEFAULT_MODEL})")
    add_runtime_options(parser)
    parser.add_argument("--allow-huge", action="store_true",
                        help=f"allow outputs beyond {MAX_OUTPUT_PIXELS / 1e6:.0f} megapixels and inputs beyond "
                        f"{MAX_INPUT_PIXELS / 1e6:.0f} megapixels")


def target_size(args: argparse.Namespace) -> tuple[int, int] | Fit | None:
    """The `size` argument of `inference.output_size` that the options ask for."""
    if args.long_side is not None:
        return Fit(long_side=args.long_side)
    if args.short_side is not None:
        return Fit(short_side=args.short_side)
    if args.fit is not None:
        return Fit(box=args.fit)
    return args.size


def output_path(source: Path, relative: Path, args: argparse.Namespace, bit_depth: int) -> Path:
    """Where `source` (at `relative` inside its input folder, or its name) is written."""
    if args.output is not None:
        return args.output
    extension = OUTPUT_EXTENSIONS[args.ext] if args.ext else source.suffix
    if bit_depth == 16 and not args.ext:
        extension = ".png"  # 16-bit needs PNG
    return args.out_dir / relative.parent / f"{relative.stem}{args.suffix}{extension}"


def run_upscale(args: argparse.Namespace) -> int:
    if args.output is not None and (len(args.inputs) > 1 or args.inputs[0].is_dir()):
        raise UpscaleError("-o takes one input file (use --out-dir DIR for several, or for folders)")
    if args.output is not None and (args.ext or args.suffix):
        raise UpscaleError("--ext and --suffix name outputs in --out-dir (with -o, name the file itself)")
    check_options(args.chunk, args.tile)
    if len(args.inputs) > 1 or args.inputs[0].is_dir() or launched_ranks()[1] > 1:
        return run_collection(args)
    # Read and validate everything before the model runs, so errors come first and cheap
    # (check_writable also finds a missing --out-dir).
    (source,) = args.inputs
    planned = args.output or output_path(source, Path(source.name), args, 8)
    if args.skip_existing and planned.exists():
        print(f"{source} -> {planned}: exists, skipped (--skip-existing)")
        return 0
    image, target, out_hw = prepare(source, Path(source.name), args)
    check_distinct_outputs([(source, target)])
    model = load_for(args)
    upscale_one(model, source, image, target, out_hw, args)
    return 0


def prepare(source: Path, relative: Path, args: argparse.Namespace) -> tuple[LoadedImage, Path, tuple[int, int]]:
    """Read `source` and check its output (size, format, destination) before any work."""
    image = read_image(source, max_pixels=None if args.allow_huge else MAX_INPUT_PIXELS)
    target = output_path(source, relative, args, image.bit_depth)
    out_hw = output_size(image.rgb.shape[:2], args.scale, target_size(args))
    check_output_size(out_hw, args.allow_huge)
    check_writable(target, bit_depth=written_depth(image, target), alpha=image.alpha is not None, size=out_hw)
    return image, target, out_hw


def written_depth(image: LoadedImage, target: Path) -> int:
    """16-bit where the format holds it (PNG), else 8-bit."""
    return image.bit_depth if target.suffix.lower() == ".png" else 8


def load_for(args: argparse.Namespace) -> ImplicitModel | OnnxLIIF:
    device = resolve_device(args.device, launched_ranks()[2])
    model = load_model(args.model, device=device)
    if args.precision not in model.precisions:
        raise UpscaleError(f"this model runs in {', '.join(model.precisions)} only, not {args.precision} (an exported "
                           "ONNX model runs in fp32: drop --precision)")
    check_precision(device, args.precision)
    return model


def upscale_one(model: ImplicitModel | OnnxLIIF, source: Path, image: LoadedImage, target: Path, out_hw: tuple[int, int], args: argparse.Namespace) -> None:
    bands = upscale_image_bands(model, image, out_hw, chunk_size=args.chunk, tile_size=args.tile,
                                precision=args.precision, progress=None)
    write_image_bands(target, out_hw, bands, alpha=image.alpha is not None, grayscale=image.grayscale,
                      bit_depth=written_depth(image, target), quality=args.quality)
    print(f"{source} -> {target} ({out_hw[0]}x{out_hw[1]}, HEIGHTxWIDTH)")


def run_collection(args: argparse.Namespace) -> int:
    """Several inputs or folders: every image is done in turn; one that fails (unreadable,
    too large, unwritable) is reported in one line naming it and skipped, and the run goes
    on. Status 2 if any failed. With --skip-existing, outputs already there are skipped.

    Under torchrun each of the N processes takes every N-th file of the sorted list (a
    split that depends on the list alone, not on timing), on its own device (cuda:LOCAL_RANK
    for --device cuda or auto with GPUs); no process waits for another."""
    from liifsr.errors import error_message

    rank, world, _ = launched_ranks()
    inputs = collect_images(args.inputs)
    # Names are known before the files are read, except a 16-bit input's (PNG): planned as read.
    planned = [(source, output_path(source, relative, args, 8)) for source, relative in inputs]
    check_distinct_outputs(planned)
    inputs, planned = inputs[rank::world], planned[rank::world]
    model = load_for(args)
    counts, start = {"done": 0, "skipped": 0, "failed": 0}, time.perf_counter()
    bar = progress_bar(total=len(inputs), desc="files" if world == 1 else f"files (rank {rank} of {world})", unit="file",
                       enabled=None if rank == 0 else False)
    for (source, relative), (_, planned_target) in zip(inputs, planned):
        if args.skip_existing and planned_target.exists():
            counts["skipped"] += 1
        else:
            try:
                planned_target.parent.mkdir(parents=True, exist_ok=True)  # the mirrored tree
                image, target, out_hw = prepare(source, relative, args)
                if args.skip_existing and target.exists():
                    counts["skipped"] += 1
                else:
                    upscale_one(model, source, image, target, out_hw, args)
                    counts["done"] += 1
            except Exception as error:
                message = error_message(error)
                if message is None:
                    raise
                bar.write(f"liifsr upscale: failed: {about(source, message)}", file=sys.stderr)
                counts["failed"] += 1
        bar.update()
    bar.close()
    who = "" if world == 1 else f" (rank {rank} of {world})"
    print(f"liifsr upscale{who}: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed, "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 2 if counts["failed"] else 0


def configure_convert_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="official LIIF checkpoint (.pth)")
    parser.add_argument("target", type=Path, help="output .safetensors file")


def run_convert(args: argparse.Namespace) -> int:
    check_output_path(args.target, (".safetensors",), "model")
    config = convert_liif(args.source, args.target)
    print(f"{args.source} -> {args.target} ({config.describe()})")
    return 0


def configure_models_parser(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run_models(args: argparse.Namespace) -> int:
    del args
    print("bundled models (trained weights; their results: docs/results.md):")
    for card in list_models():
        print(f"  {card.name}{'  (default)' if card.name == DEFAULT_MODEL else ''}")
        for line in card.lines():
            print(f"      {line}")
    print("presets (architectures for `liifsr train`):")
    for name, config in MODEL_PRESETS.items():
        print(f"  {name}: {config.describe()}")
    return 0
