"""The training loader: the epoch's order split across processes (`EpochSampler`), its batches,
and workers that die with the run."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Iterator
from typing import cast

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from liifsr.data.config import DataError
from liifsr.data.sampling import LIIFTrainSet, SampleKey


class EpochSampler(Sampler[SampleKey]):
    """DistributedSampler's shuffled order and rank split, as (epoch, index) keys.

    The epoch travels with every index, so persistent workers need no epoch updates.
    """

    def __init__(self, length: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        # the sampler reads only the dataset's length: a range stands for it
        self.inner: DistributedSampler[int] = DistributedSampler(
            cast("Dataset[int]", range(length)), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[SampleKey]:
        epoch = self.epoch
        return ((epoch, index) for index in self.inner)


def iterations_per_epoch(samples: int, batch_size: int, world_size: int = 1) -> int:
    """Iterations of `make_train_loader` per epoch: every process drops its last partial batch."""
    return (samples // world_size) // (batch_size // world_size)


def die_with_parent(parent: int, worker_id: int) -> None:
    """A DataLoader worker's `worker_init_fn`: on Linux, have the kernel SIGKILL this worker
    when the thread that made it (the training loop's, the main thread) ends, SIGKILL of
    the run included. torch's workers otherwise notice only between samples, and a long
    one keeps an orphan computing for nothing meanwhile."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1  # <linux/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the request: the kernel will not say so
        os._exit(1)


def make_train_loader(
    dataset: LIIFTrainSet, batch_size: int, num_workers: int, rank: int = 0, world_size: int = 1, pin_memory: bool = False
) -> torch.utils.data.DataLoader:
    """A loader of local batches (batch_size is the global batch, split over processes).
    Its workers die with the process iterating it (`die_with_parent`): iterate it on the
    thread that lives as long as they should (a persistent worker is made on first use)."""
    if batch_size % world_size:
        raise DataError(f"batch_size {batch_size} is not divisible by the {world_size} processes")
    local_batch = batch_size // world_size
    sampler = EpochSampler(len(dataset), dataset.seed, rank, world_size)
    if len(sampler) < local_batch:
        raise DataError(f"an epoch has {len(dataset)} samples, fewer than one batch of {batch_size}; raise data.repeat")
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=local_batch,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=True,  # same full global batches whatever the number of processes
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        worker_init_fn=functools.partial(die_with_parent, os.getpid()),
    )
