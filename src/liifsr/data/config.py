"""What training data to use and how to sample it: `DataConfig`, its checks, and `DataError`,
the error of a data folder or setting the user has to fix."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from liifsr.degrade import DegradeConfig, check_degrade_config

LR_RESIZERS = ("pil", "matlab")


@dataclass
class DataConfig:
    """Where training images come from and how LIIF's sampler turns them into batches.

    `train_dirs` are searched recursively for png/jpg/jpeg/bmp/webp images. Validation
    uses `val_dirs` when given (their first `val_count` images, 0 = all of them);
    otherwise `val_count` images of the training folders, picked evenly over the sorted
    list, are held out of training (0 = no validation). Paths are relative to the
    working directory; a run's config.yaml holds them absolute (`with_absolute_dirs`).
    """

    train_dirs: list[str] = field(default_factory=list)
    val_dirs: list[str] = field(default_factory=list)
    val_count: int = 0
    # Validation HR images are centre-cropped to at most this many pixels per side
    # (0 = whole images); full-size validation on a CPU can take minutes.
    val_max_size: int = 0
    patch_size: int = 48  # LR patch side (LIIF's inp_size)
    scale_min: float = 1.0
    scale_max: float = 4.0
    sample_q: int = 2304  # HR pixels queried per patch, drawn without replacement
    repeat: int = 1  # an epoch visits every training image `repeat` times
    cache: bool = True  # keep decoded images in memory as uint8
    lr_resize: str = "pil"  # 'pil' (LIIF's resize_fn) or 'matlab' (antialiased imresize)
    augment: bool = True  # random flips and transpose, as LIIF's `augment: true`
    # Synthetic degradations of the LR patch (blur, noise, JPEG; `liifsr.degrade`); off by default.
    degrade: DegradeConfig = field(default_factory=DegradeConfig)


def with_absolute_dirs(config: DataConfig) -> DataConfig:
    """The config with its folders as absolute paths, so that a run folder's config.yaml
    finds its images from any working directory (resuming, counting a run's images)."""
    return replace(config, train_dirs=[str(Path(d).absolute()) for d in config.train_dirs],
                   val_dirs=[str(Path(d).absolute()) for d in config.val_dirs])


class DataError(ValueError):
    """A data folder or data setting the user has to fix; the message says how."""


def check_data_config(config: DataConfig) -> None:
    """Reject data settings the sampler cannot honour; `liifsr train` runs this before
    loading any image (`training.config.check_config`)."""
    if config.lr_resize not in LR_RESIZERS:
        raise DataError(f"data.lr_resize must be one of {LR_RESIZERS}, got {config.lr_resize!r}")
    if not 1 <= config.scale_min <= config.scale_max:
        raise DataError(f"need 1 <= data.scale_min <= data.scale_max, got {config.scale_min} and {config.scale_max}")
    if config.patch_size < 1 or config.repeat < 1:
        raise DataError("data.patch_size and data.repeat must be positive")
    if config.val_count < 0 or config.val_max_size < 0:
        raise DataError("data.val_count and data.val_max_size must be >= 0")
    # The smallest HR crop is patch_size x patch_size (scale 1).
    if not 1 <= config.sample_q <= config.patch_size**2:
        raise DataError(f"data.sample_q must be in [1, patch_size^2 = {config.patch_size**2}], got {config.sample_q}")
    check_degrade_config(config.degrade)
