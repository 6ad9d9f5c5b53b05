"""One training process or one of N started by torchrun: devices, ranks, reductions, logging."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from liifsr.runtime import launched_ranks, resolve_device


@dataclass
class DistEnv:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> DistEnv:
    """One process, or one of WORLD_SIZE processes started by torchrun (env:// init)."""
    _, world_size, local_rank = launched_ranks()
    device = resolve_device(device_name, local_rank or 0)
    if world_size == 1:
        return DistEnv(0, 1, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://")
    return DistEnv(dist.get_rank(), world_size, device)


def all_reduce_sum(values: list[float], env: DistEnv) -> list[float]:
    if env.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=env.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def log(message: str, env: DistEnv) -> None:
    if env.is_main:
        print(f"liifsr train: {message}", file=sys.stderr, flush=True)
