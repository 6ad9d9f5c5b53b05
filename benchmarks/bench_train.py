"""Training iterations per second: our fast decoder against the literal LIIF formulation.

One training iteration = forward, L1 loss, backward and Adam step on a batch of 16
LIIF samples (48 x 48 LR patches, 2,304 HR queries each, scales U(1, 4)) cut from the
bundled sample image by the real sampler. Both formulations train the same
EDSR-LIIF (preset edsr-liif-relu) from the same initial weights, in one process,
in fp32 and under bf16 autocast. The two formulations' iterations alternate, so that
load from other processes hits both alike; each figure is the median of --iters
timed iterations after --warmup untimed ones.

    python benchmarks/bench_train.py [--iters 5] [--warmup 2] [--device cpu] [--preset edsr-liif-relu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from liifsr.allocator import keep_freed_memory
from liifsr.coords import normalise
from liifsr.data import DataConfig, ImageFolder, LIIFTrainSet
from liifsr.imageio import sample_image
from liifsr.models import model_preset
from liifsr.models.liif import LIIF
from liifsr.reference import literal_query
from liifsr.runtime import autocast, machine_summary

SAMPLE = sample_image()
Forward = Callable[[LIIF, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
FORMULATIONS: dict[str, Forward] = {
    "literal LIIF": literal_query,
    "ours (fast decoder)": lambda model, inp, coord, cell: model(inp, coord, cell),
}


def real_batch(batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    dataset = LIIFTrainSet(ImageFolder([SAMPLE]), DataConfig(repeat=batch_size), seed=0)
    samples = [dataset[(1, index)] for index in range(batch_size)]
    return {key: torch.stack([s[key] for s in samples]).to(device) for key in samples[0]}


def training_step(forward: Forward, model: LIIF, optimizer: torch.optim.Optimizer,
                  batch: dict[str, torch.Tensor], precision: str) -> float:
    """Seconds for one forward, L1 loss, backward and Adam step."""
    device = batch["inp"].device
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with autocast(device, precision):
        pred = forward(model, normalise(batch["inp"]), batch["coord"], batch["cell"])
    loss = F.l1_loss(pred.float(), normalise(batch["gt"]))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def compare(initial: dict[str, torch.Tensor], preset: str, batch: dict[str, torch.Tensor], precision: str,
            warmup: int, iters: int) -> dict[str, float]:
    """Median seconds per iteration of each formulation, their iterations interleaved
    so that load from other processes hits both alike."""
    runs = {}
    for name in FORMULATIONS:
        model = LIIF(model_preset(preset)).to(batch["inp"].device)
        model.load_state_dict(initial)
        runs[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-4))
    times: dict[str, list[float]] = {name: [] for name in FORMULATIONS}
    for step in range(warmup + iters):
        for name, forward in FORMULATIONS.items():
            seconds = training_step(forward, *runs[name], batch, precision)
            if step >= warmup:
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="edsr-liif-relu")
    args = parser.parse_args()
    keep_freed_memory()  # as every liifsr command does
    device = torch.device(args.device)

    torch.manual_seed(0)
    initial = LIIF(model_preset(args.preset)).state_dict()
    batch = real_batch(args.batch, device)
    print(machine_summary())
    print(f"{args.preset}, batch {args.batch}, 48x48 LR, 2304 queries; {device}; "
          f"median of {args.iters} iterations after {args.warmup} warm-up")

    results: dict[tuple[str, str], float] = {}
    for precision in ("fp32", "bf16"):
        for name, seconds in compare(initial, args.preset, batch, precision, args.warmup, args.iters).items():
            results[name, precision] = seconds

    literal_fp32 = results["literal LIIF", "fp32"]
    print("| formulation | precision | s / iteration | iterations / s | speed-up vs literal (same precision) | vs literal fp32 |")
    print("|---|---|---|---|---|---|")
    for (name, precision), seconds in results.items():
        same = results["literal LIIF", precision]
        print(f"| {name} | {precision} | {seconds:.3f} | {1 / seconds:.2f} | {same / seconds:.2f}x | {literal_fp32 / seconds:.2f}x |")


if __name__ == "__main__":
    main()
