"""Where and in what precision models run: the device choice and autocast, for every command."""

from __future__ import annotations

import torch

PRECISIONS = ("fp32", "bf16")


class DeviceError(ValueError):
    """A device or precision that cannot be used here; the message says what to choose."""


def resolve_device(name: str | torch.device, local_rank: int | None = None) -> torch.device:
    """'auto' (CUDA when present, else the CPU), 'cpu', 'cuda' or 'cuda:N' as a torch.device.

    With `local_rank` (one of several torchrun processes), plain 'cuda' means that
    process's GPU, cuda:`local_rank`. Asking for CUDA without one is a clear error.
    """
    text = str(name)
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text != "cpu" and text != "cuda" and not (text.startswith("cuda:") and text[5:].isdigit()):
        raise DeviceError(f"unknown device {text!r} (choose auto, cpu, cuda or cuda:N)")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {text!r} requested but PyTorch sees no CUDA GPU (use --device cpu or auto)")
    if text == "cuda" and local_rank is not None:
        text = f"cuda:{local_rank}"
    return torch.device(text)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """Autocast for a precision name: 'fp32' (autocast off) or 'bf16'."""
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise DeviceError(f"unknown precision {precision!r} (choose one of: {', '.join(PRECISIONS)})")


def kernel_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a matmul or convolution of `x` runs in: autocast's where it is on for x's
    device (autocast does not reach kernels called directly), else x's own."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype
