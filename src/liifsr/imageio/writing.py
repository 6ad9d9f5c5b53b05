"""Writing image files, atomically: `check_writable` before any work, `write_image` of a whole
image and `write_image_bands` of one that arrives in bands (PNG streamed)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from liifsr.files import OutputError, atomic_write, check_output_path
from liifsr.imageio.convert import _quantize_inputs
from liifsr.imageio.errors import ImageError, _os_error_problem, _write_error
from liifsr.imageio.formats import _ALPHA_EXTENSIONS, _MAX_SIDE, _PIL_FORMATS, IMAGE_EXTENSIONS
from liifsr.imageio.png_writer import _write_png

LOSSY_FORMATS = ("JPEG", "WEBP")  # the formats `quality` applies to
# Encoder options chosen for super-resolution outputs, where fidelity matters
# more than size: no chroma subsampling for JPEG, lossless WebP.
_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"lossless": True},
}


def check_writable(
    path: str | os.PathLike[str], *, bit_depth: int = 8, alpha: bool = False, size: tuple[int, int] | None = None
) -> Path:
    """Validate an output destination before any expensive work, so the CLI fails fast.

    Checks the extension is supported (and can hold the requested alpha /
    bit depth and `size` (HEIGHT, WIDTH)), that the path is not a directory, and that
    its directory exists and is writable. Returns the destination as a Path.
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    with _as_image_error():
        dest = check_output_path(path, IMAGE_EXTENSIONS)
    ext = dest.suffix.lower()
    if bit_depth == 16 and ext != ".png":
        raise _write_error(path, f"{ext} cannot store 16-bit images", "use .png, or write 8-bit")
    if alpha and ext not in _ALPHA_EXTENSIONS:
        raise _write_error(path, f"{ext} cannot store an alpha channel", "use .png (or .webp/.tiff)")
    limit = _MAX_SIDE.get(_PIL_FORMATS[ext])
    if size is not None and limit is not None and max(size) > limit:
        raise _write_error(path, f"{ext} images are at most {limit} pixels on a side, this one is {size[0]}x{size[1]} "
                           "(HEIGHTxWIDTH)", "use .png")
    return dest


@contextmanager
def _as_image_error() -> Iterator[None]:
    """Destination problems of an image file are image errors, with the same message."""
    try:
        yield
    except OutputError as error:
        raise ImageError(str(error)) from None


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    grayscale: bool = False,
    bit_depth: int = 8,
) -> None:
    """Write float RGB in [0, 1] (plus optional alpha) atomically; format from the extension.

    Values are clipped then rounded to the nearest level. ``grayscale`` writes
    one channel (mean of the three), matching how :func:`read_image` expands
    gray sources. 16-bit is PNG only; colour or alpha 16-bit PNGs go through
    pypng because Pillow has no 16-bit RGB/LA/RGBA modes.
    """
    color, alpha_levels = _quantize_inputs(rgb, alpha, grayscale, bit_depth)
    dest = check_writable(path, bit_depth=bit_depth, alpha=alpha is not None)
    pixels = color if alpha_levels is None else np.concatenate([color, alpha_levels[..., None]], axis=-1)
    try:
        with _as_image_error(), atomic_write(dest) as tmp:
            if bit_depth == 16 and pixels.shape[-1] > 1:
                _write_png(tmp, pixels.shape[:2], pixels.shape[-1], 16, [pixels])
            else:
                _write_pil(tmp, pixels, _PIL_FORMATS[dest.suffix.lower()])
    except OSError as error:
        raise _write_error(path, _os_error_problem(error), "check free disk space and permissions") from None


def _write_pil(tmp: Path, pixels: np.ndarray, pil_format: str, quality: int | None = None) -> None:
    """8-bit anything, or 16-bit single-channel gray (Pillow mode I;16). `quality` (1-100)
    makes JPEG and WebP lossy at that quality (default: JPEG 95, WebP lossless)."""
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    image = Image.fromarray(np.ascontiguousarray(pixels))
    options = dict(_SAVE_OPTIONS.get(pil_format, {}))
    if quality is not None and pil_format in LOSSY_FORMATS:
        options["quality"] = quality
        if pil_format == "WEBP":
            options["lossless"] = False  # WebP is lossless by default here
    image.save(tmp, format=pil_format, **options)


def write_image_bands(
    path: str | os.PathLike[str],
    size: tuple[int, int],
    bands: Iterable[tuple[np.ndarray, np.ndarray | None]],
    *,
    alpha: bool = False,
    grayscale: bool = False,
    bit_depth: int = 8,
    quality: int | None = None,
) -> None:
    """Write an image of `size` (HEIGHT, WIDTH) given top to bottom as bands (rgb (h, W, 3)
    float in [0, 1], alpha (h, W) or None), atomically, with `write_image`'s rules.

    PNG is streamed (`_write_png`): each band is quantised, its rows filtered, compressed
    and written, and dropped, so memory does not grow with the image. Other formats cannot
    be written row by row through Pillow: they are assembled in memory at 8 bits (3 or
    4 bytes per pixel), then saved.
    """
    height, width = size
    dest = check_writable(path, bit_depth=bit_depth, alpha=alpha, size=size)
    planes = (1 if grayscale else 3) + (1 if alpha else 0)

    def levels() -> Iterator[np.ndarray]:
        done = 0
        for rgb, alpha_band in bands:
            color, alpha_levels = _quantize_inputs(rgb, alpha_band, grayscale, bit_depth)
            if (alpha_levels is not None) != alpha or color.shape[1] != width:
                raise ValueError(f"band of shape {rgb.shape} does not fit a {height}x{width} image (alpha: {alpha})")
            done += color.shape[0]
            yield color if alpha_levels is None else np.concatenate([color, alpha_levels[..., None]], axis=-1)
        if done != height:
            raise ValueError(f"bands hold {done} rows, the image {height}")

    try:
        with _as_image_error(), atomic_write(dest) as tmp:
            if dest.suffix.lower() == ".png":
                _write_png(tmp, size, planes, bit_depth, levels())
            else:
                pixels = np.empty((height, width, planes), np.uint8)
                row = 0
                for band in levels():
                    pixels[row : row + band.shape[0]] = band
                    row += band.shape[0]
                _write_pil(tmp, pixels, _PIL_FORMATS[dest.suffix.lower()], quality)
    except OSError as error:
        raise _write_error(path, _os_error_problem(error), "check free disk space and permissions") from None
