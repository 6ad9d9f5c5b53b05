"""The Python API for upscaling: PIL images, uint8/uint16 arrays and float tensors in, the
same kind out (`upscale`), files and folders (`upscale_files`), alpha channels resized
beside the colour. The work is done by `liifsr.tiling`; requests are checked by
`liifsr.checks`, whose `UpscaleError`, `Fit` and `output_size` are part of this API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from liifsr.checks import Fit, UpscaleError, check_model, check_output_size, check_unit_range, output_size, shape_text
from liifsr.decoding import DecodeOptions
from liifsr.resize import bicubic_taps
from liifsr.runtime import AUTO
from liifsr.tiling import Span, upscale_bands, upscale_tensor

if TYPE_CHECKING:
    from PIL import Image

    from liifsr.imageio import LoadedImage
    from liifsr.models import ImplicitModel
    from liifsr.onnx_runtime import OnnxModel

__all__ = ["Fit", "UpscaleError", "UpscaledFile", "output_size", "resize_alpha", "upscale", "upscale_array", "upscale_files",
           "upscale_image_bands"]


def upscale(
    model: ImplicitModel | OnnxModel,
    image: Image.Image | np.ndarray | Tensor,
    scale: float | tuple[float, float] | None = None,
    size: tuple[int, int] | Fit | None = None,
    *,
    allow_huge: bool = False,
    precision: str = AUTO,
    chunk_size: int | None = None,
    tile_size: int | None = None,
    progress: bool | None = False,
) -> Image.Image | np.ndarray | Tensor:
    """Upscale a PIL image, a uint8/uint16 array (H, W[, C]) or a float tensor in [0, 1].

    Returns the same kind of object. Grayscale stays grayscale (the model sees it as
    RGB); an alpha channel is resized with bicubic interpolation. `precision` is 'auto'
    (bf16 where the device runs it natively, else fp32: `runtime.resolve_precision`),
    'fp32', 'bf16' or 'fp16' (CUDA). `chunk_size`, `tile_size` and `progress` are those
    of `tiling.upscale_tensor` (`decoding.DecodeOptions`).
    """
    from PIL import Image

    check_model(model)
    decoding = DecodeOptions(chunk_size, tile_size, precision, progress)
    if isinstance(image, Image.Image):
        from liifsr.imageio import from_pil

        loaded = from_pil(image)
        if loaded.bit_depth == 16 and loaded.alpha is not None:
            raise UpscaleError(f"PIL has no 16-bit gray-with-alpha mode for the result of this {image.mode} image with "
                               "transparency: pass its pixels as a uint16 numpy array (H, W, 2), or convert it to 8 bits")
        rgb, alpha = decode_array(model, loaded.rgb, loaded.alpha, scale, size, allow_huge, decoding)
        return result_image(rgb, alpha, loaded.grayscale, loaded.bit_depth, image.mode)
    if isinstance(image, np.ndarray):
        if image.dtype not in (np.uint8, np.uint16):
            raise UpscaleError(f"arrays must be uint8 or uint16, got {image.dtype} (pass floats as a torch tensor)")
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (1, 2, 3, 4)):
            raise UpscaleError(f"arrays must be (H, W) or (H, W, 1-4 channels), got shape {shape_text(image.shape)}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise UpscaleError(f"the image is empty (shape {shape_text(image.shape)})")
        levels = np.iinfo(image.dtype).max
        array = image.astype(np.float32) / levels
        gray = array.ndim == 2
        if gray:
            array = array[..., None]
        color = array[..., :3] if array.shape[-1] >= 3 else np.repeat(array[..., :1], 3, axis=-1)
        alpha = array[..., -1] if array.shape[-1] in (2, 4) else None
        rgb, alpha = decode_array(model, color, alpha, scale, size, allow_huge, decoding)
        channels = [rgb.mean(-1, keepdims=True) if array.shape[-1] <= 2 else rgb]
        if alpha is not None:
            channels.append(alpha[..., None])
        result = np.concatenate(channels, axis=-1)
        result = np.round(np.clip(result, 0, 1) * levels).astype(image.dtype)
        return result[..., 0] if gray else result
    if isinstance(image, Tensor):
        if not image.is_floating_point():
            raise UpscaleError("tensors must be float in [0, 1], shaped (3, H, W) or (N, 3, H, W)")
        batch = image if image.dim() == 4 else image.unsqueeze(0)
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise UpscaleError(f"tensors must be shaped (3, H, W) or (N, 3, H, W), got shape {shape_text(image.shape)}")
        if batch.shape[0] == 0:
            raise UpscaleError(f"the batch is empty (shape {shape_text(image.shape)})")
        check_unit_range(batch)
        out_hw = output_size((batch.shape[-2], batch.shape[-1]), scale, size)
        check_output_size(out_hw, allow_huge)
        outs = [upscale_tensor(model, b.unsqueeze(0), out_hw, **decoding.tiling_arguments()) for b in batch]
        upscaled = torch.cat(outs).to(image.device)
        return upscaled if image.dim() == 4 else upscaled[0]
    raise UpscaleError(f"cannot upscale a {type(image).__name__}: pass a PIL image, a numpy array or a torch tensor")


def levels(rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool, bit_depth: int) -> np.ndarray:
    """Float RGB in [0, 1] (+ alpha) as the integer levels a file of `bit_depth` holds:
    uint8 or uint16 (H, W, channels), gray as the mean of the three, as the writers do."""
    from liifsr.imageio import _quantize_inputs

    color, alpha_levels = _quantize_inputs(rgb, alpha, grayscale, bit_depth)
    return color if alpha_levels is None else np.concatenate([color, alpha_levels[..., None]], axis=-1)


def result_image(rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool, bit_depth: int,
                 mode: str = "") -> Image.Image:
    """The upscaled image as a PIL image of the source's depth where PIL has a mode for it:
    8-bit L, LA, RGB, RGBA; 16-bit gray as I;16 (or I, for a source in mode I). PIL has no
    16-bit colour or gray-with-alpha modes: such a result is 8-bit here (`UpscaledFile.array`
    and `.save` keep its 16 bits)."""
    from PIL import Image

    if bit_depth == 16 and grayscale and alpha is None:
        gray = levels(rgb, None, True, 16)[..., 0]
        return Image.fromarray(gray.astype(np.int32) if mode == "I" else gray)  # mode I, or I;16
    pixels = levels(rgb, alpha, grayscale, 8)
    return Image.fromarray(np.ascontiguousarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels))


@dataclass
class UpscaledFile:
    """One result of `upscale_files`: the upscaled image, or why this file failed.

    `array` holds the result at the source's depth, as a file of it would (uint8, or
    uint16 for a 16-bit source; (H, W) gray or (H, W, channels)), and `save(path)` writes
    it as the command line does (16-bit PNG for a 16-bit source). `image` is a PIL image:
    16-bit gray as I;16, 16-bit colour or gray with alpha at 8 bits (PIL has no such 16-bit modes)."""

    source: Path
    image: Image.Image | None  # None when it failed
    error: str | None = None  # one line naming the file and the problem
    array: np.ndarray | None = None
    bit_depth: int = 8
    grayscale: bool = False
    alpha: bool = False

    def save(self, path: str | Path) -> None:
        """Write the result to `path` (format from the extension) at the source's depth."""
        from liifsr.imageio import write_image

        if self.array is None:
            raise UpscaleError(f"nothing to save for {str(self.source)!r}: {self.error}")
        values = self.array.astype(np.float32) / (65535 if self.bit_depth == 16 else 255)
        values = values[..., None] if values.ndim == 2 else values
        color = values[..., : values.shape[-1] - self.alpha]
        rgb = np.repeat(color, 3, axis=-1) if color.shape[-1] == 1 else color
        write_image(path, rgb, values[..., -1] if self.alpha else None, grayscale=self.grayscale, bit_depth=self.bit_depth)


def upscale_files(model: ImplicitModel | OnnxModel, inputs: str | Path | Iterable[str | Path],
                  scale: float | tuple[float, float] | None = None, size: tuple[int, int] | Fit | None = None, *,
                  allow_huge: bool = False, precision: str = AUTO, chunk_size: int | None = None,
                  tile_size: int | None = None, progress: bool | None = False) -> Iterator[UpscaledFile]:
    """Upscale image files and folders of them (recursively), one result at a time, as PIL
    images: a notebook can show each as it comes. `inputs` is a list of paths, or one path
    (a folder's name is one input, not a list of its characters). A file that cannot be
    read or upscaled is a result with its error, and the others go on. Options are `upscale`'s."""
    from liifsr.files import about
    from liifsr.imageio import MAX_INPUT_PIXELS, ImageError, collect_images, read_image

    check_model(model)
    decoding = DecodeOptions(chunk_size, tile_size, precision, progress)
    for source, _ in collect_images(inputs):
        try:
            loaded = read_image(source, max_pixels=None if allow_huge else MAX_INPUT_PIXELS)
            rgb, alpha = decode_array(model, loaded.rgb, loaded.alpha, scale, size, allow_huge, decoding)
            array = levels(rgb, alpha, loaded.grayscale, loaded.bit_depth)
            yield UpscaledFile(source, result_image(rgb, alpha, loaded.grayscale, loaded.bit_depth),
                               array=array[..., 0] if array.shape[-1] == 1 else array, bit_depth=loaded.bit_depth,
                               grayscale=loaded.grayscale, alpha=alpha is not None)
        except (ImageError, UpscaleError, OSError, MemoryError) as error:
            yield UpscaledFile(source, None, about(source, str(error) or type(error).__name__))


def upscale_array(
    model: ImplicitModel | OnnxModel,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    scale: float | tuple[float, float] | None = None,
    size: tuple[int, int] | None = None,
    *,
    allow_huge: bool = False,
    precision: str = AUTO,
    chunk_size: int | None = None,
    tile_size: int | None = None,
    progress: bool | None = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Float (H, W, 3) in [0, 1] (and an optional (H, W) alpha) -> upscaled float arrays.
    Options are `upscale`'s."""
    check_model(model)
    return decode_array(model, rgb, alpha, scale, size, allow_huge, DecodeOptions(chunk_size, tile_size, precision, progress))


def decode_array(model: ImplicitModel | OnnxModel, rgb: np.ndarray, alpha: np.ndarray | None,
                 scale: float | tuple[float, float] | None, size: tuple[int, int] | Fit | None, allow_huge: bool,
                 decoding: DecodeOptions) -> tuple[np.ndarray, np.ndarray | None]:
    """`upscale_array` for a checked model, decoded as `decoding` asks."""
    out_hw = output_size(rgb.shape[:2], scale, size)
    check_output_size(out_hw, allow_huge)
    lr = float_tensor(rgb).permute(2, 0, 1).unsqueeze(0)
    out = upscale_tensor(model, lr, out_hw, **decoding.tiling_arguments())[0].permute(1, 2, 0).numpy()
    return out, (resize_alpha(alpha, out_hw) if alpha is not None else None)


def float_tensor(array: np.ndarray) -> Tensor:
    """A float32 tensor of `array`, sharing its memory where it can. A read-only array (a
    PIL image's `np.asarray`, a memory map) is copied: PyTorch warns about tensors of
    memory it cannot write, once per process, in the middle of an upscale's output."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def resize_alpha(alpha: np.ndarray, size: tuple[int, int], rows: Span | None = None) -> np.ndarray:
    """Bicubic resize of an alpha plane in [0, 1], clamped: transparency is not super-resolved.

    PyTorch's bicubic (`F.interpolate(mode="bicubic")`), computed for output rows `rows`
    only (default: all), so that a streamed output resizes its alpha band by band.
    """
    rows = rows or Span(0, size[0])
    plane = float_tensor(alpha)
    row_w, row_i = bicubic_taps(plane.shape[0], size[0], rows.start, rows.stop)
    col_w, col_i = bicubic_taps(plane.shape[1], size[1])
    band = plane[row_i[:, 0]] * row_w[:, 0, None]  # (rows, in_w)
    for k in range(1, 4):
        band = band + plane[row_i[:, k]] * row_w[:, k, None]
    resized = band[:, col_i[:, 0]] * col_w[None, :, 0]  # (rows, out_w)
    for k in range(1, 4):
        resized = resized + band[:, col_i[:, k]] * col_w[None, :, k]
    return resized.clamp_(0, 1).numpy()


def upscale_image_bands(model: ImplicitModel | OnnxModel, image: LoadedImage, out_hw: tuple[int, int], decoding: DecodeOptions,
                        on_block: Callable[[int], None] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(rgb, alpha) float bands of an image's upscale, top to bottom, for
    `imageio.write_image_bands`: the output is never whole in memory. `on_block` is
    `tiling.upscale_bands`'."""
    lr = float_tensor(image.rgb).permute(2, 0, 1).unsqueeze(0)
    for rows, rgb in upscale_bands(model, lr, out_hw, on_block=on_block, **decoding.tiling_arguments()):
        alpha = None if image.alpha is None else resize_alpha(image.alpha, out_hw, rows)
        yield rgb.numpy(), alpha
