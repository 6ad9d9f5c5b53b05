"""The training loop: Adam steps on LIIF's sampler, validation, checkpoints every epoch."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liifsr.checkpoint import save_model
from liifsr.config import ConfigError, brief, dump_yaml, load_yaml, to_dict
from liifsr.coords import normalise
from liifsr.data import ImageFolder, LIIFTrainSet, make_train_loader, split_paths, validation_pair, with_absolute_dirs
from liifsr.files import atomic_write
from liifsr.metrics import psnr
from liifsr.models import ImplicitModel, build_model
from liifsr.progress import progress_bar
from liifsr.runtime import autocast
from liifsr.tiling import upscale_tensor
from liifsr.training.config import TrainConfig, TrainError, resolve_model
from liifsr.training.distributed import DistEnv, all_reduce_sum, log
from liifsr.training.runlog import EpochStats, append_log, format_row, log_columns, open_tensorboard, read_log, write_log
from liifsr.training.state import Progress, load_state, save_state

LAST, BEST, STATE = "last.safetensors", "best.safetensors", "last.state.safetensors"
LOCK = ".liifsr-train.lock"  # held by `liifsr train` while a run owns its folder (training.runfolder)


def make_optimizer(model: nn.Module, config: TrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    scheduler: torch.optim.lr_scheduler.LRScheduler
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


def non_finite(model: nn.Module, loss: Tensor) -> Tensor:
    """Whether the loss or any weight is NaN or infinite, as a bool tensor on their device (no sync)."""
    flags = [torch.isfinite(loss)] + [torch.isfinite(p).all() for p in model.parameters()]
    return ~torch.stack(flags).all()


def check_finite(bad: Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, step: int,
                 config: TrainConfig, env: DistEnv) -> None:
    """Stop a diverged run (the flag of `non_finite`, any process's) before anything of it is
    saved: a NaN model must not become the run's result, nor be validated or checkpointed."""
    if not all_reduce_sum([float(bad)], env)[0]:
        return
    lr = optimizer.param_groups[0]["lr"]
    raise TrainError(f"training diverged in epoch {epoch} by step {step}: the loss or the weights became NaN or infinite "
                     f"(learning rate {lr:.3g}, precision {config.precision}); nothing of epoch {epoch} was saved, so the "
                     "run's checkpoints are from before it. Lower optim.lr and train into a new --out")


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader: Any, epoch: int,
                config: TrainConfig, env: DistEnv) -> EpochStats:
    """One epoch; the loss is averaged over iterations and processes. A loss or weight that
    turns NaN or infinite stops it (TrainError), checked after every step on a CPU and every
    10 steps on a GPU (where reading the flag waits for the device)."""
    model.train()
    loader.sampler.set_epoch(epoch)
    start = time.perf_counter()
    data_seconds, total, steps = 0.0, torch.zeros((), device=env.device), 0
    bad = torch.zeros((), dtype=torch.bool, device=env.device)
    check_every = 1 if env.device.type == "cpu" else 10
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
        loss = train_step(model, optimizer, batch, config.precision)
        bad |= non_finite(model, loss)
        total += loss
        steps += 1
        if steps % check_every == 0:
            check_finite(bad, model, optimizer, epoch, steps, config, env)
        bar.update()
        if steps % 10 == 0 and env.is_main:  # reading the loss syncs a GPU: not every step
            bar.set_postfix(loss=f"{float(total) / steps:.4f}")
    bar.close()
    check_finite(bad, model, optimizer, epoch, steps, config, env)
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
                sr = upscale_tensor(model, lr.unsqueeze(0), (hr.shape[-2], hr.shape[-1]), chunk_size=config.val_chunk or None,
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


def initialise_from(model: ImplicitModel, source: str) -> list[str]:
    """Copy into `model` every parameter and buffer of model `source` (a bundled name or a
    model file) that has the same name and shape; returns the names copied."""
    from liifsr.zoo import load_model

    donor = load_model(source).state_dict()
    own = model.state_dict()
    shared = {name: donor[name].to(own[name].dtype) for name in own if name in donor and donor[name].shape == own[name].shape}
    if not shared:
        raise TrainError(f"init_from {source!r} shares no parameter of the same name and shape with the model "
                         "(give a model with the same encoder, or init_from: '')")
    model.load_state_dict(shared, strict=False)
    return list(shared)


def build_run(config: TrainConfig, out: Path, env: DistEnv) -> Run:
    model_config = resolve_model(config)
    torch.manual_seed(config.seed)  # the same initial weights in every process
    model = build_model(model_config)
    if config.init_from:
        copied = initialise_from(model, config.init_from)
        log(f"{len(copied)} of {len(model.state_dict())} tensors initialised from {config.init_from!r}", env)
    model = model.to(env.device)
    train_model: nn.Module = model
    if env.world_size > 1:
        device_ids = [env.device.index] if env.device.type == "cuda" else None
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if config.compile:
        train_model = cast(nn.Module, torch.compile(train_model))  # compiling a Module gives a Module (OptimizedModule)
    optimizer, scheduler = make_optimizer(model, config)

    train_paths, val_paths = split_paths(config.data)
    if not config.data.cache:  # decoded when sampled: a bad file would stop the run in its first epoch
        check_images(train_paths, env)
    min_side = config.data.patch_size
    train_images = ImageFolder(train_paths, config.data.cache, min_side, progress=env.is_main)
    val_images = ImageFolder(val_paths, cache=True)
    dataset = LIIFTrainSet(train_images, config.data, config.seed)
    loader = make_train_loader(dataset, config.batch_size, config.num_workers, env.rank, env.world_size,
                               pin_memory=env.device.type == "cuda")
    log(f"{model.num_parameters():,} parameters, {len(train_images)} training and {len(val_images)} validation "
        f"images, {len(loader)} iterations of {config.batch_size} per epoch, on {env.world_size} x {env.device}", env)
    return Run(config, out, env, model, train_model, optimizer, scheduler, loader, val_images)


def check_images(paths: list[Path], env: DistEnv) -> None:
    """Decode every image once (ImageError naming a bad one), for a run that does not keep
    them in memory (`data.cache: false`), so that a bad file stops it before it starts."""
    from liifsr.imageio import read_uint8

    for path in progress_bar(paths, desc="checking images", unit="img", enabled=None if env.is_main else False):
        read_uint8(path)


# What a resumed run may change: how it runs, not what it computes (and how long it goes on).
RUNTIME_FIELDS = ("device", "threads", "num_workers", "val_chunk", "val_tile", "compile", "epochs")


def run_settings(config: TrainConfig) -> dict[str, Any]:
    """A config as the run folder's config.yaml holds it (model resolved, data folders
    absolute), flattened to dotted keys, without RUNTIME_FIELDS."""
    saved = to_dict(replace(config, model=resolve_model(config), data=with_absolute_dirs(config.data)))
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            flat[prefix] = node

    walk("", {key: value for key, value in saved.items() if key not in RUNTIME_FIELDS})
    return flat


def check_resume_config(out: Path, config: TrainConfig) -> None:
    """A resume continues the run with the settings it started with (the optimizer's state
    holds its learning rate, the model its shape): a config that differs from the run's
    config.yaml in anything but RUNTIME_FIELDS is refused, naming the keys, rather than
    trained on with the old settings under a config.yaml that says the new ones."""
    path = out / "config.yaml"
    if not path.is_file():
        return  # a run folder from before config.yaml was written first: nothing to compare
    try:
        saved = run_settings(load_yaml(TrainConfig, path))
    except ConfigError as error:
        raise TrainError(f"cannot resume: the run's {str(path)!r} is damaged ({error}); restore it") from None
    given = run_settings(config)
    keys = sorted(key for key in saved.keys() | given.keys() if saved.get(key) != given.get(key))
    if keys:
        first = keys[0]
        more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
        raise TrainError(
            f"--resume with a config that differs from the run's {str(path)!r} in {', '.join(keys[:5])}{more} ({first}: "
            f"{brief(saved.get(first))} there, {brief(given.get(first))} here); a run continues with the settings it "
            f"started with (only {', '.join(RUNTIME_FIELDS)} may change): resume with `liifsr train {path} --out {out} "
            "--resume`, or train the new config into another --out")


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove the temporary files (`files.atomic_write`'s) of this run's own files that a
    killed run left behind (one killed while it synced a checkpoint); returns them."""
    names = (LAST, BEST, STATE, "config.yaml", "log.csv")
    patterns = [re.compile(rf"\.{re.escape(Path(name).stem)}\.[0-9a-f]{{8}}\.tmp{re.escape(Path(name).suffix)}") for name in names]
    removed = []
    for path in out.iterdir():
        if any(pattern.fullmatch(path.name) for pattern in patterns) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def prepare_out(out: Path, run: Run, resume: bool) -> None:
    """Load the state to resume from, or refuse to overwrite a run; set up the CSV."""
    state = out / STATE
    columns = log_columns(run.config)
    if state.exists() and not resume:
        raise TrainError(f"{str(out)!r} already holds a run: add --resume to continue it, or choose another --out")
    if state.exists():
        check_resume_config(out, run.config)
        run.progress = load_state(state, run.model, run.optimizer, run.scheduler)
        log(f"resuming after epoch {run.progress.epoch}", run.env)
    elif resume:
        log(f"nothing to resume in {str(out)!r}: starting a new run", run.env)
    if run.env.is_main:
        for path in remove_stale_temporaries(out):
            log(f"removed {path.name}, a temporary file a stopped run left", run.env)
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
    assert run.progress.log is not None, "resuming read the rows of an older state from log.csv"
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
