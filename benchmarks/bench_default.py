"""The README's quick start with today's default model in fp32 against the new default in
`--precision auto`, side by side in one run on this machine: whole commands, wall time.

The job is `liifsr upscale src/liifsr/assets/astronaut.png --scale 3.5 -o OUT.png`
(512x512 -> 1792x1792), run as a user runs it, in a subprocess (start-up, model load,
image read, upscale and PNG writing included):
- before: `--model edsr-liif-relu-skip-shared --precision fp32` (the default);
- after: the README's command as it stands, `--precision` left at its default (auto), with
  `--model` naming the new default (default: `liifsr.zoo.DEFAULT_MODEL` once it is not
  today's, until then its stand-in `edsr-thermal`; the option is left out of the command
  when it names DEFAULT_MODEL, so that the command is the README's own).
The two alternate over --repeats rounds (after one warm-up run each, so that the page cache
holds torch and the weights for both), each figure the best of its runs, and the ratio
is printed beside the CPU, its bf16 instructions and what auto picks on it. The target
is at least 8x less wall time on a CPU with AMX or AVX512_BF16, at least 4x on one without.
On a machine that other jobs share, the figures are noise: measure on an idle one.

    python benchmarks/bench_default.py [--repeats 3] [--model edsr-thermal] [--threads 0]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_breakdown import command_seconds, threads_env, upscale_command  # this folder's: run as `python benchmarks/...`

from liifsr.imageio import sample_image
from liifsr.runtime import auto_precision_here, machine_summary, native_bf16, resolve_device
from liifsr.zoo import DEFAULT_MODEL

TODAYS_DEFAULT = "edsr-liif-relu-skip-shared"  # the default model
STAND_IN = "edsr-thermal"  # the new default's architecture, until its trained weights are the default
README_IMAGE = Path("src/liifsr/assets/astronaut.png")  # how the README names `sample_image()`
QUICK_START_SCALE = 3.5
# The target: wall time of before / after on CPUs with native bf16, and on others.
TARGET_WITH_BF16, TARGET_WITHOUT = 8.0, 4.0


def new_default() -> str:
    """The model the new default is measured with: DEFAULT_MODEL once it is not today's."""
    return DEFAULT_MODEL if DEFAULT_MODEL != TODAYS_DEFAULT else STAND_IN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each command (after a warm-up run)")
    parser.add_argument("--model", default=new_default(), help=f"the new default (default: {new_default()})")
    parser.add_argument("--baseline", default=TODAYS_DEFAULT, help=f"today's default (default: {TODAYS_DEFAULT})")
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS of the commands (0: PyTorch's, one per core)")
    args = parser.parse_args()
    env = threads_env(args.threads)
    image = sample_image()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.png"
        commands = {
            f"before: {args.baseline}, fp32": upscale_command(image, QUICK_START_SCALE, out, args.baseline, "fp32"),
            f"after: {args.model}, auto": upscale_command(image, QUICK_START_SCALE, out,
                                                           None if args.model == DEFAULT_MODEL else args.model),
        }
        for command in commands.values():  # warm-up: the page cache, for both alike
            command_seconds(command, env)
        seconds = {name: float("inf") for name in commands}
        peaks = dict.fromkeys(commands, 0)
        for _ in range(args.repeats):  # alternating rounds: machine noise hits both alike
            for name, command in commands.items():
                elapsed, peak = command_seconds(command, env)
                seconds[name], peaks[name] = min(seconds[name], elapsed), max(peaks[name], peak)
    before, after = seconds.values()
    native = native_bf16(resolve_device("auto")) is not None  # the commands' device: --device auto
    target = TARGET_WITH_BF16 if native else TARGET_WITHOUT
    print(machine_summary())
    print(f"--precision auto here: {auto_precision_here()}")
    print(f"job: liifsr upscale {README_IMAGE} --scale {QUICK_START_SCALE:g} -o OUT.png (512x512 -> 1792x1792); "
          f"whole commands, best of {args.repeats}, threads: {args.threads or 'PyTorch default'}\n")
    print("| command | seconds | peak RSS MiB |")
    print("|---|---|---|")
    for name, command in commands.items():
        shown = " ".join(["liifsr", *command[3:]]).replace(str(out), "OUT.png").replace(str(image), str(README_IMAGE))
        print(f"| {name}: `{shown}` "
              f"| {seconds[name]:.2f} | {peaks[name] / 2**20:.0f} |")
    print(f"\nbefore / after: {before / after:.2f}x less wall time (the target: >= {target:g}x on a CPU "
          f"{'with' if native else 'without'} native bf16: {'met' if before / after >= target else 'NOT met'})")


if __name__ == "__main__":
    main()
