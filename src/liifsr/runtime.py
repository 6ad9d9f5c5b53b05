"""Where and in what precision models run, for every command and the Python API: the
device choice, the launcher's ranks, autocast, what 'auto' precision picks, and the
machine a measurement names. The CPU's own features are `liifsr.cpu`'s; the command-line
options that choose these, `liifsr.commands.options`'."""

from __future__ import annotations

import os
import sys

import torch

from liifsr import cpu

PRECISIONS = ("fp32", "bf16", "fp16")  # fp16: CUDA only
# The default of `upscale`, `serve`, `compare` and the Python API: bf16 where the device runs
# it natively, else fp32 (`resolve_precision`). `evaluate` and `train` name theirs.
AUTO = "auto"


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
    that sets RANK and WORLD_SIZE); (0, 1, None) when run alone.

    A launcher's variables that are malformed or do not fit together (often left in a
    shell from another run) are a ValueError naming the variable: a RANK outside
    0..WORLD_SIZE-1 would take no file and report success."""
    fix = "launch with torchrun, or unset RANK, WORLD_SIZE and LOCAL_RANK if they were left in this shell"

    def count(name: str, default: str) -> int:
        text = os.environ.get(name, default)
        if not (text.strip().isascii() and text.strip().isdigit() and len(text.strip()) < 10):
            raise ValueError(f"the environment variable {name}={text!r} is not a whole number ({fix})")
        return int(text)

    world = count("WORLD_SIZE", "1")
    if world == 0:
        raise ValueError(f"the environment variable WORLD_SIZE=0 must be at least 1 ({fix})")
    if world == 1:
        return 0, 1, None
    if "RANK" not in os.environ:
        raise ValueError(f"the environment variable WORLD_SIZE={world} is set but RANK is not ({fix})")
    rank = count("RANK", "0")
    if rank >= world:
        raise ValueError(f"the environment variable RANK={rank} must be below WORLD_SIZE={world} ({fix})")
    return rank, world, count("LOCAL_RANK", "0")


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


def native_bf16(device: torch.device) -> str | None:
    """What runs bf16 natively on `device`: the CPU's bf16 instructions ('AMX' or
    'AVX512_BF16', `cpu.bf16_instructions`, so ONEDNN_MAX_CPU_ISA caps it as it caps oneDNN),
    or the name of a CUDA GPU with bf16 units (compute capability 8.0 or more). None
    where bf16 would be emulated, slower than fp32: AVX2-only CPUs, older GPUs.

    ATEN_CPU_CAPABILITY does not enter: it caps ATen's own vectorised loops, not oneDNN,
    whose convolutions and matmuls hold the bf16 work (on the AMX Xeon with ATen capped
    to avx2, edsr-thermal's encoder ran 4.5x faster in bf16 than in fp32, a whole x4
    upscale 2.4x; uncapped 4.8x and 2.3x: CPU time of one thread)."""
    if device.type == "cuda":  # torch.cuda.is_bf16_supported(including_emulation=False), for this device
        native = torch.version.hip is not None or torch.cuda.get_device_capability(device) >= (8, 0)
        return torch.cuda.get_device_name(device) if native else None
    return cpu.bf16_instructions() if device.type == "cpu" else None


def resolve_precision(precision: str, device: torch.device, supported: tuple[str, ...] = PRECISIONS,
                      auto_picks: tuple[str, ...] = PRECISIONS) -> str:
    """`precision`, with 'auto' made what runs: bf16 where `device` runs it natively
    (`native_bf16`), the model runs it (`supported`: an ONNX model runs fp32 only) and auto
    may pick it for the model (`auto_picks`: a model whose scores bf16 moves keeps fp32),
    else fp32. Any other name is returned as it is (checked where it is used)."""
    if precision != AUTO:
        return precision
    bf16 = "bf16" in supported and "bf16" in auto_picks
    return "bf16" if bf16 and native_bf16(device) is not None else "fp32"


def auto_precision_here() -> str:
    """What 'auto' picks on this machine's default device, in words, for --help."""
    device = resolve_device("auto")
    native = native_bf16(device)
    where = "this GPU" if device.type == "cuda" else "this CPU"
    if native is None:
        return f"fp32 on {where} (no native bf16: it would be emulated)"
    return f"bf16 on {where} ({native})"


def machine_summary() -> str:
    """One line naming what a measurement ran on: the CPU, its bf16 instructions, ATen's
    vector ISA, the threads, torch's version (and the GPU, if one is used)."""
    model, _ = cpu.cpu_model_and_flags()
    bf16 = cpu.bf16_instructions() or "no bf16 instructions: bf16 emulated"
    line = (f"CPU: {model} ({bf16}; ATen {torch.backends.cpu.get_cpu_capability()}), "
            f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    if torch.cuda.is_available():
        line += f"; GPU: {torch.cuda.get_device_name()}"
    return line


def precision_warning(device: torch.device, precision: str) -> str | None:
    """A one-line warning when `precision` will be slow on `device`: bf16 on a CPU
    without bf16 instructions, where it is emulated. None when it is fine."""
    if precision == "bf16" and device.type == "cpu" and cpu.bf16_instructions() is None:
        return ("this CPU has no bf16 instructions (AVX512_BF16 or AMX): bf16 is emulated and many times "
                "slower than fp32 here; use --precision fp32")
    return None


def warn_precision(device: torch.device, precision: str) -> None:
    """Print `precision_warning`, if any, as one line on stderr."""
    warning = precision_warning(device, precision)
    if warning:
        print(f"liifsr: warning: {warning}", file=sys.stderr)


def check_precision(device: torch.device, precision: str) -> None:
    """Refuse a precision `device` cannot run (fp16 on a CPU), and warn about one that runs
    emulated there (`warn_precision`). Models opened by name: `decoding.open_model`."""
    check_precision_on(device, precision)
    warn_precision(device, precision)
