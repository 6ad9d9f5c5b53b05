"""Every decoder against EDSR-LIIF-ReLU in one run: output kilopixels per second at x4 and
x30 (outputs of about 1 megapixel), fp32 and bf16, and each decoder's parameters and FLOPs
per output pixel.

Each model upscales the bundled photograph, resized to output / scale, through
`upscale_tensor` (whole = encoder, the decoder's per-image table and the queries). The
encoder's part is timed alone on the same input and taken off, which leaves the decoding:
the decoders differ only there. Rows are interleaved over --repeats rounds, each figure
the best of them, so that machine noise hits every model alike. FLOPs (2 per
multiply-add) are those torch.utils.flop_counter counts, matrix products and convolutions;
the elementwise work (ReLU, sines, LTE's Fourier features, the heat field's sum over its
components) is left out. Weights are freshly initialised unless --model NAME=FILE gives
trained ones (the speed does not depend on them).

    python benchmarks/bench_decoders.py [--repeats 3] [--output 1000] [--model edsr-lte=runs/lte/last.safetensors]
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from liifsr.allocator import keep_freed_memory
from liifsr.coords import cell_size, make_coord, normalise
from liifsr.imageio import sample_image
from liifsr.kernels import SWITCH
from liifsr.models import build_model, model_preset
from liifsr.runtime import autocast, machine_summary
from liifsr.tiling import upscale_tensor
from liifsr.zoo import load_model

DECODERS = ("edsr-liif-relu", "edsr-liif-siren30", "edsr-lte", "edsr-thermal")
BASELINE = "edsr-liif-relu"


def lr_image(output: int, scale: float) -> torch.Tensor:
    side = max(1, round(output / scale))
    image = Image.open(sample_image()).convert("RGB").resize((side, side), Image.BICUBIC)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1).unsqueeze(0)


def best_seconds(work, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


@contextmanager
def plain_kernels():
    """The plain PyTorch ops, which the FLOP counter sees (it does not know oneDNN's fused ones)."""
    old = os.environ.get(SWITCH)
    os.environ[SWITCH] = "0"
    try:
        yield
    finally:
        os.environ.pop(SWITCH) if old is None else os.environ.__setitem__(SWITCH, old)


def decoder_flops_per_pixel(model, scale: float) -> float:
    """FLOPs of the decoder per output pixel: its per-image table over an LR image, plus its queries."""
    lr = normalise(lr_image(256, scale))
    out_hw = (round(lr.shape[-2] * scale), round(lr.shape[-1] * scale))
    coord = make_coord(out_hw).unsqueeze(0)
    cell = cell_size(out_hw).expand_as(coord)
    with torch.no_grad(), plain_kernels():
        feat = model.encode(lr)
        counter = FlopCounterMode(display=False)
        with counter:
            model.decode(model.latent_projection(feat), coord, cell, skip_image=lr)
    return counter.get_total_flops() / coord.shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=int, default=1000, help="output side in pixels (default 1000: 1 megapixel)")
    parser.add_argument("--scales", default="4,30")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FILE", help="trained weights for a decoder")
    args = parser.parse_args()
    keep_freed_memory()
    files = dict(entry.split("=", 1) for entry in args.model)
    torch.manual_seed(0)
    models = {name: (load_model(files[name]) if name in files else build_model(model_preset(name)).eval()) for name in DECODERS}
    print(machine_summary())
    print(f"outputs of {args.output}x{args.output} pixels; best of {args.repeats}; kpx/s of the decoding (whole upscale "
          "minus the encoder) and of the whole upscale")
    print(f"{'decoder':20s} {'decoder params':>14s} " + " ".join(f"{'GFLOP/Mpx x' + s:>15s}" for s in args.scales.split(",")))
    encoder_params = sum(p.numel() for p in models[BASELINE].encoder.parameters())
    for name, model in models.items():
        flops = [decoder_flops_per_pixel(model, float(s)) * 1e6 / 1e9 for s in args.scales.split(",")]
        print(f"{name:20s} {model.num_parameters() - encoder_params:>14,d} " + " ".join(f"{f:>15.1f}" for f in flops))
    print()
    print(f"{'scale':>5s} {'precision':>9s} {'decoder':20s} {'decode kpx/s':>12s} {'x ReLU':>7s} {'whole kpx/s':>11s} {'x ReLU':>7s}")
    for scale in (float(s) for s in args.scales.split(",")):
        lr = lr_image(args.output, scale)
        out_hw = (round(lr.shape[-2] * scale), round(lr.shape[-1] * scale))
        pixels = out_hw[0] * out_hw[1]
        for precision in args.precisions.split(","):
            whole = {name: float("inf") for name in models}
            encoder = {name: float("inf") for name in models}
            for _ in range(args.repeats):  # interleaved rounds
                for name, model in models.items():
                    with torch.inference_mode():
                        whole[name] = min(whole[name], best_seconds(lambda: upscale_tensor(model, lr, out_hw, precision=precision), 1))
                        with autocast(torch.device("cpu"), precision):
                            encoder[name] = min(encoder[name], best_seconds(lambda: model.encode(normalise(lr)), 1))
            decode = {name: max(whole[name] - encoder[name], 1e-9) for name in models}
            for name in models:
                print(f"{scale:>5g} {precision:>9s} {name:20s} {pixels / decode[name] / 1e3:>12.0f} "
                      f"{decode[BASELINE] / decode[name]:>6.1f}x {pixels / whole[name] / 1e3:>11.0f} "
                      f"{whole[BASELINE] / whole[name]:>6.1f}x")


if __name__ == "__main__":
    main()
