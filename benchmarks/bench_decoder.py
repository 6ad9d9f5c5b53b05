"""Fast decoder against the literal LIIF formulation: output kilopixels per second.

Both paths run the same EDSR-LIIF weights on the same real LR crops, in one process,
interleaved, so machine noise hits both alike; each figure is the best of --repeats.
The literal path decodes in chunks of 30,000 queries as LIIF's `batched_predict`
does, and also, to separate the formulation's gain from the chunking's, in small
chunks of 1,024 queries; ours goes through `upscale_tensor` with its default chunking.
Outputs are about --output (default 256x256) at every scale, so that each row measures
a comparable amount of decoding; the LR input is the bundled photograph resized to
output / scale. On CUDA, TF32 is off: fp32 is fp32.

    python benchmarks/bench_decoder.py [--scales 2,4,12,30] [--repeats 3] [--device cpu]
    python benchmarks/bench_decoder.py --device cuda --scales 4 --output 3840x2160
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from liifsr.allocator import keep_freed_memory
from liifsr.coords import cell_size, denormalise, make_coord, normalise
from liifsr.imageio import sample_image
from liifsr.models import model_preset
from liifsr.models.liif import LIIF
from liifsr.reference import literal_query
from liifsr.runtime import machine_summary
from liifsr.tiling import upscale_tensor

SAMPLE = sample_image()


def literal_upscale(model: LIIF, lr: torch.Tensor, size: tuple[int, int], chunk: int = 30000) -> torch.Tensor:
    inp = normalise(lr)
    coord = make_coord(size, lr.device).unsqueeze(0)
    cell = cell_size(size, lr.device).expand_as(coord)
    with torch.no_grad():
        feat = model.encode(inp)  # once per image, as LIIF's gen_feat
        preds = [
            literal_query(model, inp, coord[:, i : i + chunk], cell[:, i : i + chunk], feat) for i in range(0, coord.shape[1], chunk)
        ]
    return denormalise(torch.cat(preds, dim=1)).clamp(0, 1)


def best_time(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="2,4,12,30")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default="256x256", help="output WIDTHxHEIGHT (about; the LR is output / scale)")
    args = parser.parse_args()
    keep_freed_memory()  # as every liifsr command does
    device = torch.device(args.device)
    out_w, out_h = (int(n) for n in args.output.lower().split("x"))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = LIIF(model_preset("edsr-liif-relu")).to(device).eval()
    photo = Image.open(SAMPLE).convert("RGB")

    print(f"{machine_summary()}; device: {device}")
    print("| scale | LR | output | precision | literal kpx/s (30k chunks) | literal kpx/s (1k chunks) | fast kpx/s "
          "| fast / literal fp32 | fast / literal same precision | fast / literal 1k chunks |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for scale in [float(s) for s in args.scales.split(",")]:
        lr_w, lr_h = max(4, round(out_w / scale)), max(4, round(out_h / scale))
        image = np.asarray(photo.resize((lr_w, lr_h), Image.BICUBIC), dtype=np.float32) / 255
        lr = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).contiguous().to(device)
        size = (round(lr_h * scale), round(lr_w * scale))
        kpx = size[0] * size[1] / 1000
        literal_fp32 = None
        for precision in ("fp32", "bf16"):
            autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
            with autocast:
                literal_upscale(model, lr, size)  # warm-up
                literal = best_time(lambda: literal_upscale(model, lr, size), args.repeats, device)
                literal_small = best_time(lambda: literal_upscale(model, lr, size, chunk=1024), args.repeats, device)
            fast_fn = lambda: upscale_tensor(model, lr, size, precision=precision)  # noqa: E731
            fast_fn()
            fast = best_time(fast_fn, args.repeats, device)
            literal_fp32 = literal_fp32 or literal
            print(
                f"| x{scale:g} | {lr_w}x{lr_h} | {size[1]}x{size[0]} | {precision} | {kpx / literal:.0f} | {kpx / literal_small:.0f} "
                f"| {kpx / fast:.0f} | {literal_fp32 / fast:.2f}x | {literal / fast:.2f}x | {literal_small / fast:.2f}x |"
            )


if __name__ == "__main__":
    main()
