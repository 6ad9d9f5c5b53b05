"""What an upscale may ask, checked once for the Python API and the command line alike:
output sizes and scales (`output_size`, `Fit`, `check_scale`), tuning options, precisions
and input tensors. A bad request raises `UpscaleError` with a one-line message that
names the problem and the fix."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeGuard

import numpy as np
import torch
from torch import Tensor

from liifsr.runtime import DeviceError, check_precision_on

if TYPE_CHECKING:
    from liifsr.models import ImplicitModel
    from liifsr.onnx_runtime import OnnxModel

# Outputs beyond this need allow_huge=True: a typo like --scale 300 should not eat the disk.
MAX_OUTPUT_PIXELS = 20000 * 20000
# No output side beyond this, even with allow_huge: PNG's limit (2**31 - 1), far beyond any
# memory, and the bound that keeps size arithmetic within integers and floats.
MAX_SIDE = 2**31 - 1


class UpscaleError(ValueError):
    """A request that cannot be served; the message names the problem and the fix."""


def _is_number(value: object) -> bool:
    """A real number, and not a bool (True is an int in Python, but never a size or a scale)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _is_count(value: object) -> TypeGuard[int | np.integer]:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Fit:
    """An output size that keeps the input's aspect: its long side, its short side, or the
    largest size within a box (HEIGHT, WIDTH). Exactly one; pass it as `size`."""

    long_side: int | None = None
    short_side: int | None = None
    box: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        given = [value for value in (self.long_side, self.short_side, self.box) if value is not None]
        if len(given) != 1:
            raise UpscaleError("a Fit takes exactly one of long_side, short_side or box")
        sides: object = self.box if self.box is not None else given
        if not isinstance(sides, (tuple, list)) or len(sides) != len(given) + (self.box is not None) or not all(
                _is_count(n) and n > 0 for n in sides):
            raise UpscaleError(f"a Fit's sides must be positive integers (a box two of them), got {_brief(given[0])}")
        if any(n > MAX_SIDE for n in sides):
            raise UpscaleError(f"a Fit's sides must be at most {MAX_SIDE:,} pixels, got {_brief(given[0])}")

    def size_for(self, in_hw: tuple[int, int]) -> tuple[int, int]:
        """The output (H, W) for an input of `in_hw`: the side that binds is exact, the other
        rounded to the nearest pixel (at least 1)."""
        if self.box is not None:
            ratios = (self.box[0] / in_hw[0], self.box[1] / in_hw[1])
            binding = 0 if ratios[0] <= ratios[1] else 1
            target = self.box[binding]
        else:
            pick = max if self.long_side is not None else min
            binding = 0 if pick(in_hw) == in_hw[0] else 1
            side = self.long_side if self.long_side is not None else self.short_side
            assert side is not None, "__post_init__ checked that one side is given"
            target = side
        scale = target / in_hw[binding]
        out = [_side(n * scale) for n in in_hw]
        out[binding] = int(target)
        if self.box is not None:  # rounding must not leave the box
            out = [min(n, limit) for n, limit in zip(out, self.box)]
        return out[0], out[1]


def _brief(value: object) -> str:
    from liifsr.config import brief

    return brief(value)


def _side(exact: float) -> int:
    """An output side from its exact (float) length: rounded, at least 1, at most MAX_SIDE."""
    if not exact < MAX_SIDE + 0.5:  # also NaN and infinity; MAX_SIDE + 0.5 would round (to even) past it
        try:
            length = f"{float(exact):.3g}"
        except OverflowError:  # an integer beyond any float
            length = "over 1e308"
        raise UpscaleError(f"an output side of {length} pixels is beyond the largest liifsr writes ({MAX_SIDE:,}, "
                           "PNG's limit): ask for a smaller scale or size")
    return max(1, round(exact))


def output_size(in_hw: tuple[int, int], scale: float | tuple[float, float] | None,
                size: tuple[int, int] | Fit | None) -> tuple[int, int]:
    """Output (H, W) from a scale (one or per axis), an explicit size (HEIGHT, WIDTH) or a
    `Fit` (long side, short side, or within a box, aspect kept); validated. The one rule
    of output sizes, for the command line and the API."""
    if (scale is None) == (size is None):
        raise UpscaleError("give exactly one of scale or size")
    if isinstance(size, Fit):
        return size.size_for(in_hw)
    if size is not None:
        if not isinstance(size, (tuple, list)) or len(size) != 2 or not all(_is_count(n) and n > 0 for n in size):
            raise UpscaleError(f"size must be two positive integers (HEIGHT, WIDTH), got {_brief(size)}")
        return _side(int(size[0])), _side(int(size[1]))
    scales = scale if isinstance(scale, (tuple, list)) else (scale, scale)
    if len(scales) != 2:
        raise UpscaleError(f"scale must be one number or (sy, sx), got {scale!r}")
    sy, sx = (check_scale(s) for s in scales)
    return _side(in_hw[0] * sy), _side(in_hw[1] * sx)


def check_scale(scale: object, at_least: float = 0.0, whole: bool = False, why: str = "") -> float:
    """`scale` as a float if it is a real, finite number above 0, at least `at_least` and
    whole where `whole` asks; else an UpscaleError naming the rule (with `why`, the reason
    for a stricter one). The one rule of scales: the API, `upscale`, `compare`, `evaluate`."""
    kind = "whole" if whole else "finite"
    rule = f"a {kind} number >= {at_least:g}" if at_least > 0 else f"a positive {kind} number"
    try:
        value = float(scale) if _is_number(scale) else math.nan  # type: ignore[arg-type]
    except OverflowError:  # an integer beyond any float
        value = math.inf
    if not (math.isfinite(value) and value > 0 and value >= at_least and (not whole or value == int(value))):
        raise UpscaleError(f"scale must be {rule}{why}, got {_brief(scale)}")
    return value


def check_output_size(out_hw: tuple[int, int], allow_huge: bool) -> None:
    pixels = out_hw[0] * out_hw[1]
    if pixels > MAX_OUTPUT_PIXELS and not allow_huge:
        raise UpscaleError(
            f"output of {out_hw[0]}x{out_hw[1]} (HEIGHTxWIDTH) pixels exceeds the limit of {MAX_OUTPUT_PIXELS:,} pixels "
            "(use --allow-huge / allow_huge=True if you mean it)"
        )


def check_tuning(chunk_size: int | None = None, tile_size: int | None = None) -> None:
    """The tuning options of an upscale, its chunk and tile sizes: positive integers, or
    None for the default."""
    for name, flag, value in (("chunk_size", "--chunk", chunk_size), ("tile_size", "--tile", tile_size)):
        if value is not None and not (_is_count(value) and value > 0):
            raise UpscaleError(f"{name} ({flag}) must be a positive integer, got {value!r}")


def check_model_precision(model: ImplicitModel | OnnxModel, device: torch.device, precision: str) -> None:
    """A precision this device and this model run (an ONNX model: fp32 only)."""
    try:
        check_precision_on(device, precision)
    except DeviceError as error:
        raise UpscaleError(str(error)) from None
    supported = model.precisions
    if precision not in supported:
        raise UpscaleError(f"this model runs in {', '.join(supported)} only, not {precision} (an exported ONNX model "
                           "runs in fp32: leave the precision at auto, or give fp32)")


def shape_text(shape: tuple[int, ...]) -> str:
    """A shape as messages write sizes, '40x48x3', not '(40, 48, 3)'."""
    return "x".join(str(int(n)) for n in shape) or "()"


def check_model(model: object) -> None:
    """A model object (from `liifsr.load_model` or `build_model`), not its name or path."""
    if isinstance(model, (str, os.PathLike)):
        raise TypeError(f"upscale takes a model, not the name or path {str(model)!r}: load it once with "
                        f"liifsr.load_model({str(model)!r}) and pass what it returns")
    if not all(callable(getattr(model, name, None)) for name in ("encode", "latent_projection", "decode")):
        raise TypeError(f"upscale takes a model from liifsr.load_model (or liifsr.build_model), got a {type(model).__name__}")


def check_unit_range(images: Tensor) -> None:
    """Float images in [0, 1], finite: values outside would be clipped into it without a word."""
    if images.numel() == 0:
        return  # an empty image is `check_input`'s to name
    if not bool(torch.isfinite(images).all()):
        raise UpscaleError("the image contains NaN or infinite values (expected floats in [0, 1])")
    low, high = (float(v) for v in torch.aminmax(images))
    if low < 0 or high > 1:
        raise UpscaleError(f"tensor values must be in [0, 1], got {low:.6g} to {high:.6g} (divide 8-bit values by 255 "
                           "and 16-bit ones by 65535, or clamp(0, 1) first)")


def check_input(lr: Tensor) -> None:
    """An LR image tensor (1, 3, H, W): float, not empty, no NaN or infinity."""
    if lr.dim() != 4 or lr.shape[:2] != (1, 3):
        raise UpscaleError(f"expected a (1, 3, H, W) tensor, got shape {shape_text(lr.shape)}")
    if lr.shape[-2] == 0 or lr.shape[-1] == 0:
        raise UpscaleError(f"the image is empty ({lr.shape[-2]}x{lr.shape[-1]} pixels, HEIGHTxWIDTH)")
    if not lr.is_floating_point():
        raise UpscaleError(f"tensors must be float in [0, 1], got {lr.dtype}")
    if not bool(torch.isfinite(lr).all()):
        raise UpscaleError("the image contains NaN or infinite values (expected floats in [0, 1])")
