"""A run folder's record: `log.csv` (one row per epoch), TensorBoard events, and the
reader (`read_run`, `read_log`) that `liifsr train --resume`, `liifsr plot-log` and
`tools/` share."""

from __future__ import annotations

import csv
import os
import statistics
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liifsr.config import load_yaml
from liifsr.data import iterations_per_epoch, split_paths
from liifsr.files import atomic_write
from liifsr.training.config import TrainConfig, TrainError


@dataclass
class EpochStats:
    loss: float
    data_seconds: float  # time spent waiting for the DataLoader
    seconds: float


if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

LOG_COLUMNS = ["epoch", "lr", "train_loss", "val_psnr", "seconds", "data_seconds"]


def log_columns(config: TrainConfig) -> list[str]:
    return LOG_COLUMNS + [f"val_psnr_x{scale}" for scale in config.val_scales]


def read_log(path: Path) -> list[dict[str, str]]:
    """log.csv's rows ([] when there is none yet); a damaged file is a TrainError naming it."""
    if not path.exists():
        return []
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        raise TrainError(f"{str(path)!r} is not a CSV log ({error})") from None
    if any(not str(row.get("epoch") or "").isdigit() for row in rows):
        raise TrainError(f"{str(path)!r} is damaged (a row without a whole epoch number); fix or delete it")
    return rows


@dataclass
class RunRecord:
    """A run folder as its files tell it: the config, the logged epochs and, on demand, the
    data split (which lists the config's image folders, so only what needs it touches them)."""

    config: TrainConfig
    rows: list[dict[str, str]]

    @cached_property
    def _image_counts(self) -> tuple[int, int]:
        train_paths, val_paths = split_paths(self.config.data)
        return len(train_paths), len(val_paths)

    @property
    def train_images(self) -> int:
        return self._image_counts[0]

    @property
    def val_images(self) -> int:
        return self._image_counts[1]

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
    return RunRecord(load_yaml(TrainConfig, out / "config.yaml"), read_log(out / "log.csv"))


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


def open_tensorboard(out: Path, resumed_epoch: int) -> SummaryWriter:
    from torch.utils.tensorboard import SummaryWriter

    # purge_step hides events a killed run logged after its last checkpoint.
    return SummaryWriter(str(out / "tensorboard"), purge_step=resumed_epoch + 1 if resumed_epoch else None)
