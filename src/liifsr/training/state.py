"""The run state behind `--resume`: model, Adam state, scheduler progress, RNG states,
epoch, best PSNR and the log's rows, as safetensors tensors plus JSON metadata, so that
loading it never runs code."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from liifsr.config import to_dict
from liifsr.files import atomic_write
from liifsr.training.config import TrainConfig, TrainError

STATE_FORMAT = "liifsr-train-state/1"
_ADAM_STATE = {"step", "exp_avg", "exp_avg_sq"}  # what Adam keeps for every parameter it has updated
# Scheduler entries that record progress; the rest (milestones, gamma...) come from the config.
_SCHEDULER_PROGRESS = ("last_epoch", "_step_count", "_last_lr", "_is_initial", "_get_lr_called_within_step")


@dataclass
class Progress:
    epoch: int = 0  # completed epochs
    best_psnr: float = -math.inf
    best_epoch: int = 0
    # log.csv's rows up to `epoch`; None for a state written before they were kept in it.
    log: list[dict[str, Any]] | None = field(default_factory=list)


def save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
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


def load_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> Progress:
    """Restore what `save_state` wrote into freshly built objects; returns the progress.

    A damaged file (truncated, empty, not safetensors, missing tensors or entries) is a
    TrainError naming it; the run is left as it is.
    """
    try:
        return _load_state(path, model, optimizer, scheduler)
    except TrainError:
        raise
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, IndexError, RuntimeError) as error:
        # RecursionError (a RuntimeError) is JSON metadata nested deeper than Python recurses.
        detail = f"missing {error}" if isinstance(error, KeyError) else " ".join(str(error).split()[:40]) or type(error).__name__
        raise TrainError(f"cannot resume from {str(path)!r}: the file is damaged ({detail}); restore it, "
                         "or start a new run in another --out") from None


def _load_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> Progress:
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
