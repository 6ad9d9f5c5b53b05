"""Held-out validation PSNR of any models, measured as `liifsr train` measures its runs'.

    python tools/heldout_psnr.py CONFIG MODEL [MODEL ...]

CONFIG names the training folders and the held-out images (`data.val_count`,
`data.val_max_size`, `val_scales`); each MODEL (a bundled name or a model file) is scored
by `liifsr.training.loop.validate`: mean RGB PSNR, shave = scale, per scale and their mean,
so that bundled models compare on today's held-out images with today's code.
"""

from __future__ import annotations

import argparse
import sys

import torch

from liifsr.config import load_yaml
from liifsr.data import ImageFolder, split_paths
from liifsr.training.config import TrainConfig
from liifsr.training.distributed import DistEnv
from liifsr.training.loop import validate
from liifsr.zoo import load_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a training config (YAML) whose held-out images to score on")
    parser.add_argument("models", nargs="+", help="bundled model names or model files")
    args = parser.parse_args()
    config = load_yaml(TrainConfig, args.config)
    images = ImageFolder(split_paths(config.data)[1], cache=True)
    env = DistEnv(0, 1, torch.device("cpu"))
    for name in args.models:
        scores = validate(load_model(name), images, config, env)
        per_scale = ", ".join(f"x{scale} {value:.2f}" for scale, value in scores.items())
        print(f"{name}: {sum(scores.values()) / len(scores):.2f} dB ({per_scale}; {len(images)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
