"""Peak memory of `liifsr upscale` against the output size: bytes per output pixel.

Each size runs as its own process (`python -m liifsr upscale ...`), so its peak
resident memory (ru_maxrss from wait4) is that job's alone. Bytes per output pixel is
the slope between consecutive sizes: (peak_b - peak_a) / (pixels_b - pixels_a), which
cancels what every run holds anyway (Python, torch, the model, the input).

    python benchmarks/bench_memory.py [--sizes 1000x1000,2000x2000] [--model NAME_OR_FILE]
                                      [--input IMAGE] [--format png] [--threads 2] [--chunk N]

`--model` defaults to the bundled default model. `--tiny` writes and uses a small
random model (EDSR 2 blocks x 8 features, ReLU MLP [32, 32]): memory depends on the
output size, not on the weights, and it decodes many times faster than the default model.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_rss(command: list[str], env: dict[str, str]) -> tuple[int, float]:
    """(peak resident bytes, seconds) of one child process; fails loudly if it fails."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
    return usage.ru_maxrss * 1024, seconds  # ru_maxrss is in KiB on Linux


def write_tiny_model(path: Path) -> None:
    import torch

    from liifsr.checkpoint import save_model
    from liifsr.models import ModelConfig
    from liifsr.models.edsr import EDSRConfig
    from liifsr.models.liif import LIIF, LIIFConfig

    torch.manual_seed(0)
    save_model(LIIF(ModelConfig(EDSRConfig(n_resblocks=2, n_feats=8), LIIFConfig(hidden=[32, 32]))), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000x1000,2000x2000", help="output sizes HEIGHTxWIDTH, comma-separated")
    parser.add_argument("--model", default=None, help="model name or file (default: the bundled default)")
    parser.add_argument("--tiny", action="store_true", help="use a small random model (see the docstring)")
    parser.add_argument("--input", default=None, help="input image (default: the bundled 512x512 sample)")
    parser.add_argument("--format", default="png", help="output extension (png streams; others hold the image)")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the runs")
    parser.add_argument("--chunk", type=int, default=None, help="--chunk of the runs (default: liifsr's)")
    args = parser.parse_args()

    from liifsr.imageio import sample_image
    from liifsr.runtime import machine_summary

    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if args.tiny:
            model = str(Path(folder) / "tiny.safetensors")
            write_tiny_model(Path(model))
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        print(f"{machine_summary()} (this process); the runs: OMP_NUM_THREADS={args.threads}")
        results = []
        for size in args.sizes.split(","):
            height, width = (int(n) for n in size.lower().split("x"))
            out = Path(folder) / f"out.{args.format}"
            command = [sys.executable, "-m", "liifsr", "upscale", args.input or str(sample_image()),
                       "--size", f"{height}x{width}", "-o", str(out), "--allow-huge"]
            if model:
                command += ["--model", model]
            if args.chunk:
                command += ["--chunk", str(args.chunk)]
            peak, seconds = peak_rss(command, env)
            results.append((height * width, peak))
            print(f"output {height}x{width} ({height * width / 1e6:.1f} MP): peak RSS {peak / 2**20:.0f} MiB, {seconds:.0f} s",
                  flush=True)
            out.unlink(missing_ok=True)
        for (pixels_a, peak_a), (pixels_b, peak_b) in zip(results, results[1:]):
            slope = (peak_b - peak_a) / (pixels_b - pixels_a)
            print(f"{pixels_a / 1e6:.1f} -> {pixels_b / 1e6:.1f} MP: {slope:.1f} bytes per output pixel")


if __name__ == "__main__":
    main()
