"""`liifsr train CONFIG --out DIR`: train a model from a YAML config (`liifsr.training`), in a
run folder that `liifsr.training.runfolder` checks and locks while the run owns it."""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist

from liifsr.commands.options import add_runtime_options
from liifsr.config import load_yaml
from liifsr.data import split_paths
from liifsr.runtime import check_precision
from liifsr.training.config import TrainConfig, check_config
from liifsr.training.distributed import init_distributed
from liifsr.training.loop import train
from liifsr.training.runfolder import check_out, hold_run_folder


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML training config (see configs/)")
    parser.add_argument("--out", required=True, help="run folder for checkpoints and logs")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optim.lr=2e-4 (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in OUT from its last checkpoint (starts afresh if OUT has none)")
    add_runtime_options(parser, overrides_config=True)
    parser.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    parser.add_argument("--workers", type=int, help="DataLoader workers per process (overrides num_workers)")
    parser.add_argument("--threads", type=int, help="CPU threads per process (overrides threads; 0 = all cores)")


def load_train_config(args: argparse.Namespace) -> TrainConfig:
    config = load_yaml(TrainConfig, args.config, args.overrides)
    cli = {"precision": args.precision, "compile": args.compile, "device": args.device, "val_chunk": args.chunk,
           "val_tile": args.tile,
           "num_workers": args.workers, "threads": args.threads}
    config = replace(config, **{key: value for key, value in cli.items() if value is not None})
    check_config(config)
    return config


def run(args: argparse.Namespace) -> int:
    config = load_train_config(args)
    check_out(Path(args.out))
    split_paths(config.data)  # image folders that are missing or hold no images: refused before the run folder is made
    if config.threads:
        torch.set_num_threads(config.threads)
    env = init_distributed(config.device)
    if env.is_main:
        check_precision(env.device, config.precision)
    try:
        with hold_run_folder(Path(args.out)) if env.is_main else contextlib.nullcontext():
            train(config, Path(args.out), env, resume=args.resume)
        if env.world_size > 1:
            dist.barrier()  # leave together: tearing gloo down while a peer still talks can abort it
    finally:
        if env.world_size > 1:
            dist.destroy_process_group()
    return 0
