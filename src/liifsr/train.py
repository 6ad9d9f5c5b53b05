"""`liifsr train CONFIG --out DIR`: LIIF's training loop, resumable and distributed.

L1 loss on normalised RGB ((x - 0.5) / 0.5, LIIF's data_norm), Adam, a per-epoch
schedule (MultiStepLR, or cosine), validation PSNR (RGB, shave = scale) every
`val_every` epochs.

Files in OUT:
    last.safetensors         the weights after the last epoch: the run's result, the
                             checkpoint LIIF reports (`liifsr upscale --model` reads it)
    best.safetensors         the weights with the best mean validation PSNR so far, on
                             the held-out images (never a benchmark set)
    last.state.safetensors   everything `--resume` needs: model, Adam state, scheduler
                             progress, RNG states, epoch, best PSNR, as tensors plus JSON
                             metadata, so loading it never runs code
    log.csv                  one row per epoch (epoch, lr, train_loss, val_psnr, seconds...);
                             the state file holds the same rows, and a resume rewrites
                             log.csv from them, so a stop between writing the two loses
                             no row and repeats none
    tensorboard/             TensorBoard event files
    config.yaml              the resolved config of the run

Every file is written atomically (temporary file, then os.replace). Resuming restores
the exact state after the last saved epoch, and the data of every sample depends only
on (seed, epoch, index) (see liifsr.data), so an interrupted and resumed run ends with
the same weights as an uninterrupted one on the same device and thread count.

Distributed: `torchrun --nproc_per_node N -m liifsr train ...` runs N processes
(DistributedDataParallel; NCCL on GPUs, gloo on CPUs). `batch_size` stays the global
batch; each process takes batch_size / N samples of the same global batches, and only
process 0 writes logs and checkpoints.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from liifsr.checkpoint import save_model
from liifsr.config import (
    ConfigError,
    ModelConfig,
    TrainConfig,
    check_model_config,
    dump_yaml,
    load_yaml,
    model_preset,
    to_dict,
)
from liifsr.coords import normalise
from liifsr.data import (
    ImageFolder,
    LIIFTrainSet,
    check_data_config,
    iterations_per_epoch,
    make_train_loader,
    split_paths,
    validation_pair,
)
from liifsr.files import atomic_write
from liifsr.inference import upscale_tensor
from liifsr.liif import LIIF
from liifsr.metrics import psnr
from liifsr.progress import progress_bar
from liifsr.runtime import add_runtime_options, autocast, launched_ranks, resolve_device, check_precision

STATE_FORMAT = "liifsr-train-state/1"
LAST, BEST, STATE = "last.safetensors", "best.safetensors", "last.state.safetensors"
LOG_COLUMNS = ["epoch", "lr", "train_loss", "val_psnr", "seconds", "data_seconds"]
SCHEDULES = ("step", "cosine")
# Scheduler entries that record progress; the rest (milestones, gamma...) come from the config.
_ADAM_STATE = {"step", "exp_avg", "exp_avg_sq"}  # what Adam keeps for every parameter it has updated
_SCHEDULER_PROGRESS = ("last_epoch", "_step_count", "_last_lr", "_is_initial", "_get_lr_called_within_step")


class TrainError(ValueError):
    """A training setup the user has to fix (bad option, existing run, ...)."""


# --- command line -------------------------------------------------------------------


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
    cli = {"precision": args.precision, "compile": args.compile, "device": args.device,
           "num_workers": args.workers, "threads": args.threads}
    config = replace(config, **{key: value for key, value in cli.items() if value is not None})
    check_config(config)
    return config


TRAIN_PRECISIONS = ("fp32", "bf16")


def check_config(config: TrainConfig) -> None:
    if config.precision not in TRAIN_PRECISIONS:
        raise ConfigError(f"precision must be one of {TRAIN_PRECISIONS}, got {config.precision!r}"
                          + (" (fp16 training needs loss scaling, which liifsr does not do: use bf16)" if config.precision == "fp16" else ""))
    if config.optim.schedule not in SCHEDULES:
        raise ConfigError(f"optim.schedule must be one of {SCHEDULES}, got {config.optim.schedule!r}")
    if config.epochs < 1 or config.batch_size < 1 or config.val_every < 1 or config.save_every < 1:
        raise ConfigError("epochs, batch_size, val_every and save_every must be positive")
    if config.threads < 0 or config.num_workers < 0:
        raise ConfigError("threads and num_workers must be >= 0")
    if any(scale < 1 for scale in config.val_scales):
        raise ConfigError(f"val_scales must be integers >= 1, got {config.val_scales}")
    if config.val_chunk < 0:
        raise ConfigError(f"val_chunk must be >= 0 (0 = automatic), got {config.val_chunk}")
    check_optim_config(config)
    check_data_config(config.data)
    check_model_config(resolve_model(config))  # an unknown preset or an impossible size fails here, before any work


def check_optim_config(config: TrainConfig) -> None:
    optim = config.optim
    if not (math.isfinite(optim.lr) and optim.lr > 0):
        raise ConfigError(f"optim.lr must be a positive number, got {optim.lr}")
    if not (math.isfinite(optim.min_lr) and 0 <= optim.min_lr <= optim.lr):
        raise ConfigError(f"optim.min_lr must be in [0, optim.lr = {optim.lr}], got {optim.min_lr}")
    if not 0 < optim.gamma <= 1:
        raise ConfigError(f"optim.gamma must be in (0, 1] (the factor applied to the learning rate), got {optim.gamma}")
    steps = optim.milestones
    if any(m < 1 for m in steps) or any(a >= b for a, b in zip(steps, steps[1:])):
        raise ConfigError(f"optim.milestones must be increasing positive epochs, got {steps}")


def resolve_model(config: TrainConfig) -> ModelConfig:
    return model_preset(config.model) if isinstance(config.model, str) else config.model


def run(args: argparse.Namespace) -> int:
    config = load_train_config(args)
    check_out(Path(args.out))
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


LOCK = ".liifsr-train.lock"


@contextlib.contextmanager
def hold_run_folder(out: Path) -> Iterator[None]:
    """Own run folder `out` while the block runs: an OS lock (flock) on `out/.liifsr-train.lock`,
    so that a second `liifsr train --out` into it (with or without --resume) is refused
    instead of mixing two runs' checkpoints and logs. The OS releases the lock on any exit,
    SIGKILL included, so a lock left by a killed run is no obstacle. Where the OS has no
    flock (Windows), runs are not locked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            raise TrainError(f"run folder {str(out)!r} is in use by a running `liifsr train` ({owner}); wait for it "
                             "to finish or stop it, or train into another --out") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        yield


def check_out(out: Path) -> None:
    """The run folder must be a folder (or not exist yet, inside an existing one)."""
    if out.exists() and not out.is_dir():
        raise TrainError(f"--out {str(out)!r} is a file, not a folder (give a new or existing run folder)")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise TrainError(f"--out {str(out)!r}: {str(parent)!r} is a file, not a folder")


# --- devices and processes ----------------------------------------------------------


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


# --- optimisation -------------------------------------------------------------------


def make_optimizer(model: nn.Module, config: TrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    if config.optim.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=config.optim.min_lr)
    else:
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=config.optim.milestones, gamma=config.optim.gamma)
    return optimizer, scheduler


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, Tensor], precision: str) -> Tensor:
    """One Adam step on a batch of [0, 1] samples; returns the (detached) L1 loss."""
    device = batch["inp"].device
    with autocast(device, precision):
        pred = model(normalise(batch["inp"]), batch["coord"], batch["cell"])
    loss = F.l1_loss(pred.float(), normalise(batch["gt"]))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


@dataclass
class EpochStats:
    loss: float
    data_seconds: float  # time spent waiting for the DataLoader
    seconds: float


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader: Any, epoch: int,
                config: TrainConfig, env: DistEnv) -> EpochStats:
    """One epoch; the loss is averaged over iterations and processes."""
    model.train()
    loader.sampler.set_epoch(epoch)
    start = time.perf_counter()
    data_seconds, total, steps = 0.0, torch.zeros((), device=env.device), 0
    bar = progress_bar(total=len(loader), desc=f"epoch {epoch}/{config.epochs}", unit="it",
                       enabled=None if env.is_main else False)
    iterator = iter(loader)
    while True:
        waited = time.perf_counter()
        batch = next(iterator, None)
        data_seconds += time.perf_counter() - waited
        if batch is None:
            break
        batch = {key: value.to(env.device, non_blocking=True) for key, value in batch.items()}
        total += train_step(model, optimizer, batch, config.precision)
        steps += 1
        bar.update()
        if steps % 10 == 0 and env.is_main:  # reading the loss syncs a GPU: not every step
            bar.set_postfix(loss=f"{float(total) / steps:.4f}")
    bar.close()
    loss_sum, step_sum = all_reduce_sum([float(total), float(steps)], env)
    return EpochStats(loss_sum / max(step_sum, 1), data_seconds, time.perf_counter() - start)


# --- validation ---------------------------------------------------------------------


def validate(model: LIIF, images: ImageFolder, config: TrainConfig, env: DistEnv) -> dict[int, float]:
    """Mean RGB PSNR (shave = scale) per validation scale; images are shared out over processes."""
    model.eval()
    sums = [0.0] * len(config.val_scales)
    for index in range(env.rank, len(images), env.world_size):
        for k, scale in enumerate(config.val_scales):
            lr, hr = validation_pair(images[index], scale, config.data.lr_resize, config.data.val_max_size)
            with torch.inference_mode():  # whole image, `val_chunk` queries per decoder call
                sr = upscale_tensor(model, lr.unsqueeze(0), tuple(hr.shape[-2:]), chunk_size=config.val_chunk or None)
            sums[k] += psnr(sr.cpu(), hr.unsqueeze(0), "rgb", scale)
    sums = all_reduce_sum(sums, env)
    model.train()
    return {scale: total / len(images) for scale, total in zip(config.val_scales, sums)}


# --- run state and checkpoints ------------------------------------------------------


@dataclass
class Progress:
    epoch: int = 0  # completed epochs
    best_psnr: float = -math.inf
    best_epoch: int = 0
    # log.csv's rows up to `epoch`; None for a state written before they were kept in it.
    log: list[dict[str, Any]] | None = field(default_factory=list)


def save_state(path: Path, model: LIIF, optimizer: torch.optim.Optimizer, scheduler: Any,
               progress: Progress, config: TrainConfig) -> None:
    """Everything needed to resume, as safetensors tensors plus JSON metadata."""
    tensors = {f"model.{key}": value.detach().cpu().clone() for key, value in model.state_dict().items()}
    optim_state = optimizer.state_dict()
    for index, entries in optim_state["state"].items():
        for key, value in entries.items():
            if not torch.is_tensor(value):
                raise TypeError(f"optimizer state {key!r} is not a tensor")  # Adam's never is
            tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().clone()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    scheduler_state = {key: value for key, value in scheduler.state_dict().items() if key in _SCHEDULER_PROGRESS}
    metadata = {
        "format": STATE_FORMAT,
        "epoch": str(progress.epoch),
        "best_psnr": json.dumps(progress.best_psnr if math.isfinite(progress.best_psnr) else None),
        "best_epoch": str(progress.best_epoch),
        "log": json.dumps(progress.log),
        "param_groups": json.dumps(optim_state["param_groups"]),
        "scheduler": json.dumps(scheduler_state),
        "config": json.dumps(to_dict(config)),
    }
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_state(path: Path, model: LIIF, optimizer: torch.optim.Optimizer, scheduler: Any) -> Progress:
    """Restore what `save_state` wrote into freshly built objects; returns the progress.

    A damaged file (truncated, empty, not safetensors, missing tensors or entries) is a
    TrainError naming it; the run is left as it is.
    """
    try:
        return _load_state(path, model, optimizer, scheduler)
    except TrainError:
        raise
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, IndexError, RuntimeError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else " ".join(str(error).split()) or type(error).__name__
        raise TrainError(f"cannot resume from {str(path)!r}: the file is damaged ({detail}); restore it, "
                         "or start a new run in another --out") from None


def _load_state(path: Path, model: LIIF, optimizer: torch.optim.Optimizer, scheduler: Any) -> Progress:
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("format") != STATE_FORMAT:
        raise TrainError(f"{str(path)!r} is not a liifsr training state")
    tensors = load_file(str(path))
    model_state = {key[len("model."):]: value for key, value in tensors.items() if key.startswith("model.")}
    try:
        model.load_state_dict(model_state)
    except RuntimeError:
        raise TrainError(f"the model in {str(path)!r} does not match the config's model; resume with the run's config") from None

    param_groups = json.loads(metadata["param_groups"])
    optim_state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value
    incomplete = [index for index, entries in optim_state.items() if _ADAM_STATE - entries.keys()]
    if incomplete:
        raise TrainError(f"cannot resume from {str(path)!r}: the file is damaged (the optimizer state of parameter "
                         f"{incomplete[0]} lacks {sorted(_ADAM_STATE - optim_state[incomplete[0]].keys())}); restore it, "
                         "or start a new run in another --out")
    optimizer.load_state_dict({"state": optim_state, "param_groups": param_groups})
    scheduler.load_state_dict({**scheduler.state_dict(), **json.loads(metadata["scheduler"])})

    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
    if cuda_states and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    best = json.loads(metadata["best_psnr"])
    rows = json.loads(metadata["log"]) if "log" in metadata else None
    return Progress(int(metadata["epoch"]), -math.inf if best is None else best, int(metadata["best_epoch"]), rows)


# --- logs ---------------------------------------------------------------------------


def log_columns(config: TrainConfig) -> list[str]:
    return LOG_COLUMNS + [f"val_psnr_x{scale}" for scale in config.val_scales]


def read_log(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if any(not str(row.get("epoch") or "").isdigit() for row in rows):
        raise TrainError(f"{str(path)!r} is damaged (a row without a whole epoch number); fix or delete it")
    return rows


@dataclass
class RunRecord:
    """A run folder as its files tell it: the config, the logged epochs, the data split."""

    config: TrainConfig
    rows: list[dict[str, str]]
    train_images: int
    val_images: int

    @property
    def finished(self) -> bool:
        return bool(self.rows) and int(self.rows[-1]["epoch"]) >= self.config.epochs

    @property
    def iterations_per_epoch(self) -> int:
        return iterations_per_epoch(self.train_images * self.config.data.repeat, self.config.batch_size)

    @property
    def minutes(self) -> float:
        """Minutes of the logged epochs (training and validation)."""
        return sum(float(row["seconds"]) for row in self.rows) / 60

    @property
    def median_epoch_seconds(self) -> float:
        """The median epoch's seconds: unlike `minutes`, not inflated by an epoch during which
        the process was stopped or the machine was busy with other work."""
        return statistics.median(float(row["seconds"]) for row in self.rows)


def read_run(out: Path) -> RunRecord:
    """The record of a run folder written by `liifsr train` (its config.yaml and log.csv)."""
    config = load_yaml(TrainConfig, out / "config.yaml")
    train_paths, val_paths = split_paths(config.data)
    return RunRecord(config, read_log(out / "log.csv"), len(train_paths), len(val_paths))


def write_log(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rewrite the whole CSV atomically (start of a run, or truncation on resume)."""
    with atomic_write(path) as tmp:
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, columns, restval="", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def append_log(path: Path, row: dict[str, Any], columns: list[str]) -> None:
    with path.open("a", newline="") as handle:
        csv.DictWriter(handle, columns, restval="", extrasaction="ignore").writerow(row)
        handle.flush()
        os.fsync(handle.fileno())


def format_row(epoch: int, lr: float, stats: EpochStats, psnrs: dict[int, float], seconds: float) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": epoch, "lr": f"{lr:.6g}", "train_loss": f"{stats.loss:.6f}",
                           "seconds": f"{seconds:.2f}", "data_seconds": f"{stats.data_seconds:.2f}"}
    if psnrs:
        row["val_psnr"] = f"{sum(psnrs.values()) / len(psnrs):.4f}"
        row.update({f"val_psnr_x{scale}": f"{value:.4f}" for scale, value in psnrs.items()})
    return row


def open_tensorboard(out: Path, resumed_epoch: int):
    from torch.utils.tensorboard import SummaryWriter

    # purge_step hides events a killed run logged after its last checkpoint.
    return SummaryWriter(str(out / "tensorboard"), purge_step=resumed_epoch + 1 if resumed_epoch else None)


# --- the run ------------------------------------------------------------------------


@dataclass
class Run:
    """What one training process holds."""

    config: TrainConfig
    out: Path
    env: DistEnv
    model: LIIF
    train_model: nn.Module  # the model as trained: maybe wrapped by DDP and/or compiled
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loader: Any
    val_images: ImageFolder
    progress: Progress = field(default_factory=Progress)


def build_run(config: TrainConfig, out: Path, env: DistEnv) -> Run:
    model_config = resolve_model(config)
    torch.manual_seed(config.seed)  # the same initial weights in every process
    model = LIIF(model_config).to(env.device)
    train_model: nn.Module = model
    if env.world_size > 1:
        device_ids = [env.device.index] if env.device.type == "cuda" else None
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if config.compile:
        train_model = torch.compile(train_model)
    optimizer, scheduler = make_optimizer(model, config)

    train_paths, val_paths = split_paths(config.data)
    min_side = config.data.patch_size
    train_images = ImageFolder(train_paths, config.data.cache, min_side, progress=env.is_main)
    val_images = ImageFolder(val_paths, cache=True)
    dataset = LIIFTrainSet(train_images, config.data, config.seed)
    loader = make_train_loader(dataset, config.batch_size, config.num_workers, env.rank, env.world_size,
                               pin_memory=env.device.type == "cuda")
    log(f"{model.num_parameters():,} parameters, {len(train_images)} training and {len(val_images)} validation "
        f"images, {len(loader)} iterations of {config.batch_size} per epoch, on {env.world_size} x {env.device}", env)
    return Run(config, out, env, model, train_model, optimizer, scheduler, loader, val_images)


def prepare_out(out: Path, run: Run, resume: bool) -> None:
    """Load the state to resume from, or refuse to overwrite a run; set up the CSV."""
    state = out / STATE
    columns = log_columns(run.config)
    if state.exists() and not resume:
        raise TrainError(f"{str(out)!r} already holds a run: add --resume to continue it, or choose another --out")
    if state.exists():
        run.progress = load_state(state, run.model, run.optimizer, run.scheduler)
        log(f"resuming after epoch {run.progress.epoch}", run.env)
    elif resume:
        log(f"nothing to resume in {str(out)!r}: starting a new run", run.env)
    if run.env.is_main:
        if run.progress.log is None:  # a state from before the rows were kept in it
            run.progress.log = [row for row in read_log(out / "log.csv") if int(row["epoch"]) <= run.progress.epoch]
        # The state's rows are the log: rows of epochs after the state are dropped (those
        # epochs run again) and a row the stopped run never appended comes back.
        write_log(out / "log.csv", run.progress.log, columns)
        with atomic_write(out / "config.yaml") as tmp:
            tmp.write_text(dump_yaml(replace(run.config, model=resolve_model(run.config))))


def end_of_epoch(run: Run, epoch: int, lr: float, stats: EpochStats, writer: Any, started: float) -> None:
    """Validate if due, then (process 0) checkpoints, CSV row and TensorBoard scalars."""
    config, last = run.config, epoch == run.config.epochs
    psnrs: dict[int, float] = {}
    if run.val_images and config.val_scales and (epoch % config.val_every == 0 or last):
        psnrs = validate(run.model, run.val_images, config, run.env)
    run.progress.epoch = epoch
    if not run.env.is_main:
        return
    mean_psnr = sum(psnrs.values()) / len(psnrs) if psnrs else None
    if mean_psnr is not None and mean_psnr > run.progress.best_psnr:
        run.progress.best_psnr, run.progress.best_epoch = mean_psnr, epoch
        save_model(run.model, run.out / BEST, metadata={"epoch": str(epoch), "val_psnr": f"{mean_psnr:.4f}"})
    row = format_row(epoch, lr, stats, psnrs, time.perf_counter() - started)
    run.progress.log.append(row)
    if epoch % config.save_every == 0 or last:
        save_model(run.model, run.out / LAST, metadata={"epoch": str(epoch)})
        save_state(run.out / STATE, run.model, run.optimizer, run.scheduler, run.progress, config)
    append_log(run.out / "log.csv", row, log_columns(config))
    writer.add_scalar("train/loss", stats.loss, epoch)
    writer.add_scalar("train/lr", lr, epoch)
    writer.add_scalar("time/epoch_seconds", time.perf_counter() - started, epoch)
    writer.add_scalar("time/data_seconds", stats.data_seconds, epoch)
    for scale, value in psnrs.items():
        writer.add_scalar(f"val/psnr_x{scale}", value, epoch)
    if mean_psnr is not None:
        writer.add_scalar("val/psnr", mean_psnr, epoch)
    writer.flush()
    psnr_text = f", val PSNR {mean_psnr:.2f} dB" if mean_psnr is not None else ""
    log(f"epoch {epoch}/{config.epochs}: loss {stats.loss:.4f}, lr {lr:.3g}{psnr_text}, "
        f"{time.perf_counter() - started:.0f} s ({stats.data_seconds:.1f} s waiting for data)", run.env)


def train(config: TrainConfig, out: Path, env: DistEnv, resume: bool = False) -> Progress:
    """Train (or continue training) the run in `out`; returns its final progress."""
    run = build_run(config, out, env)  # data errors surface before anything is written
    out.mkdir(parents=True, exist_ok=True)
    prepare_out(out, run, resume)
    if run.progress.epoch >= config.epochs:
        log(f"the run already finished its {config.epochs} epochs", env)
        return run.progress
    writer = open_tensorboard(out, run.progress.epoch) if env.is_main else None
    try:
        for epoch in range(run.progress.epoch + 1, config.epochs + 1):
            started = time.perf_counter()
            lr = run.optimizer.param_groups[0]["lr"]
            stats = train_epoch(run.train_model, run.optimizer, run.loader, epoch, config, env)
            run.scheduler.step()
            end_of_epoch(run, epoch, lr, stats, writer, started)
    finally:
        if writer is not None:
            writer.close()
    best = ""
    if run.progress.best_epoch:
        best = f"; best validation PSNR {run.progress.best_psnr:.2f} dB at epoch {run.progress.best_epoch} in {BEST}"
    log(f"done: the run's result is {str(out / LAST)!r} (epoch {run.progress.epoch}){best}", env)
    return run.progress
