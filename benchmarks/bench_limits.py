"""How close decoding and training come to this machine's matrix-multiply limit.

Everything is measured in one run, so the ratios hold on a noisy machine:
- the machine's own rate in fp32 and bf16 on the model's shapes, through every backend
  the model can use: the decoder's (4096 x 256) @ (256 x 256) as torch.mm (MKL or
  oneDNN, as PyTorch dispatches it) and as oneDNN's fused Linear (the op the decoder
  calls), and EDSR's 64 -> 64 3x3 convolution on a 64 x 64 image through oneDNN; and
  torch.mm on a large square one (2048^3) for reference;
- the FLOPs of every matrix multiply and convolution the model runs
  (`torch.utils.flop_counter`: 2 per multiply-add, backward included in training;
  the decoder's fused oneDNN Linear counted as a matmul);
- decoding outputs of at least one megapixel at x2, x4, x8 and x30 with
  `upscale_tensor` (its default tiles and chunks), and, apart, the encoder's share
  (encoder plus latent projection on the same LR image);
- one training step (batch 16, 48 x 48 LR patches, 2,304 queries each, Adam).

The limit of a job is its FLOPs divided by the best of those rates (the fastest backend
on the model's own shapes, so that no fraction can pass 100 %), measured right before
and right after that job (the higher of the two: on a shared machine the rate drifts by
tens of percent within minutes); the tables print that rate and the achieved fraction
of the limit. Times are the best of --repeats. The header names the CPU, the ISA that
sets the bf16 speed (AMX, AVX512_BF16 or neither), the threads and torch's version.
On a machine that other jobs share, measure with --threads 1: oversubscribed OpenMP
threads wait for each other and make every 2-thread figure, the matmul rate included,
meaningless. Freed memory is kept for reuse as every `liifsr` command keeps it
(`liifsr.allocator.keep_freed_memory`); --glibc-defaults measures with glibc's own settings.

    python benchmarks/bench_limits.py [--precisions fp32,bf16] [--scales 2,4,8,30]
                                      [--repeats 3] [--threads 0] [--preset edsr-liif-relu]
                                      [--glibc-defaults]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count, register_flop_formula

from liifsr.allocator import keep_freed_memory
from liifsr.data import DataConfig, ImageFolder, LIIFTrainSet
from liifsr.imageio import read_uint8, sample_image
from liifsr.kernels import fused_conv, linear
from liifsr.models import model_preset
from liifsr.models.liif import LIIF
from liifsr.runtime import autocast, machine_summary
from liifsr.tiling import upscale_tensor
from liifsr.training.loop import train_step

OUTPUT_SIDE = 1024  # outputs of at least 1024 x 1024 pixels
DECODER_SHAPE = (4096, 256, 256)  # (m, k, n) of the rate that defines the limit


@register_flop_formula(torch.ops.mkldnn._linear_pointwise)
def _fused_linear_flops(x_shape, w_shape, *args, **kwargs) -> int:
    """The decoder's fused oneDNN Linear (bias and ReLU in its epilogue): a matmul's FLOPs."""
    return 2 * math.prod(x_shape[:-1]) * x_shape[-1] * w_shape[0]


@register_flop_formula(torch.ops.mkldnn._convolution_pointwise)
def _fused_conv_flops(x_shape, *args, out_shape=None, **kwargs) -> int:
    """EDSR's fused oneDNN convolution (ReLU or residual addition in its epilogue): a
    convolution's FLOPs. The `binary` overload (13 arguments) has the addend before the weight."""
    w_shape = args[1] if len(args) + 1 == 13 else args[0]
    return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: allocations, oneDNN kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_rate(dtype: torch.dtype, m: int, k: int, n: int, repeats: int) -> float:
    """FLOP/s of torch.mm, (m x k) @ (k x n) in `dtype`, on this machine's threads."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    out = torch.empty(m, n, dtype=dtype)
    return timed_rate(lambda: torch.mm(a, b, out=out), 2 * m * k * n, repeats)


def fused_linear_rate(dtype: torch.dtype, m: int, k: int, n: int, repeats: int) -> float:
    """FLOP/s of the decoder's Linear (kernels.linear: oneDNN's fused op where it works)."""
    h, weight, bias = torch.randn(m, k).to(dtype), torch.randn(n, k).to(dtype), torch.randn(n).to(dtype)
    return timed_rate(lambda: linear(h, weight, bias), 2 * m * k * n, repeats)


def conv_rate(dtype: torch.dtype, repeats: int) -> float:
    """FLOP/s of EDSR's 64 -> 64 3x3 convolution on a 64 x 64 image (kernels.fused_conv)."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)
    x = torch.randn(1, 64, 64, 64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), autocast(x.device, "bf16" if dtype == torch.bfloat16 else "fp32"):
        return timed_rate(lambda: fused_conv(x, conv), 2 * 64 * 64 * 9 * 64 * 64, repeats)


def timed_rate(fn: Callable[[], object], flops: int, repeats: int) -> float:
    calls = max(1, int(2e9 // flops))  # about 2 GFLOP per timing

    def run() -> None:
        for _ in range(calls):
            fn()

    return flops * calls / best_seconds(run, repeats)


def backend_rates(dtype: torch.dtype, repeats: int) -> dict[str, float]:
    """Every backend's FLOP/s on the model's shapes; the limit is the best of them."""
    return {"torch.mm": matmul_rate(dtype, *DECODER_SHAPE, repeats),
            "fused Linear": fused_linear_rate(dtype, *DECODER_SHAPE, repeats),
            "fused conv": conv_rate(dtype, repeats)}


def lr_image(scale: int) -> torch.Tensor:
    """A real LR crop whose x`scale` output has at least OUTPUT_SIDE pixels per side."""
    side = math.ceil(OUTPUT_SIDE / scale)
    image = read_uint8(sample_image()).float().div(255)
    return image[:, :side, :side].unsqueeze(0).contiguous()


def decoding_row(model: LIIF, scale: int, precision: str, repeats: int) -> dict[str, float]:
    """Throughput and FLOP/s of upscaling, whole and apart for the encoder."""
    lr = lr_image(scale)
    size = (lr.shape[-2] * scale, lr.shape[-1] * scale)
    inp = (lr - 0.5) / 0.5

    def upscale() -> None:
        upscale_tensor(model, lr, size, precision=precision)

    def encode() -> None:
        with torch.no_grad(), autocast(lr.device, precision):
            model.latent_projection(model.encode(inp))

    flops, enc_flops = count_flops(upscale), count_flops(encode)
    seconds, enc_seconds = best_seconds(upscale, repeats), best_seconds(encode, repeats)
    dec_seconds = max(seconds - enc_seconds, 1e-9)
    return {
        "kpx/s": size[0] * size[1] / seconds / 1e3,
        "whole": flops / seconds,
        "decoder": (flops - enc_flops) / dec_seconds,
        "encoder": enc_flops / enc_seconds,
        "encoder share": enc_seconds / seconds,
        "MFLOP/px": flops / (size[0] * size[1]) / 1e6,
    }


def training_row(preset: str, precision: str, repeats: int) -> dict[str, float]:
    """Seconds and FLOP/s of one training step."""
    dataset = LIIFTrainSet(ImageFolder([sample_image()]), DataConfig(repeat=16), seed=0)
    samples = [dataset[(1, index)] for index in range(16)]
    batch = {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
    torch.manual_seed(0)
    model = LIIF(model_preset(preset))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        train_step(model, optimizer, batch, precision)

    flops = count_flops(step)
    seconds = best_seconds(step, repeats)
    return {"s/iteration": seconds, "whole": flops / seconds, "GFLOP": flops / 1e9}


def measured_around(job: Callable[[], dict[str, float]], dtype: torch.dtype, repeats: int) -> tuple[dict, float]:
    """The job's row and the limit around it: the best backend rate on the model's shapes,
    the higher of those measured right before and right after the job."""
    before = max(backend_rates(dtype, repeats).values())
    row = job()
    return row, max(before, *backend_rates(dtype, repeats).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--scales", default="2,4,8,30")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = PyTorch's default)")
    parser.add_argument("--preset", default="edsr-liif-relu")
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--glibc-defaults", action="store_true", help="leave malloc's settings as glibc sets them")
    args = parser.parse_args()
    kept = not args.glibc_defaults and keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LIIF(model_preset(args.preset)).eval()
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}

    print(f"{machine_summary()}\n{args.preset}, freed memory {'kept for reuse' if kept else 'returned (glibc defaults)'}\n")
    print("| precision | torch.mm 4096x256x256 GFLOP/s | fused Linear 4096x256x256 | fused conv 64x64x3x3 "
          "| torch.mm 2048^3 |")
    print("|---|---|---|---|---|")
    precisions = args.precisions.split(",")
    for precision in precisions:
        dtype = dtypes[precision]
        rates = backend_rates(dtype, args.repeats)
        square = matmul_rate(dtype, 2048, 2048, 2048, args.repeats)
        print(f"| {precision} | " + " | ".join(f"{rate / 1e9:.0f}" for rate in rates.values()) + f" | {square / 1e9:.0f} |")

    print("\nDecoding (fraction of the limit = achieved FLOP/s / the best backend rate on the model's shapes, "
          "measured around each row):\n")
    print("| scale | precision | output | kpx/s | MFLOP/px | limit GFLOP/s | whole | decoder | encoder "
          "| encoder share of time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for scale in (int(s) for s in args.scales.split(",")):
        for precision in precisions:
            row, rate = measured_around(lambda: decoding_row(model, scale, precision, args.repeats),
                                        dtypes[precision], args.repeats)
            side = math.ceil(OUTPUT_SIDE / scale) * scale
            print(f"| x{scale} | {precision} | {side}x{side} | {row['kpx/s']:.0f} | {row['MFLOP/px']:.2f} | "
                  f"{rate / 1e9:.0f} | {row['whole'] / rate:.0%} | {row['decoder'] / rate:.0%} | "
                  f"{row['encoder'] / rate:.0%} | {row['encoder share']:.0%} |", flush=True)

    if not args.no_training:
        print("\nTraining step (batch 16, 48 px, 2,304 queries, forward + backward + Adam):\n")
        print("| precision | s / iteration | GFLOP | limit GFLOP/s | fraction of the limit |")
        print("|---|---|---|---|---|")
        for precision in precisions:
            row, rate = measured_around(lambda: training_row(args.preset, precision, args.repeats),
                                        dtypes[precision], args.repeats)
            print(f"| {precision} | {row['s/iteration']:.2f} | {row['GFLOP']:.0f} | {rate / 1e9:.0f} | "
                  f"{row['whole'] / rate:.0%} |", flush=True)


if __name__ == "__main__":
    main()
