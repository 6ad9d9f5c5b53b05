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

    config.py      DataConfig, its checks, DataError
    folders.py     image folders, the training/validation split, ImageFolder, small images
    sampling.py    LIIF's sampler: make_sample, sample_generator, LIIFTrainSet
    loader.py      EpochSampler, make_train_loader, workers that die with the run
    validation.py  validation pairs (centre crop, modcrop, bicubic LR)
"""

from __future__ import annotations

from liifsr.data.config import LR_RESIZERS, DataConfig, DataError, check_data_config, with_absolute_dirs
from liifsr.data.folders import (
    BENCHMARK_NAMES,
    ImageFolder,
    SampleError,
    check_not_benchmark,
    ensure_min_side,
    list_images,
    split_paths,
    spread_indices,
)
from liifsr.data.loader import EpochSampler, die_with_parent, iterations_per_epoch, make_train_loader
from liifsr.data.sampling import LIIFTrainSet, SampleKey, augment, crop_side, make_sample, sample_generator, to_pixel_samples
from liifsr.data.validation import center_crop, validation_pair

__all__ = [
    "BENCHMARK_NAMES",
    "LR_RESIZERS",
    "DataConfig",
    "DataError",
    "EpochSampler",
    "ImageFolder",
    "LIIFTrainSet",
    "SampleError",
    "SampleKey",
    "augment",
    "center_crop",
    "check_data_config",
    "check_not_benchmark",
    "crop_side",
    "die_with_parent",
    "ensure_min_side",
    "iterations_per_epoch",
    "list_images",
    "make_sample",
    "make_train_loader",
    "sample_generator",
    "split_paths",
    "spread_indices",
    "to_pixel_samples",
    "validation_pair",
    "with_absolute_dirs",
]
