"""Image folders: the training and validation images of a config (benchmark sets refused), and
`ImageFolder`, their pixels as uint8 tensors, small images enlarged."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from liifsr.data.config import DataConfig, DataError
from liifsr.imageio import IMAGE_EXTENSIONS, ImageError, find_images, read_uint8

# Folder names of evaluation sets, which must never be trained or validated on.
# DIV2K_valid_HR is the paper's Table 4 evaluation set: no model selection on it either.
BENCHMARK_NAMES = frozenset({"benchmark", "set5", "set14", "b100", "urban100", "div2k_valid_hr"})


class SampleError(DataError):
    """A training image that fails when a sample is made of it (`data.cache: false`), in a
    DataLoader worker. torch re-raises a worker's error in the main process as the same
    class called with the worker's whole traceback as its message (some 1,700 characters);
    this class keeps one line of it: its own message, the traceback's last line."""

    def __init__(self, message: str) -> None:
        own_line = f"{SampleError.__module__}.{SampleError.__qualname__}: "  # how a traceback ends with one
        super().__init__(message.rstrip().rsplit(own_line, 1)[-1])


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
