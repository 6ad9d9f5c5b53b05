"""SSIM's Gaussian filtering: banded matrix products (liifsr) against float64 convolution.

`metrics.ssim` filters five float64 maps (x, y, x^2, y^2, xy) with the separable 11-tap
Gaussian. This times it on an image of Urban100's size against the same SSIM with the
two 1-D passes as `F.conv2d` calls, in turns, and checks that both give the same value.

    python benchmarks/bench_ssim.py [--size 1024x680] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from liifsr import metrics


def ssim_by_convolution(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    """metrics.ssim with each 1-D Gaussian pass a float64 convolution."""
    shave = metrics.shave_for("benchmark", scale)
    x, y = (metrics._shave(metrics._luma_255(image), shave) for image in (sr, hr))
    taps = metrics.gaussian_window().sum(dim=1)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, taps.view(1, 1, -1, 1)), taps.view(1, 1, 1, -1))

    mu_x, mu_y = filt(x), filt(y)
    var_x, var_y, cov = filt(x * x) - mu_x**2, filt(y * y) - mu_y**2, filt(x * y) - mu_x * mu_y
    c1, c2 = metrics._SSIM_C1, metrics._SSIM_C2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


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
             "float64 convolution": lambda: ssim_by_convolution(sr, hr, 4)}
    values = {name: fn() for name, fn in cases.items()}
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    print(f"SSIM of one {width}x{height} image, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for name, seconds in best.items():
        print(f"{name}: SSIM {values[name]:.12f}, {seconds * 1e3:.0f} ms")
    print(f"speed-up: {best['float64 convolution'] / best['banded matrix products']:.2f}x")


if __name__ == "__main__":
    main()
