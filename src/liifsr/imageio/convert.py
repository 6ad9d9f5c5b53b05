"""Decoded pixels: `LoadedImage` (float32 RGB in [0, 1] and what saving needs), made of Pillow
images, and float arrays quantised back to integer levels or to Pillow images."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from liifsr.files import one_line
from liifsr.imageio.errors import _FIX_CORRUPT, _read_error
from liifsr.imageio.formats import _SIXTEEN_BIT_GRAY_MODES


@dataclass
class LoadedImage:
    """A decoded image, normalised for the model plus what is needed to save it back.

    ``rgb`` is always (H, W, 3) so the model never has to special-case
    grayscale; ``grayscale`` records that the source had one channel so the
    output can be written the same way.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    grayscale: bool
    bit_depth: int
    source_mode: str


def _check_single_frame(path: str | os.PathLike[str], img: Image.Image) -> None:
    """Refuse animations and multi-page files rather than silently upscaling frame 0.

    MPO (what many phone cameras write as .jpg) is exempt: its extra frames
    are previews or stereo views, and frame 0 is the photo.
    """
    frames = getattr(img, "n_frames", 1)
    if frames > 1 and img.format != "MPO":
        raise _read_error(
            path,
            f"{img.format} file has {frames} frames/pages, only single images are supported",
            "extract the frame you want into its own file",
        )


def _load_fully(path: str | os.PathLike[str], img: Image.Image) -> None:
    """Force the full decode, turning decoder failures into one-line ImageErrors."""
    try:
        img.load()
    except OSError as error:
        if "truncated" in str(error):
            raise _read_error(path, "file is truncated", _FIX_CORRUPT) from None
        raise _read_error(path, f"file is corrupt ({one_line(error)})", _FIX_CORRUPT) from None
    except (SyntaxError, ValueError, EOFError) as error:
        # Pillow reports some structural PNG/JPEG errors as SyntaxError/ValueError.
        raise _read_error(path, f"file is corrupt ({one_line(error)})", _FIX_CORRUPT) from None


def _from_pil(path: str | os.PathLike[str], img: Image.Image) -> LoadedImage:
    """Normalise any supported Pillow mode to float RGB (+ alpha)."""
    mode = img.mode
    has_transparency = "transparency" in img.info
    if mode in _SIXTEEN_BIT_GRAY_MODES:
        return _from_pil_16bit_gray(path, img)
    if mode == "1" or (mode == "L" and not has_transparency):
        return _make_8bit(np.asarray(img.convert("L")), None, grayscale=True, mode=mode)
    if mode in ("L", "LA", "La"):
        pixels = np.asarray(img.convert("LA"))
        return _make_8bit(pixels[..., 0], pixels[..., 1], grayscale=True, mode=mode)
    if mode in ("P", "PA", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr"):
        wants_alpha = mode in ("PA", "RGBA", "RGBa") or (has_transparency and mode in ("P", "RGB"))
        if wants_alpha:
            pixels = np.asarray(img.convert("RGBA"))
            return _make_8bit(pixels[..., :3], pixels[..., 3], grayscale=False, mode=mode)
        return _make_8bit(np.asarray(img.convert("RGB")), None, grayscale=False, mode=mode)
    raise _read_error(path, f"unsupported image mode {mode!r}", "convert it to 8- or 16-bit RGB/RGBA/gray PNG")


def _from_pil_16bit_gray(path: str | os.PathLike[str], img: Image.Image) -> LoadedImage:
    """16-bit gray (PNG/TIFF), with optional tRNS transparency.

    Mode "I" is 32-bit signed in Pillow; it is accepted only when its values
    fit in 16 bits, which is what 16-bit gray files decode to.
    """
    values = np.asarray(img).astype(np.int64)
    if values.min() < 0 or values.max() > 65535:
        raise _read_error(
            path,
            f"unsupported {img.mode!r} image with values outside 0..65535",
            "convert it to 8- or 16-bit gray PNG",
        )
    alpha = None
    transparent = img.info.get("transparency")
    if isinstance(transparent, int):
        alpha = (values != transparent).astype(np.float32)
    gray = values.astype(np.float32) / 65535.0
    return LoadedImage(rgb=_to_rgb3(gray[..., None]), alpha=alpha, grayscale=True, bit_depth=16, source_mode=img.mode)


def _make_8bit(color: np.ndarray, alpha: np.ndarray | None, grayscale: bool, mode: str) -> LoadedImage:
    color_f = color.astype(np.float32) / 255.0
    if color_f.ndim == 2:
        color_f = color_f[..., None]
    return LoadedImage(
        rgb=_to_rgb3(color_f),
        alpha=None if alpha is None else alpha.astype(np.float32) / 255.0,
        grayscale=grayscale,
        bit_depth=8,
        source_mode=mode,
    )


def _to_rgb3(color: np.ndarray) -> np.ndarray:
    """(H, W, 1) or (H, W, 3) float -> contiguous float32 (H, W, 3)."""
    if color.shape[-1] == 1:
        color = np.repeat(color, 3, axis=-1)
    return np.ascontiguousarray(color, dtype=np.float32)


def _quantize_inputs(
    rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool, bit_depth: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate arrays and turn them into integer levels; programming errors raise ValueError."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"rgb must have shape (H, W, 3) with H, W > 0, got {rgb.shape}")
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != rgb.shape[:2]:
            raise ValueError(f"alpha must have shape {rgb.shape[:2]}, got {alpha.shape}")
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    if np.isnan(rgb).any() or (alpha is not None and np.isnan(alpha).any()):
        raise ValueError("image data contains NaN values")
    color = rgb.mean(axis=-1, keepdims=True) if grayscale else rgb
    return _quantize(color, bit_depth), None if alpha is None else _quantize(alpha, bit_depth)


def _quantize(values: np.ndarray, bit_depth: int) -> np.ndarray:
    levels = 255 if bit_depth == 8 else 65535
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    scaled = np.clip(values, 0.0, 1.0, dtype=np.float32)  # one new array, scaled and rounded in place
    scaled *= levels
    return np.rint(scaled, out=scaled).astype(dtype)


def from_pil(img: Image.Image) -> LoadedImage:
    """A PIL image already in memory, normalised like `read_image` (no EXIF rotation).

    The rules of files hold: a lazily opened image that turns out truncated or corrupt
    is an ImageError, and animations are refused rather than reduced to frame 0.
    """
    name = getattr(img, "filename", "") or "<PIL image>"
    _load_fully(name, img)
    _check_single_frame(name, img)
    if img.width == 0 or img.height == 0:
        raise _read_error(name, f"image is empty ({img.height}x{img.width}, HEIGHTxWIDTH)", "pass a non-empty image")
    return _from_pil(name, img)


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None, grayscale: bool = False) -> Image.Image:
    """Float RGB in [0, 1] (+ alpha) -> 8-bit PIL image: L, LA, RGB or RGBA."""
    color, alpha_levels = _quantize_inputs(rgb, alpha, grayscale, 8)
    pixels = color if alpha_levels is None else np.concatenate([color, alpha_levels[..., None]], axis=-1)
    return Image.fromarray(np.ascontiguousarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels))
