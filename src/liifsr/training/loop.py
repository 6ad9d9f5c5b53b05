"""The training loop: Adam steps on LIIF's sampler, validation, checkpoints every epoch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liifsr.checkpoint import save_model
from liifsr.config import dump_yaml
from liifsr.coords import normalise
from liifsr.data import ImageFolder, LIIFTrainSet, make_train_loader, split_paths, validation_pair, with_absolute_dirs
from liifsr.files import atomic_write
from liifsr.tiling import upscale_tensor
from liifsr.metrics import psnr
from liifsr.models import ImplicitModel, build_model
from liifsr.progress import progress_bar
from liifsr.runtime import autocast
from liifsr.training.config import TrainConfig, TrainError, resolve_model
from liifsr.training.distributed import DistEnv, all_reduce_sum, log
from liifsr.training.runlog import EpochStats, append_log, format_row, log_columns, open_tensorboard, read_log, write_log
from liifsr.training.state import Progress, load_state, save_state

LAST, BEST, STATE = "last.safetensors", "best.safetensors", "last.state.safetensors"


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


def validate(model: ImplicitModel, images: ImageFolder, config: TrainConfig, env: DistEnv) -> dict[int, float]:
    """Mean RGB PSNR (shave = scale) per validation scale; images are shared out over processes."""
    model.eval()
    sums = [0.0] * len(config.val_scales)
    for index in range(env.rank, len(images), env.world_size):
        for k, scale in enumerate(config.val_scales):
            lr, hr = validation_pair(images[index], scale, config.data.lr_resize, config.data.val_max_size)
            with torch.inference_mode():  # whole image, `val_chunk` queries per decoder call
                sr = upscale_tensor(model, lr.unsqueeze(0), tuple(hr.shape[-2:]), chunk_size=config.val_chunk or None,
                                    tile_size=config.val_tile or None)
            sums[k] += psnr(sr.cpu(), hr.unsqueeze(0), "rgb", scale)
    sums = all_reduce_sum(sums, env)
    model.train()
    return {scale: total / len(images) for scale, total in zip(config.val_scales, sums)}


@dataclass
class Run:
    """What one training process holds."""

    config: TrainConfig
    out: Path
    env: DistEnv
    model: ImplicitModel
    train_model: nn.Module  # the model as trained: maybe wrapped by DDP and/or compiled
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loader: Any
    val_images: ImageFolder
    progress: Progress = field(default_factory=Progress)


def build_run(config: TrainConfig, out: Path, env: DistEnv) -> Run:
    model_config = resolve_model(config)
    torch.manual_seed(config.seed)  # the same initial weights in every process
    model = build_model(model_config).to(env.device)
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
            # Absolute data folders: the run folder's config then holds from any directory.
            saved = replace(run.config, model=resolve_model(run.config), data=with_absolute_dirs(run.config.data))
            tmp.write_text(dump_yaml(saved))


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
