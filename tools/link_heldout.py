"""Link the images that a training config holds out for validation into one folder, as
<image folder>-<file name>: the HR images of a `liifsr evaluate --dataset`.

    python tools/link_heldout.py CONFIG TARGET_DIR [--train-dirs DIR ...]

--train-dirs replaces the config's `data.train_dirs` (the same folders elsewhere, e.g. a
copy of ../shared/data/train); the held-out split is the config's all the same.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from liifsr.config import load_yaml
from liifsr.data import split_paths
from liifsr.training.config import TrainConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a training config (YAML)")
    parser.add_argument("target", type=Path, help="the folder to link the held-out images into")
    parser.add_argument("--train-dirs", nargs="+", help="the training folders, instead of the config's")
    args = parser.parse_args(argv)
    config = load_yaml(TrainConfig, args.config)
    if args.train_dirs:
        config.data.train_dirs = args.train_dirs
    args.target.mkdir(parents=True, exist_ok=True)
    for path in split_paths(config.data)[1]:
        link = args.target / f"{path.parent.name}-{path.name}"
        if not link.exists():
            link.symlink_to(path.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
