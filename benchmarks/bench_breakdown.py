"""Where a whole `liifsr upscale` goes: start-up, model load, image read, encoder, decoder,
PNG writing (quantisation and zlib), for one model in each precision, on this CPU.

The job is the README's quick start, `liifsr upscale src/liifsr/assets/astronaut.png
--scale 3.5 -o OUT.png` (512x512 -> 1792x1792), with --model (default edsr-thermal), on
the CPU (`--device cpu`). Each row is the best of --repeats:
- whole command: the command itself, as a subprocess (what a user waits for);
- start-up: a subprocess that imports what the command imports (`liifsr.commands.upscale`),
  freezes it out of the garbage collector as the command does (`liifsr.cli.main`), and
  exits: the interpreter, torch and liifsr;
- model load, image read: `load_model`, `read_image`;
- encoder, and the decoder's per-image table (`latent_projection`): timed inside one real
  upscale (`tiling.upscale_bands`, as the command runs it), around the model's own calls;
- decoder: that upscale's remaining time (the queries, the bands' assembly);
- the encoder's rate: its convolutions' FLOPs (2 per multiply-add, over every window it
  encoded) per second, and that as a share of the CPU's convolution rate, one of EDSR's
  64 -> 64 3x3 convolutions over the whole LR image as the encoder runs it (channels-last,
  `kernels.fused_conv`), timed in the same precision;
- PNG: quantising the bands and writing them (`imageio.write_image_bands`), and apart
  the zlib compression of the same rows, Up-filtered, at the writer's level
  (`imageio.PNG_COMPRESSION`);
- not accounted: whole command minus the rows above (argument parsing, checks, exit).
A second table compresses the output's PNG rows at zlib levels 0-9, unfiltered (as pypng
writes them) and Up-filtered (as liifsr does): seconds and size.
The two encoder fixes this measures (the encoder's input made truly channels-last in
`tiling`, the fused-kernel probe run outside autocast in `kernels`) took the bf16 encoder
of this job from 5.05 to 1.14 CPU-seconds on the 2-core AMX Xeon (one thread).

Stages run in one process with this machine's threads (as the command does), freed
memory kept for reuse as every command keeps it (`liifsr.allocator.keep_freed_memory`). On a
machine that other jobs share, every figure is noise: measure on an idle one.

    python benchmarks/bench_breakdown.py [--model edsr-thermal] [--precisions fp32,bf16]
                                         [--repeats 3] [--threads 0] [--image IMAGE --scale 3.5]
                                         [--tile N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from bench_limits import best_seconds  # this folder's: run as `python benchmarks/...`
from bench_memory import peak_rss

from liifsr.allocator import keep_freed_memory
from liifsr.decoding import DecodeOptions
from liifsr.imageio import PNG_COMPRESSION, read_image, sample_image, write_image_bands
from liifsr.inference import upscale_image_bands
from liifsr.kernels import fused_conv
from liifsr.runtime import autocast, machine_summary, resolve_precision
from liifsr.zoo import load_model

ZLIB_LEVELS = (0, 1, 2, 3, 6, 9)
PNG_FILTERS = {"none": 0, "Up": 2}  # PNG's filter types: none (pypng's), Up (liifsr's)


def command_seconds(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(seconds, peak resident bytes) of one run of a whole command (`bench_memory.peak_rss`)."""
    peak, seconds = peak_rss(command, env)
    return seconds, peak


def best_command_seconds(command: list[str], repeats: int, env: dict[str, str]) -> float:
    """The fastest of `repeats` runs of a whole command, after one warm-up run (the page
    cache then holds the interpreter, torch and the weights, as for a user's second run)."""
    command_seconds(command, env)
    return min(command_seconds(command, env)[0] for _ in range(repeats))


def upscale_command(image: Path, scale: float, out: Path, model: str | None = None, precision: str | None = None,
                    tile: int | None = None, device: str | None = None) -> list[str]:
    """`liifsr upscale IMAGE --scale S -o OUT` as this interpreter runs it, with --model,
    --precision, --tile and --device where given (else the command's defaults)."""
    options = {"--model": model, "--precision": precision, "--tile": tile, "--device": device}
    return [sys.executable, "-m", "liifsr", "upscale", str(image), "--scale", f"{scale:g}", "-o", str(out),
            *(word for flag, value in options.items() if value is not None for word in (flag, str(value)))]


def threads_env(threads: int) -> dict[str, str]:
    """The environment of a subprocess: OMP_NUM_THREADS set when `threads` is."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else dict(os.environ)


@contextmanager
def timed_methods(model: torch.nn.Module, names: tuple[str, ...]) -> Iterator[dict[str, list[float]]]:
    """[seconds, input pixels] of each of the model's methods `names` while inside, summed
    over calls (the pixels: the first argument's last two sides, an encoder's window)."""
    spent = {name: [0.0, 0] for name in names}

    def timed(name: str, method: Callable) -> Callable:
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[name][0] += time.perf_counter() - start
                spent[name][1] += args[0].shape[-2] * args[0].shape[-1]
        return call

    for name in names:
        setattr(model, name, timed(name, getattr(model, name)))
    try:
        yield spent
    finally:
        for name in names:
            delattr(model, name)  # the class's methods again


def png_rows(bands: list[tuple[np.ndarray, None]], filter_type: int) -> bytes:
    """The 8-bit rows a PNG writer compresses, each prefixed by its filter type: 0 (none:
    the rows as they are) or 2 (Up: each row minus the row above it)."""
    levels = np.concatenate([np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8) for rgb, _ in bands])
    rows = levels.reshape(levels.shape[0], -1)
    if filter_type == PNG_FILTERS["Up"]:
        rows = np.concatenate([rows[:1], rows[1:] - rows[:-1]])  # uint8: modulo 256
    return np.concatenate([np.full((rows.shape[0], 1), filter_type, np.uint8), rows], axis=1).tobytes()


def conv_flops_per_pixel(encoder: torch.nn.Module) -> int:
    """FLOPs per input pixel of a stride-1 convolutional encoder (EDSR, RDN): 2 per multiply-add."""
    convs = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    return sum(2 * m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups for m in convs)


def conv_rate(precision: str, hw: tuple[int, int], repeats: int) -> float:
    """FLOP/s of one EDSR 64 -> 64 3x3 convolution over an image of `hw` (channels-last,
    `kernels.fused_conv` with a ReLU in its epilogue, as the encoder runs it)."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)
    x = torch.randn(1, 64, *hw).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), autocast(x.device, precision):
        seconds = best_seconds(lambda: fused_conv(x, conv, relu=True), repeats)
    return 2 * 64 * 64 * 9 * hw[0] * hw[1] / seconds


def zlib_row(data: bytes, level: int, repeats: int) -> tuple[float, int]:
    """(seconds, compressed bytes) of zlib at `level` on `data`."""
    size = len(zlib.compress(data, level))
    return best_seconds(lambda: zlib.compress(data, level), repeats), size


def stage_rows(model_name: str, precision: str, image: Path, scale: float, repeats: int, folder: Path,
               tile: int | None = None) -> tuple[dict[str, float], list[tuple[np.ndarray, None]]]:
    """Seconds of every in-process stage of one upscale in `precision` on the CPU, and its output bands."""
    model = load_model(model_name)
    loaded = read_image(image)
    out_hw = (round(loaded.rgb.shape[0] * scale), round(loaded.rgb.shape[1] * scale))
    rows = {"model load": best_seconds(lambda: load_model(model_name), repeats),
            "image read": best_seconds(lambda: read_image(image), repeats)}
    best: dict[str, float] = {}
    for _ in range(repeats + 1):  # the first is a warm-up
        with timed_methods(model, ("encode", "latent_projection")) as spent:
            start = time.perf_counter()
            bands = list(upscale_image_bands(model, loaded, out_hw, DecodeOptions(tile=tile, precision=precision)))
            whole = time.perf_counter() - start
        encoder, table = spent["encode"][0], spent["latent_projection"][0]
        if not best or whole < best["whole"]:
            best = {"whole": whole, "encoder": encoder, "table": table, "encoded pixels": spent["encode"][1]}
    encoder_rate = conv_flops_per_pixel(model.encoder) * best["encoded pixels"] / best["encoder"]
    single_conv = conv_rate(precision, loaded.rgb.shape[:2], repeats)
    rows.update({
        "encoder": best["encoder"],
        "  encoder GFLOP/s": encoder_rate / 1e9,
        "  encoder, % of one 64->64 conv's GFLOP/s on this image": 100 * encoder_rate / single_conv,
        "decoder's per-image table": best["table"],
        "decoder (queries, bands)": best["whole"] - best["encoder"] - best["table"],
    })
    out = folder / "out.png"
    rows["PNG: quantise and write"] = best_seconds(lambda: write_image_bands(out, out_hw, iter(bands)), repeats)
    rows[f"  of which zlib (Up-filtered rows, level {PNG_COMPRESSION})"] = zlib_row(png_rows(bands, PNG_FILTERS["Up"]),
                                                                                   PNG_COMPRESSION, repeats)[0]
    return rows, bands


def print_breakdown(columns: dict[str, dict[str, float]]) -> None:
    """One row per stage, one column per precision; indented rows are about the row above."""
    print("| stage | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name in next(iter(columns.values())):
        print(f"| {name} | " + " | ".join(f"{rows[name]:.2f}" for rows in columns.values()) + " |")


def print_zlib_levels(bands: list[tuple[np.ndarray, None]], repeats: int) -> None:
    """Seconds and size of zlib at each of ZLIB_LEVELS on the output's PNG rows, for each
    of PNG_FILTERS, against the rows liifsr writes (Up-filtered, at PNG_COMPRESSION)."""
    print("\nzlib on the output's PNG rows (pypng writes them unfiltered at level 6, liifsr "
          f"Up-filtered at level {PNG_COMPRESSION}):\n")
    print("| PNG filter | zlib level | seconds | MB | size / liifsr's |")
    print("|---|---|---|---|---|")
    results = {(name, level): zlib_row(png_rows(bands, kind), level, repeats)
               for name, kind in PNG_FILTERS.items() for level in ZLIB_LEVELS}
    written = results["Up", PNG_COMPRESSION][1]
    for (name, level), (seconds, size) in results.items():
        mark = " (liifsr's)" if (name, level) == ("Up", PNG_COMPRESSION) else ""
        print(f"| {name} | {level}{mark} | {seconds:.2f} | {size / 1e6:.1f} | {size / written:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="edsr-thermal", help="bundled model name or model file (default: edsr-thermal)")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16, auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default, one per core)")
    parser.add_argument("--image", type=Path, default=sample_image())
    parser.add_argument("--scale", type=float, default=3.5)
    parser.add_argument("--tile", type=int, default=None, help="the encoder's LR tile side (default: the command's)")
    args = parser.parse_args()
    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    env = threads_env(args.threads)
    print(machine_summary())
    tile = f" --tile {args.tile}" if args.tile else ""
    print(f"liifsr upscale {args.image.name} --scale {args.scale:g} --model {args.model}{tile} --device cpu; "
          f"best of {args.repeats}; seconds\n")
    startup = best_command_seconds([sys.executable, "-c", "import gc, liifsr.commands.upscale; gc.freeze()"], args.repeats, env)
    columns: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for precision in args.precisions.split(","):
            ran = resolve_precision(precision, torch.device("cpu"))
            command = upscale_command(args.image, args.scale, Path(folder) / "cmd.png", args.model, precision, args.tile, "cpu")
            whole = best_command_seconds(command, args.repeats, env)
            stages, bands = stage_rows(args.model, ran, args.image, args.scale, args.repeats, Path(folder), args.tile)
            rows = {"whole command": whole, "start-up (interpreter, imports)": startup, **stages}
            rows["not accounted"] = whole - sum(value for name, value in rows.items()
                                                if name != "whole command" and not name.startswith(" "))
            columns[precision if ran == precision else f"{precision} ({ran})"] = rows
    print_breakdown(columns)
    print_zlib_levels(bands, args.repeats)


if __name__ == "__main__":
    main()
