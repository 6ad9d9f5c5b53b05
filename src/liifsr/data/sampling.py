"""LIIF's random-scale patch sampler: one training sample of an image, from its own generator,
and `LIIFTrainSet`, the samples of an epoch indexed by (epoch, index)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from liifsr.coords import cell_size, make_coord
from liifsr.data.config import DataConfig
from liifsr.data.folders import ImageFolder
from liifsr.degrade import degrade_patch
from liifsr.resize import resize_lr

SampleKey = tuple[int, int]  # (epoch, index)


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
