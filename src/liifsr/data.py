"""Training data: image folders and LIIF's random-scale patch sampler.

Images
    Folders are searched recursively for image files (`imageio.IMAGE_EXTENSIONS`;
    sorted, so the order never depends on the file system); every image is read by
    `imageio.read_uint8` (RGB, gray replicated) and kept as a (3, H, W) uint8 tensor, in
    memory when `cache` is on. DIV2K follows its official layout,
    `DIR/DIV2K/DIV2K_train_HR` after `liifsr data download div2k DIR`.

Sampler (LIIF's `SRImplicitDownsampled` with `inp_size` = patch_size, 48)
    For each sample: a scale s ~ U(scale_min, scale_max); a square HR crop of side
    round(48 s) at a random position; the LR patch is the crop resized to 48 x 48
    (LIIF's PIL bicubic, or MATLAB's antialiased bicubic with `lr_resize: matlab`);
    random flip of rows, flip of columns and transpose (each p = 0.5, the same for the
    LR and HR crops); then `sample_q` HR pixels drawn without replacement give
    `coord` (their centres in [-1, 1], `make_coord` of the crop), `gt` (their RGB) and
    `cell` (2 / crop side, per axis). Everything is float32 in [0, 1]; the training
    step normalises with `coords.normalise`, (x - 0.5) / 0.5, as LIIF does.

Small images (rule)
    An image whose shorter side is below `patch_size` is enlarged once, when it is
    loaded, with PIL bicubic so that its shorter side is exactly `patch_size` (the
    aspect ratio is kept, the longer side rounded). Then, for every sample, the crop
    side round(patch_size * s) is clamped to the image's shorter side m; a clamped
    sample therefore has scale m / patch_size, which stays >= 1, and its `cell` is that
    of the crop actually taken. So images smaller than 4 x 48 = 192 px (T91 has
    78 px ones) contribute only scales up to m / 48, and an enlarged image only
    scale 1.

Determinism
    The randomness of sample `index` in epoch `epoch` comes from its own
    torch.Generator seeded with (seed, epoch, index), so a sample never depends on the
    worker that makes it, on the number of workers or processes, nor on what ran
    before: a resumed run sees the same data as an uninterrupted one. The order of an
    epoch is DistributedSampler's (a permutation seeded with seed + epoch), split across
    processes; every process drops the last incomplete global batch, so N processes
    with local batch B / N see exactly the batches of one process with batch B.

Validation
    Validation images are never a benchmark set: folders named after one (benchmark,
    Set5, Set14, B100, Urban100) are refused. They come from `val_dirs` or are held
    out of the training folders (see `DataConfig`).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler, Sampler

from liifsr.coords import cell_size, make_coord
from liifsr.degrade import DegradeConfig, check_degrade_config, degrade_patch
from liifsr.imageio import IMAGE_EXTENSIONS, ImageError, find_images, read_uint8
from liifsr.resize import modcrop, resize_lr

# Folder names of evaluation sets, which must never be trained or validated on.
# DIV2K_valid_HR is the paper's Table 4 evaluation set: no model selection on it either.
BENCHMARK_NAMES = frozenset({"benchmark", "set5", "set14", "b100", "urban100", "div2k_valid_hr"})
LR_RESIZERS = ("pil", "matlab")

SampleKey = tuple[int, int]  # (epoch, index)


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


class SampleError(DataError):
    """A training image that fails when a sample is made of it (`data.cache: false`), in a
    DataLoader worker. torch re-raises a worker's error in the main process as the same
    class called with the worker's whole traceback as its message (some 1,700 characters);
    this class keeps one line of it: its own message, the traceback's last line."""

    def __init__(self, message: str) -> None:
        own_line = f"{SampleError.__module__}.{SampleError.__qualname__}: "  # how a traceback ends with one
        super().__init__(message.rstrip().rsplit(own_line, 1)[-1])


# --- image folders ------------------------------------------------------------------


def check_not_benchmark(folder: str | Path) -> None:
    parts = {part.lower() for part in Path(folder).resolve().parts}
    if parts & BENCHMARK_NAMES:
        raise DataError(f"{str(folder)!r} looks like a benchmark set; train and validate on other images")


def list_images(folders: Sequence[str | Path]) -> list[Path]:
    """All images under `folders` (recursive), sorted per folder, folders in the given order."""
    paths: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            hint = " (get DIV2K with `liifsr data download div2k DIR`)" if "DIV2K" in str(folder) else ""
            raise DataError(f"image folder {str(folder)!r} does not exist{hint}")
        check_not_benchmark(folder)
        found = find_images(folder)
        if not found:
            kinds = "/".join(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)
            raise DataError(f"image folder {str(folder)!r} holds no {kinds} images")
        paths.extend(found)
    return paths


def ensure_min_side(image: Tensor, min_side: int) -> Tensor:
    """Enlarge a uint8 (3, H, W) image with PIL bicubic so its shorter side is `min_side`.

    The small-image rule: such an image could not hold one LR patch otherwise.
    """
    height, width = image.shape[-2:]
    if min(height, width) >= min_side:
        return image
    factor = min_side / min(height, width)
    size = (max(min_side, round(height * factor)), max(min_side, round(width * factor)))
    pil = Image.fromarray(image.permute(1, 2, 0).numpy(), mode="RGB")
    resized = np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BICUBIC))
    return torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))


class ImageFolder:
    """Images of some files as uint8 (3, H, W) tensors, decoded once if `cache` is on.

    With the cache, all images are decoded up front, in the main process, so that
    DataLoader workers share them (fork, copy-on-write) instead of each decoding its own.
    """

    def __init__(self, paths: Sequence[Path], cache: bool = True, min_side: int = 1, progress: bool = False) -> None:
        self.paths = list(paths)
        self.min_side = min_side
        self._cache: list[Tensor] | None = None
        if cache:
            self._cache = [self._load(p) for p in _progress(self.paths, progress, "loading images")]

    def _load(self, path: Path) -> Tensor:
        return ensure_min_side(read_uint8(path), self.min_side)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        if self._cache is not None:
            return self._cache[index]
        try:
            return self._load(self.paths[index])
        except ImageError as error:  # in a DataLoader worker: see SampleError
            raise SampleError(f"{error}; data.cache: false reads each image again when it is sampled: restore "
                              "the file, then continue with --resume") from None


def _progress(items: Sequence[Path], enabled: bool, description: str) -> Sequence[Path] | Iterator[Path]:
    if not enabled:
        return items
    from liifsr.progress import progress_bar

    return progress_bar(items, desc=description, unit="img")


def spread_indices(count: int, total: int) -> list[int]:
    """`count` indices spread evenly over range(total), 0 first: deterministic, and over a
    multi-folder list drawn from every folder (held-out images, evaluation subsets)."""
    return [(i * total) // count for i in range(count)]


def split_paths(config: DataConfig) -> tuple[list[Path], list[Path]]:
    """(training images, validation images) as the config asks; the two never overlap."""
    if not config.train_dirs:
        raise DataError("data.train_dirs is empty: give at least one training image folder")
    train = list_images(config.train_dirs)
    if config.val_dirs:
        val = list_images(config.val_dirs)
        val = val[: config.val_count] if config.val_count > 0 else val
        overlap = {p.resolve() for p in val} & {p.resolve() for p in train}
        if overlap:
            raise DataError(f"validation images are also training images (e.g. {str(sorted(overlap)[0])!r})")
        return train, val
    if config.val_count > len(train):
        raise DataError(f"cannot hold out {config.val_count} validation images from {len(train)} training images")
    held = set(spread_indices(config.val_count, len(train)))
    kept = [p for i, p in enumerate(train) if i not in held]
    if not kept:
        raise DataError("no training images left after holding out the validation images")
    return kept, [train[i] for i in sorted(held)]


# --- LIIF's sampler -----------------------------------------------------------------


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


def sample_generator(seed: int, epoch: int, index: int, stream: int = 0) -> torch.Generator:
    """A generator for one sample, well mixed from (seed, epoch, index); stream 1 is the
    degradations', so that turning them on leaves the crop, flips and queries as they were."""
    key = [seed, epoch, index] + ([stream] if stream else [])
    state = np.random.SeedSequence(key).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def crop_side(scale: float, patch_size: int, min_side: int) -> int:
    """HR crop side for a drawn scale, clamped to the image (the small-image rule)."""
    return min(round(patch_size * scale), min_side)


def augment(x: Tensor, flip_rows: bool, flip_cols: bool, transpose: bool) -> Tensor:
    """LIIF's augmentation of a (..., H, W) patch; the same flags for LR and HR."""
    if flip_rows:
        x = x.flip(-2)
    if flip_cols:
        x = x.flip(-1)
    if transpose:
        x = x.transpose(-2, -1)
    return x


def to_pixel_samples(hr: Tensor) -> tuple[Tensor, Tensor]:
    """(H*W, 2) pixel-centre coordinates and (H*W, 3) RGB of a (3, H, W) image, row-major."""
    coord = make_coord((hr.shape[-2], hr.shape[-1]))
    rgb = hr.reshape(3, -1).t()
    return coord, rgb


def make_sample(image: Tensor, config: DataConfig, generator: torch.Generator,
                degrade_generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """One training sample of a uint8 (3, H, W) image; the draws' order is fixed:
    scale, crop row, crop column, three augmentation flags, query permutation. The
    degradations, when on, draw from their own `degrade_generator`."""
    uniform = float(torch.rand((), generator=generator, dtype=torch.float64))
    scale = config.scale_min + (config.scale_max - config.scale_min) * uniform
    height, width = image.shape[-2:]
    side = crop_side(scale, config.patch_size, min(height, width))
    top = int(torch.randint(0, height - side + 1, (), generator=generator))
    left = int(torch.randint(0, width - side + 1, (), generator=generator))
    # uint8 crop, then float /255: bit-identical to cropping LIIF's ToTensor() image.
    hr = image[:, top : top + side, left : left + side].float().div(255)
    lr_size = (config.patch_size, config.patch_size)
    if config.degrade.enabled:
        if degrade_generator is None:
            raise ValueError("data.degrade is on: make_sample needs a degrade_generator")
        lr = degrade_patch(hr, lr_size, config.degrade, config.lr_resize, degrade_generator)
    else:
        lr = resize_lr(hr, lr_size, config.lr_resize)

    # Drawn even without augmentation, so that the later draws do not depend on it.
    flips = torch.rand(3, generator=generator) < 0.5
    if config.augment:
        lr = augment(lr, *flips.tolist())
        hr = augment(hr, *flips.tolist())

    coord, rgb = to_pixel_samples(hr.contiguous())
    chosen = torch.randperm(coord.shape[0], generator=generator)[: config.sample_q]
    cell = cell_size((hr.shape[-2], hr.shape[-1])).expand(config.sample_q, 2)
    return {"inp": lr.contiguous(), "coord": coord[chosen], "cell": cell.clone(), "gt": rgb[chosen]}


class LIIFTrainSet(Dataset):
    """`repeat` x len(images) samples per epoch, indexed by (epoch, index) keys."""

    def __init__(self, images: ImageFolder, config: DataConfig, seed: int) -> None:
        self.images = images
        self.config = config
        self.seed = seed

    def __len__(self) -> int:
        return len(self.images) * self.config.repeat

    def __getitem__(self, key: SampleKey) -> dict[str, Tensor]:
        epoch, index = key
        generator = sample_generator(self.seed, epoch, index)
        degrade_generator = sample_generator(self.seed, epoch, index, stream=1) if self.config.degrade.enabled else None
        return make_sample(self.images[index % len(self.images)], self.config, generator, degrade_generator)


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


# --- validation ---------------------------------------------------------------------


def center_crop(image: Tensor, max_size: int) -> Tensor:
    """Centre crop of (..., H, W) to at most max_size per side (0 = unchanged)."""
    if max_size <= 0:
        return image
    height, width = image.shape[-2:]
    h, w = min(height, max_size), min(width, max_size)
    top, left = (height - h) // 2, (width - w) // 2
    return image[..., top : top + h, left : left + w]


def validation_pair(image: Tensor, scale: int, method: str, max_size: int = 0) -> tuple[Tensor, Tensor]:
    """(LR, HR) float (3, h, w) in [0, 1] of a uint8 image: HR centre-cropped to
    `max_size`, then cropped to a multiple of `scale` (modcrop); LR is its bicubic
    downscale by exactly `scale`."""
    hr = center_crop(image, max_size)
    height, width = hr.shape[-2:]
    hr = modcrop(hr, scale).float().div(255)
    if hr.shape[-1] == 0 or hr.shape[-2] == 0:
        raise DataError(f"validation image of {height}x{width} px is too small for scale {scale}")
    return resize_lr(hr, (hr.shape[-2] // scale, hr.shape[-1] // scale), method), hr
