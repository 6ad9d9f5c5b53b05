"""Validation pairs: an image centre-cropped, modcropped and downscaled by exactly the scale."""

from __future__ import annotations

from torch import Tensor

from liifsr.data.config import DataError
from liifsr.resize import modcrop, resize_lr


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
