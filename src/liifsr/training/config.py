"""A training run's typed config (`TrainConfig`, the YAML of `liifsr train`) and its checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from liifsr.config import ConfigError
from liifsr.data import DataConfig, check_data_config
from liifsr.models import ModelConfig, check_model_config, model_preset

SCHEDULES = ("step", "cosine")


class TrainError(ValueError):
    """A training setup the user has to fix (bad option, existing run, damaged state...)."""


@dataclass
class OptimConfig:
    """Adam with a per-epoch schedule: 'step' (MultiStepLR) or 'cosine' (to `min_lr`)."""

    lr: float = 1e-4
    schedule: str = "step"
    milestones: list[int] = field(default_factory=lambda: [200, 400, 600, 800])
    gamma: float = 0.5
    min_lr: float = 0.0


@dataclass
class TrainConfig:
    """A training run. `model` is a preset name (see MODEL_PRESETS) or a full ModelConfig.

    `batch_size` is the global batch: with N processes each takes batch_size / N.
    """

    model: str | ModelConfig = "edsr-liif-relu"
    # Start from the weights of another model (a bundled name or a model file) wherever a
    # parameter has the same name and shape, e.g. a trained encoder under a new decoder;
    # '' = random initialisation. A resumed run continues from its own state instead.
    init_from: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 1000
    batch_size: int = 16
    val_every: int = 1  # validate every N epochs (and after the last one)
    val_scales: list[int] = field(default_factory=lambda: [2, 4])
    val_chunk: int = 0  # queries per decoder call in validation; 0 = upscale's default (65536)
    val_tile: int = 0  # LR tile side of validation's encoder; 0 = automatic
    save_every: int = 1  # write last.* every N epochs (and after the last one)
    seed: int = 0
    num_workers: int = 1
    precision: str = "fp32"  # 'fp32' or 'bf16' (autocast)
    compile: bool = False
    device: str = "auto"  # 'auto', 'cpu', 'cuda' or 'cuda:N'
    # CPU threads of each training process (0 = PyTorch's default, one per core). On a
    # shared machine, set it to the number of idle cores: oversubscribed threads make
    # training many times slower.
    threads: int = 0


TRAIN_PRECISIONS = ("fp32", "bf16")


def check_config(config: TrainConfig) -> None:
    if config.precision not in TRAIN_PRECISIONS:
        hint = " (fp16 training needs loss scaling, which liifsr does not do: use bf16)" if config.precision == "fp16" else ""
        raise ConfigError(f"precision must be one of {TRAIN_PRECISIONS}, got {config.precision!r}{hint}")
    if config.optim.schedule not in SCHEDULES:
        raise ConfigError(f"optim.schedule must be one of {SCHEDULES}, got {config.optim.schedule!r}")
    if config.epochs < 1 or config.batch_size < 1 or config.val_every < 1 or config.save_every < 1:
        raise ConfigError("epochs, batch_size, val_every and save_every must be positive")
    if config.threads < 0 or config.num_workers < 0:
        raise ConfigError("threads and num_workers must be >= 0")
    if config.seed < 0:  # numpy's SeedSequence, which draws every sample, takes none below 0
        raise ConfigError(f"seed must be an integer >= 0, got {config.seed}")
    if any(scale < 1 for scale in config.val_scales):
        raise ConfigError(f"val_scales must be integers >= 1, got {config.val_scales}")
    if config.val_chunk < 0 or config.val_tile < 0:
        raise ConfigError(f"val_chunk and val_tile must be >= 0 (0 = automatic), got {config.val_chunk} and {config.val_tile}")
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

