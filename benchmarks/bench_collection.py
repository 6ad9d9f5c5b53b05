"""Images per second of `liifsr upscale DIR` with 1 process and with N under torchrun.

Writes a folder of 128 x 128 crops of the bundled photograph, upscales it x2 with the
default model as one process (all threads) and as `torchrun --standalone
--nproc_per_node N -m liifsr upscale` (N processes of threads / N each), side by side in
one run, and prints wall-clock images per second (whole commands: start-up included) and
the ratio. On a GPU machine, --device cuda gives each process its own GPU.

    python benchmarks/bench_collection.py [--images 16] [--processes 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from liifsr.imageio import sample_image
from liifsr.runtime import machine_summary


def timed(command: list[str], threads: int) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(machine_summary())
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "in").mkdir()
        photo = Image.open(sample_image()).convert("RGB")
        for index in range(args.images):
            x, y = (index * 23) % 384, (index * 41) % 384
            photo.crop((x, y, x + 128, y + 128)).save(root / "in" / f"{index:03d}.png")
        upscale = ["-m", "liifsr", "upscale", str(root / "in"), "--scale", "2", "--device", args.device]
        one = timed([sys.executable, *upscale, "--out-dir", str(root / "one")], cores)
        many = timed([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                      str(args.processes), *upscale, "--out-dir", str(root / "many")], max(1, cores // args.processes))
    print(f"\n{args.images} images of 128x128 -> 256x256, device {args.device}\n")
    print("| processes | threads each | seconds | images/s |")
    print("|---|---|---|---|")
    print(f"| 1 | {cores} | {one:.1f} | {args.images / one:.2f} |")
    print(f"| {args.processes} (torchrun) | {max(1, cores // args.processes)} | {many:.1f} | {args.images / many:.2f} |")
    print(f"\n{args.processes} processes / 1: {one / many:.2f}x")


if __name__ == "__main__":
    main()
