"""The options several commands share, the same in each: --device, --precision, --chunk and
--tile (`add_runtime_options`)."""

from __future__ import annotations

import argparse

from liifsr.cpu import bf16_instructions
from liifsr.runtime import AUTO, PRECISIONS, DeviceError, auto_precision_here, check_device_name


def device_name(text: str) -> str:
    """A --device: 'auto', 'cpu', 'cuda' or 'cuda:N'."""
    try:
        return check_device_name(text)
    except DeviceError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def count(text: str) -> int:
    """A positive whole number (--chunk, --tile)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_runtime_options(parser: argparse.ArgumentParser, overrides_config: bool = False,
                        automatic_precision: bool = False) -> None:
    """--device, --precision, --chunk and --tile, the same in every command. With
    `overrides_config` (`liifsr train`, where --chunk and --tile are validation's) their
    defaults are None: the config's values stand unless given. With `automatic_precision`
    (`upscale`, `serve`, `compare`) --precision offers 'auto' and defaults to it; the
    others (`evaluate`, `train`) default to fp32 or the config's, which their outputs record."""
    default = "the config's" if overrides_config else None
    parser.add_argument("--device", type=device_name, default=None if overrides_config else "auto", metavar="DEVICE",
                        help=f"auto (CUDA when present, else the CPU), cpu, cuda or cuda:N (default: {default or 'auto'})")
    choices: tuple[str, ...]
    precision_default: str | None
    if automatic_precision:
        choices, precision_default = (AUTO, *PRECISIONS), AUTO
        first = (f"auto (default): bf16 on CUDA GPUs with bf16 and on CPUs with AMX or AVX512_BF16, else fp32, "
                 f"and fp32 for ONNX models; here: {auto_precision_here()}. fp32: full precision")
    else:
        choices, precision_default = PRECISIONS, None if overrides_config else "fp32"
        first = f"fp32 (default: {default or 'fp32'})"
    bf16 = bf16_instructions()
    parser.add_argument("--precision", choices=choices, default=precision_default,
                        help=f"{first}; bf16 autocast: faster on GPUs and on CPUs with "
                        f"bf16 instructions (AMX, AVX512_BF16), emulated and many times slower than fp32 on others "
                        f"(this CPU: {bf16 or 'none'}); fp16 autocast: CUDA GPUs only")
    parser.add_argument("--chunk", type=count, default=None, metavar="N",
                        help="queries decoded at once (default: 65536; memory grows with it)")
    parser.add_argument("--tile", type=count, default=None, metavar="N",
                        help="LR tile side for the encoder (default: the whole input up to 512x512, else 256)")
