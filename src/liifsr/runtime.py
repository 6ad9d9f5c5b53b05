"""Where and in what precision models run, for every command: the device choice, autocast,
the `--device`/`--precision` options every command shares, and the machine a measurement names."""

from __future__ import annotations

import argparse
import functools
import os
import sys

import torch

PRECISIONS = ("fp32", "bf16", "fp16")  # fp16: CUDA only


class DeviceError(ValueError):
    """A device or precision that cannot be used here; the message says what to choose."""


def check_device_name(text: str) -> str:
    """`text` if it names a device ('auto', 'cpu', 'cuda' or 'cuda:N'), else a DeviceError."""
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise DeviceError(f"unknown device {text!r} (choose auto, cpu, cuda or cuda:N)")


def resolve_device(name: str | torch.device, local_rank: int | None = None) -> torch.device:
    """'auto' (CUDA when present, else the CPU), 'cpu', 'cuda' or 'cuda:N' as a torch.device.

    With `local_rank` (one of several torchrun processes), plain 'cuda' means that
    process's GPU, cuda:`local_rank`. Asking for CUDA without one is a clear error.
    """
    text = check_device_name(str(name))
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {text!r} requested but PyTorch sees no CUDA GPU (use --device cpu or auto)")
    if text == "cuda" and local_rank is not None:
        text = f"cuda:{local_rank}"
    return torch.device(text)


def launched_ranks() -> tuple[int, int, int | None]:
    """(rank, world size, local rank) of this process under torchrun (or another launcher
    that sets RANK and WORLD_SIZE); (0, 1, None) when run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """Autocast for a precision name: 'fp32' (autocast off), 'bf16', or 'fp16' (CUDA only)."""
    check_precision_on(device, precision)
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def check_precision_on(device: torch.device, precision: str) -> None:
    """A DeviceError for a precision that is unknown or cannot run on `device`."""
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r} (choose one of: {', '.join(PRECISIONS)})")
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError(f"fp16 runs on CUDA GPUs only, not on {device.type} (use bf16 or fp32 there)")


def kernel_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a matmul or convolution of `x` runs in: autocast's where it is on for x's
    device (autocast does not reach kernels called directly), else x's own."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


# --- the machine ------------------------------------------------------------------------

# ONEDNN_MAX_CPU_ISA values (oneDNN's caps on itself) that still allow native bf16:
# every level named with AMX allows AMX tiles too; the others stop at AVX-512 BF16.
_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512")


@functools.cache  # the CPU does not change under a process: read it once
def cpu_model_and_flags() -> tuple[str, frozenset[str]]:
    """The CPU's model name and feature flags, from /proc/cpuinfo (Linux); elsewhere
    `platform.processor()` and no flags."""
    import platform

    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or "unknown CPU", frozenset()
    fields = dict(line.split(":", 1) for line in text.splitlines()[:40] if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return fields.get("model name", platform.processor() or "unknown CPU"), frozenset(fields.get("flags", "").split())


def bf16_instructions(flags: frozenset[str] | None = None, max_isa: str | None = None) -> str | None:
    """'AMX', 'AVX512_BF16' or None: the CPU instructions that make bf16 matmuls fast
    here, as oneDNN may use them (capped by ONEDNN_MAX_CPU_ISA, as oneDNN caps itself).
    None: bf16 is emulated with fp32 instructions, many times slower than fp32."""
    flags = cpu_model_and_flags()[1] if flags is None else flags
    max_isa = (os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL") if max_isa is None else max_isa).strip().upper()
    uncapped = max_isa in ("", "ALL")
    if "amx_bf16" in flags and (uncapped or "AMX" in max_isa):
        return "AMX"
    if "avx512_bf16" in flags and (uncapped or "AMX" in max_isa or max_isa in _BF16_ISAS):
        return "AVX512_BF16"
    return None


def machine_summary() -> str:
    """One line naming what a measurement ran on: the CPU, its bf16 instructions, ATen's
    vector ISA, the threads, torch's version (and the GPU, if one is used)."""
    model, _ = cpu_model_and_flags()
    bf16 = bf16_instructions() or "no bf16 instructions: bf16 emulated"
    line = (f"CPU: {model} ({bf16}; ATen {torch.backends.cpu.get_cpu_capability()}), "
            f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    if torch.cuda.is_available():
        line += f"; GPU: {torch.cuda.get_device_name()}"
    return line


def precision_warning(device: torch.device, precision: str) -> str | None:
    """A one-line warning when `precision` will be slow on `device`: bf16 on a CPU
    without bf16 instructions, where it is emulated. None when it is fine."""
    if precision == "bf16" and device.type == "cpu" and bf16_instructions() is None:
        return ("this CPU has no bf16 instructions (AVX512_BF16 or AMX): bf16 is emulated and many times "
                "slower than fp32 here; use --precision fp32")
    return None


# --- the options every command shares -------------------------------------------------


def _device_option(text: str) -> str:
    try:
        return check_device_name(text)
    except DeviceError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _count_option(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_runtime_options(parser: argparse.ArgumentParser, overrides_config: bool = False) -> None:
    """--device, --precision, --chunk and --tile, the same in every command. With
    `overrides_config` (`liifsr train`, where --chunk and --tile are validation's) their
    defaults are None: the config's values stand unless given."""
    default = "the config's" if overrides_config else None
    parser.add_argument("--device", type=_device_option, default=None if overrides_config else "auto", metavar="DEVICE",
                        help=f"auto (CUDA when present, else the CPU), cpu, cuda or cuda:N (default: {default or 'auto'})")
    bf16 = bf16_instructions()
    parser.add_argument("--precision", choices=PRECISIONS, default=None if overrides_config else "fp32",
                        help=f"fp32 (default: {default or 'fp32'}); bf16 autocast: faster on GPUs and on CPUs with "
                        f"bf16 instructions (AMX, AVX512_BF16), emulated and many times slower than fp32 on others "
                        f"(this CPU: {bf16 or 'none'}); fp16 autocast: CUDA GPUs only")
    parser.add_argument("--chunk", type=_count_option, default=None, metavar="N",
                        help="queries decoded at once (default: 65536; memory grows with it)")
    parser.add_argument("--tile", type=_count_option, default=None, metavar="N",
                        help="LR tile side for the encoder (default: the whole input up to 512x512, else 256)")


def decoding_options(args: argparse.Namespace) -> dict[str, int | None]:
    """--chunk and --tile as the keyword arguments of `tiling.upscale_tensor`."""
    return {"chunk_size": args.chunk, "tile_size": args.tile}


def check_precision(device: torch.device, precision: str) -> None:
    """Refuse a precision `device` cannot run (fp16 on a CPU), and print
    `precision_warning`, if any, as one line on stderr."""
    check_precision_on(device, precision)
    warning = precision_warning(device, precision)
    if warning:
        print(f"liifsr: warning: {warning}", file=sys.stderr)
