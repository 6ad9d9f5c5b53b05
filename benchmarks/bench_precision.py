"""bf16 against fp32 decoding on this CPU: whether `--precision bf16` pays here.

Upscales a 64 x 64 image x4 with the default model in fp32 and in bf16, side by side in
one run (best of --repeats), and prints the throughputs and their ratio beside the CPU's
bf16 instructions. bf16 is fast with AMX or AVX512_BF16; elsewhere it is emulated. To see
an AVX2-only CPU on a newer one, cap ATen and oneDNN:

    python benchmarks/bench_precision.py [--repeats 3] [--side 256]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/bench_precision.py
"""

from __future__ import annotations

import argparse
import time

import torch

from liifsr.allocator import keep_freed_memory
from liifsr.kernels import fused_works
from liifsr.runtime import machine_summary
from liifsr.tiling import upscale_tensor
from liifsr.zoo import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", type=int, default=256, help="output side (the input is a quarter of it)")
    args = parser.parse_args()
    keep_freed_memory()
    print(machine_summary())
    print(f"oneDNN's fused ops: fp32 {'on' if fused_works(torch.float32) else 'off'}, "
          f"bf16 {'on' if fused_works(torch.bfloat16) else 'off (plain ops)'}\n")
    model = load_model()
    torch.manual_seed(0)
    lr = torch.rand(1, 3, args.side // 4, args.side // 4)
    rates = {}
    for precision in ("fp32", "bf16"):
        upscale_tensor(model, lr, (args.side, args.side), precision=precision, progress=False)  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            upscale_tensor(model, lr, (args.side, args.side), precision=precision, progress=False)
            best = min(best, time.perf_counter() - start)
        rates[precision] = args.side**2 / best / 1e3
    print(f"| x4 to {args.side}x{args.side} | fp32 kpx/s | bf16 kpx/s | bf16 / fp32 |")
    print("|---|---|---|---|")
    print(f"| default model | {rates['fp32']:.1f} | {rates['bf16']:.1f} | {rates['bf16'] / rates['fp32']:.2f}x |")


if __name__ == "__main__":
    main()
