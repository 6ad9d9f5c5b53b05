"""`liifsr upscale`: images, or folders of them, to any scale or size; under torchrun the
processes share the inputs. Every input is read and every output planned and checked
before the model runs."""

from __future__ import annotations

import argparse
import os
import stat
import sys
import time
from pathlib import Path

from liifsr.checks import MAX_OUTPUT_PIXELS, Fit, UpscaleError, check_output_size, check_scale, output_size
from liifsr.commands.options import add_runtime_options
from liifsr.decoding import DecodeOptions, OpenedModel, open_model
from liifsr.files import about, check_distinct_outputs, shown
from liifsr.imageio import MAX_INPUT_PIXELS, Found, LoadedImage, check_writable, find_inputs, probe_bit_depth, read_image, write_image_bands
from liifsr.inference import upscale_image_bands
from liifsr.progress import progress_bar
from liifsr.runtime import launched_ranks, resolve_device
from liifsr.zoo import DEFAULT_MODEL, PHOTO_MODEL


def parse_scale(text: str) -> tuple[float, float]:
    """'3.5' or 'SY,SX' -> (sy, sx); positive and finite (`checks.check_scale`)."""
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"scale {text!r} is not a number or SY,SX pair") from None
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"scale {text!r} must be one or two numbers (e.g. 3.5 or 2,3)")
    try:
        checked = [check_scale(value) for value in values]
    except UpscaleError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return (checked[0], checked[-1])


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


def name_suffix(text: str) -> str:
    """A --suffix: text added to file names, so never a path (no separator, no '..', no NUL)."""
    separators = {"/", os.sep, os.altsep or "/"}
    if any(sep in text for sep in separators) or ".." in text or "\0" in text:
        raise argparse.ArgumentTypeError(f"suffix {text!r} must be plain text added to each file name, without "
                                         "'/', '..' or NUL (e.g. _x4): outputs stay inside --out-dir")
    return text


OUTPUT_EXTENSIONS = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tiff"}


def configure_parser(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--suffix", type=name_suffix, default="",
                        help="added to each output name before its extension, e.g. _x4 (no '/' or '..')")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip inputs whose output exists as a non-empty file (complete: liifsr writes atomically), "
                        "to resume a run")
    parser.add_argument("--model", default=None, help=f"bundled model name or model file (default: {DEFAULT_MODEL}, for clean images; "
                        f"'--model photo' ({PHOTO_MODEL}) for JPEG, noisy or blurred photographs)")
    add_runtime_options(parser, automatic_precision=True)
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


def plan_outputs(found: list[Found], args: argparse.Namespace) -> list[Path]:
    """The output of every input, checked before any work: inside --out-dir, an --out-dir
    that is a folder outside the input folders, and no output that is an input or shared
    by two inputs (after the format choice and the suffix; `check_distinct_outputs`).

    A 16-bit input is written as PNG: its depth is read from its header here, so that its
    output's name is known (and checked) before the model runs."""
    def depth(item: Found) -> int:  # only where it can change the name: no --ext, a non-PNG input
        skip = args.output is not None or args.ext or item.path.suffix.lower() == ".png"
        return 8 if skip else probe_bit_depth(item.path)

    targets = [output_path(item.path, item.relative, args, depth(item)) for item in found]
    if args.out_dir is not None:
        check_out_dir(args.out_dir, found)
        inside = args.out_dir.resolve()
        for target in targets:
            if not target.resolve().is_relative_to(inside):  # e.g. through a link in --out-dir
                raise UpscaleError(f"output {os.fspath(target)!r} would be written outside --out-dir "
                                   f"{os.fspath(args.out_dir)!r} (at {os.fspath(target.resolve())!r}): remove the link "
                                   "that leads there, or choose another --out-dir")
    check_distinct_outputs(list(zip((item.path for item in found), targets)))
    return targets


def check_out_dir(out_dir: Path, found: list[Found]) -> None:
    """--out-dir must be a folder (or not exist yet) and lie outside every input folder:
    inside one, its outputs would be listed as inputs by the next run."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UpscaleError(f"--out-dir {os.fspath(out_dir)!r} is a file, not a folder (give a new or existing folder)")
    real = out_dir.resolve()
    for folder in dict.fromkeys(item.folder for item in found if item.folder is not None):
        if real.is_relative_to(folder.resolve()):
            raise UpscaleError(f"--out-dir {os.fspath(out_dir)!r} is inside the input folder {os.fspath(folder)!r}: its "
                               f"outputs would be read as inputs by a later run (choose an --out-dir outside it)")


def is_done(target: Path) -> bool:
    """Whether `target` is an output a previous run finished (for --skip-existing): a
    non-empty regular file, complete since liifsr writes atomically. An empty file or a
    folder there is no output of liifsr's, so it is not counted as done."""
    try:
        info = target.stat()
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size > 0


def run(args: argparse.Namespace) -> int:
    if args.output is not None and (len(args.inputs) > 1 or args.inputs[0].is_dir()):
        raise UpscaleError("-o takes one input file (use --out-dir DIR for several, or for folders)")
    if args.output is not None and (args.ext or args.suffix):
        raise UpscaleError("--ext and --suffix name outputs in --out-dir (with -o, name the file itself)")
    _, world, _ = launched_ranks()
    if args.output is not None and world > 1:
        raise UpscaleError(f"-o writes one file, but RANK and WORLD_SIZE ask for {world} processes to share the inputs "
                           "(run it without torchrun, or unset RANK and WORLD_SIZE if they were left in this shell)")
    if len(args.inputs) > 1 or args.inputs[0].is_dir() or world > 1:
        return run_collection(args)
    # Read and validate everything before the model runs, so errors come first and cheap
    # (check_writable also finds a missing --out-dir).
    found = find_inputs(args.inputs)
    (planned,) = plan_outputs(found, args)
    (item,) = found
    if args.skip_existing and is_done(planned):
        print(f"{shown(item.path)} -> {shown(planned)}: exists, skipped (--skip-existing)")
        return 0
    image, target, out_hw = prepare(item, planned, args)
    opened = open_for(args)
    upscale_one(opened, item.path, image, target, out_hw, args)
    return 0


def prepare(item: Found, planned: Path, args: argparse.Namespace) -> tuple[LoadedImage, Path, tuple[int, int]]:
    """Read `item` and check its output (size, format, destination) before any work. The file
    is read where it was listed (no link out of its folder, `read_image`'s `inside`), and
    must give the output planned for it: one that changed since would escape the checks."""
    image = read_image(item.path, max_pixels=None if args.allow_huge else MAX_INPUT_PIXELS, inside=item.folder)
    target = output_path(item.path, item.relative, args, image.bit_depth)
    if target != planned:
        raise UpscaleError(f"{os.fspath(item.path)!r} changed since it was listed (its output is now "
                           f"{os.fspath(target)!r}, not {os.fspath(planned)!r}): run again")
    out_hw = output_size(image.rgb.shape[:2], args.scale, target_size(args))
    check_output_size(out_hw, args.allow_huge)
    check_writable(target, bit_depth=written_depth(image, target), alpha=image.alpha is not None, size=out_hw)
    return image, target, out_hw


def written_depth(image: LoadedImage, target: Path) -> int:
    """16-bit where the format holds it (PNG), else 8-bit."""
    return image.bit_depth if target.suffix.lower() == ".png" else 8


def open_for(args: argparse.Namespace) -> OpenedModel:
    """--model on --device (under torchrun, plain cuda is this process's GPU), in --precision
    ('auto' resolved once: what runs, for every image)."""
    return open_model(args.model, resolve_device(args.device, launched_ranks()[2]), args.precision)


def upscale_one(opened: OpenedModel, source: Path, image: LoadedImage, target: Path, out_hw: tuple[int, int],
                args: argparse.Namespace) -> None:
    decoding = DecodeOptions(chunk=args.chunk, tile=args.tile, precision=opened.precision, progress=None)
    bands = upscale_image_bands(opened.model, image, out_hw, decoding)
    write_image_bands(target, out_hw, bands, alpha=image.alpha is not None, grayscale=image.grayscale,
                      bit_depth=written_depth(image, target), quality=args.quality)
    print(f"{shown(source)} -> {shown(target)} ({out_hw[0]}x{out_hw[1]}, HEIGHTxWIDTH)")


def run_collection(args: argparse.Namespace) -> int:
    """Several inputs or folders: every output is planned and checked first (`plan_outputs`),
    then every image is done in turn; one that fails (unreadable, too large, unwritable) is
    reported in one line naming it and skipped, and the run goes on. Status 2 if any
    failed. With --skip-existing, outputs already there are skipped. Interrupted, the
    summary says how many were left, and the interruption goes on up (status 130).

    Under torchrun each of the N processes takes every N-th file of the sorted list (a
    split that depends on the list alone, not on timing), on its own device (cuda:LOCAL_RANK
    for --device cuda or auto with GPUs); no process waits for another."""
    from liifsr.errors import error_message

    rank, world, _ = launched_ranks()
    found = find_inputs(args.inputs)
    planned = plan_outputs(found, args)  # every process checks the whole list, alike
    found, planned = found[rank::world], planned[rank::world]
    out_dir = args.out_dir.resolve()  # where the checks found it, whatever links change later
    opened = open_for(args)
    counts, start = {"done": 0, "skipped": 0, "failed": 0}, time.perf_counter()
    who = "" if world == 1 else f" (rank {rank} of {world})"
    bar = progress_bar(total=len(found), desc="files" if world == 1 else f"files (rank {rank} of {world})", unit="file",
                       enabled=None if rank == 0 else False)
    try:
        for item, target in zip(found, planned):
            if args.skip_existing and is_done(target):
                counts["skipped"] += 1
            else:
                try:
                    check_still_inside(target, out_dir, args.out_dir)
                    target.parent.mkdir(parents=True, exist_ok=True)  # the mirrored tree
                    image, target, out_hw = prepare(item, target, args)
                    upscale_one(opened, item.path, image, target, out_hw, args)
                    counts["done"] += 1
                except Exception as error:
                    message = error_message(error)
                    if message is None:
                        raise
                    bar.write(f"liifsr upscale: failed: {about(item.path, message)}", file=sys.stderr)
                    counts["failed"] += 1
            bar.update()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (liifsr.cli): say what is left, then stop
        bar.close()
        left = len(found) - sum(counts.values())
        print(f"liifsr upscale{who}: {summary(counts, start, left)} (stopped: run again with --skip-existing to do the "
              "rest)", file=sys.stderr)
        raise
    bar.close()
    print(f"liifsr upscale{who}: {summary(counts, start)}", file=sys.stderr)
    return 2 if counts["failed"] else 0


def summary(counts: dict[str, int], start: float, left: int | None = None) -> str:
    """'3 done, 1 skipped, 0 failed[, 2 left], 12.5 s': a collection's tally."""
    rest = "" if left is None else f", {left} left"
    return (f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed{rest}, "
            f"{time.perf_counter() - start:.1f} s")


def check_still_inside(target: Path, out_dir: Path, given: Path) -> None:
    """The output's folder must still lead inside --out-dir (`given`, at `out_dir` when the run
    began) when it is written: a link put in the mirrored tree during the run would lead
    the write elsewhere."""
    if not target.parent.resolve().is_relative_to(out_dir):
        raise UpscaleError(f"output {os.fspath(target)!r} would now be written outside --out-dir {os.fspath(given)!r} "
                           "(a link in it changed during the run): remove the link and run again")
