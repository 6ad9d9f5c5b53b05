"""SSIM's Gaussian filtering: banded matrix products (liifsr) against float64 convolution.

`metrics.ssim` filters five float64 maps (x, y, x^2, y^2, xy) with the separable 11-tap
Gaussian (`metrics.gaussian_filter_valid`). This times it on an image of Urban100's size
against the same SSIM with that filter swapped for two 1-D `F.conv2d` passes, in turns,
and prints both values.

    python benchmarks/bench_ssim.py [--size 1024x680] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import torch
import torch.nn.functional as F

from liifsr import metrics
from liifsr.runtime import machine_summary


def gaussian_filter_by_convolution(t: torch.Tensor) -> torch.Tensor:
    """`metrics.gaussian_filter_valid` as two float64 convolutions, one per dimension."""
    taps = metrics.gaussian_window().sum(dim=1).to(t.device)
    flat = t.reshape(-1, 1, *t.shape[-2:])
    out = F.conv2d(F.conv2d(flat, taps.view(1, 1, -1, 1)), taps.view(1, 1, 1, -1))
    return out.reshape(*t.shape[:-2], *out.shape[-2:])


def ssim_by_convolution(sr: torch.Tensor, hr: torch.Tensor) -> float:
    with mock.patch.object(metrics, "gaussian_filter_valid", gaussian_filter_by_convolution):
        return metrics.ssim(sr, hr, 4, "benchmark")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1024x680", help="WIDTHxHEIGHT")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0 = PyTorch's default)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(side) for side in args.size.split("x"))
    generator = torch.Generator().manual_seed(0)
    hr = torch.rand(1, 3, height, width, generator=generator)
    sr = (hr + 0.05 * torch.randn(hr.shape, generator=generator)).clamp(0, 1)
    cases = {"banded matrix products": lambda: metrics.ssim(sr, hr, 4, "benchmark"),
             "float64 convolution": lambda: ssim_by_convolution(sr, hr)}
    values = {name: fn() for name, fn in cases.items()}
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    print(f"{machine_summary()}\nSSIM of one {width}x{height} image")
    for name, seconds in best.items():
        print(f"{name}: SSIM {values[name]:.12f}, {seconds * 1e3:.0f} ms")
    print(f"speed-up: {best['float64 convolution'] / best['banded matrix products']:.2f}x")


if __name__ == "__main__":
    main()
