"""Reading and writing images: the one image reader of liifsr (upscaling, training,
evaluation and figures all read through :func:`read_image`) and the image writer.

Everything a user can get wrong about an input or output file (missing,
truncated, unsupported, unwritable...) surfaces as :class:`ImageError` with a
single-line message naming the file, the problem and the fix, so the CLI can
print it as is instead of a traceback.

Pixels cross this boundary as float32 arrays in [0, 1]: the model always sees
RGB, and the metadata it needs to write a faithful output (alpha, grayscale,
bit depth) travels alongside in :class:`LoadedImage`.

Inputs above :data:`MAX_INPUT_PIXELS` are refused from their header, before they are
decoded (a small file can declare a huge image), unless the caller lifts the limit.

Outputs are written with :func:`liifsr.files.atomic_write`, so an interrupted or
failed run never leaves a partial file, nor clobbers a previous good one.
:func:`write_image_bands` writes an image that arrives top to bottom in bands: PNG
is streamed (each row is compressed and written when its band arrives), other
formats are assembled in memory at 8 bits and saved by Pillow.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import png
import torch
from PIL import Image, UnidentifiedImageError

from liifsr.files import OutputError, atomic_write, check_output_path, one_line

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageError",
    "LoadedImage",
    "check_writable",
    "read_image",
    "read_uint8",
    "write_image",
    "write_image_bands",
]

#: Extensions (lower case, with the dot) treated as images when scanning folders
#: and accepted as output destinations.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

_PIL_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
# BMP is accepted by Pillow in RGBA but read back without alpha: refuse it.
_ALPHA_EXTENSIONS = frozenset({".png", ".webp", ".tif", ".tiff"})
LOSSY_FORMATS = ("JPEG", "WEBP")  # the formats `quality` applies to
# Encoder options chosen for super-resolution outputs, where fidelity matters
# more than size: no chroma subsampling for JPEG, lossless WebP.
_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"lossless": True},
}
# Inputs beyond this many pixels are refused unless the caller allows huge images
# (`--allow-huge`): decoding one takes about 30 bytes per pixel.
MAX_INPUT_PIXELS = 2**27  # 134,217,728, e.g. 11585 x 11585
# Largest side each format can store; PNG and TIFF have no practical limit here.
_MAX_SIDE = {"JPEG": 65535, "WEBP": 16383}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The zlib level of the PNGs liifsr writes itself (streamed outputs, 16-bit colour). On the
# README's quick-start output (1792x1792, edsr-thermal-clean), Up-filtered, on the 2-core AMX
# Xeon: level 1 took 0.11 s for 4.1 MB, level 6 (zlib's default) 0.63 s for 3.6 MB; the rows
# unfiltered, as pypng writes them, 0.18 s for 6.9 MB at level 1, 0.25 s for 7.0 MB at 6
# (`python benchmarks/bench_breakdown.py --model edsr-thermal-clean --precisions bf16`).
PNG_COMPRESSION = 1
_PNG_FILTER_UP = 2  # PNG filter type 2: each byte minus the byte above it
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # planes -> PNG colour type: gray, gray + alpha, RGB, RGBA
_PNG_BLOCK_BYTES = 2**22  # rows filtered and compressed at a time: bounds the copies a band's writing makes
_EXIF_ORIENTATION = 0x0112
# Pillow modes of 16-bit gray images (PNG, TIFF), read at 16 bits (`_from_pil`).
_SIXTEEN_BIT_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I")
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # not on Windows, which has no FIFOs to wait on
# The most read from a pipe (`/dev/stdin`, a FIFO): more than any image within the pixel limit needs.
MAX_PIPE_BYTES = 2**31
_FIX_CORRUPT = "re-export or re-download it"


class ImageError(ValueError):
    """A problem with an image file the user gave us, with a one-line message.

    Subclasses ValueError so callers that only care about "bad input" can
    catch it generically; the CLI catches it to print the message alone.
    """


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


# --------------------------------------------------------------------------
# messages


def _quote(path: str | os.PathLike[str]) -> str:
    """Quote a path for a message; repr escapes newlines and control characters."""
    return repr(os.fspath(path))


def _read_error(path: str | os.PathLike[str], problem: str, fix: str) -> ImageError:
    return ImageError(f"cannot read {_quote(path)}: {one_line(problem)} ({fix})")


def _write_error(path: str | os.PathLike[str], problem: str, fix: str) -> ImageError:
    return ImageError(f"cannot write {_quote(path)}: {one_line(problem)} ({fix})")


def _os_error_problem(error: OSError) -> str:
    """The useful part of an OSError (strerror without the repeated filename)."""
    return error.strerror or str(error) or type(error).__name__


# --------------------------------------------------------------------------
# reading


def read_image(path: str | os.PathLike[str], max_pixels: int | None = MAX_INPUT_PIXELS, *,
               inside: str | os.PathLike[str] | None = None) -> LoadedImage:
    """Decode an image file fully into a :class:`LoadedImage`, EXIF orientation applied.

    The whole file is decoded here (not lazily) so a truncated or corrupt
    file fails before any expensive model work starts. An image of more than
    `max_pixels` pixels (None: no limit) is refused from its header, undecoded.
    The file is opened once (`_open_input`): a FIFO never blocks the open, and with
    `inside` (the folder it was listed in) the file opened must lie in that folder.
    """
    if os.path.isdir(path):
        raise _read_error(path, "it is a directory, not an image file", "pass an image file")
    try:
        with _open_input(path, inside) as handle, _pillow_pixel_limit_off(), Image.open(handle) as img:
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise _read_error(
                    path, f"image of {img.height}x{img.width} (HEIGHTxWIDTH) pixels is over the limit of {max_pixels:,} pixels",
                    "use --allow-huge if you mean it, or downscale it first")
            _load_fully(path, img)
            _check_single_frame(path, img)
            if img.width == 0 or img.height == 0:
                raise _read_error(path, f"image has zero size ({img.height}x{img.width}, HEIGHTxWIDTH)", _FIX_CORRUPT)
            orientation = _exif_orientation(img)
            if img.format == "PNG" and _png_needs_pypng(handle):
                loaded = _read_png_16bit_color(path, handle, source_mode=f"{img.mode};16")
            else:
                loaded = _from_pil(path, img)
    except FileNotFoundError:
        raise _read_error(path, "file does not exist", "check the path") from None
    except PermissionError:
        raise _read_error(path, "permission denied", "check the file permissions") from None
    except UnidentifiedImageError:
        supported = ", ".join(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)
        raise _read_error(path, "not a recognised image file", f"use one of: {supported}") from None
    except OSError as error:
        raise _read_error(path, _os_error_problem(error), "check the file") from None
    except (ValueError, SyntaxError, EOFError, IndexError, TypeError) as error:
        if isinstance(error, ImageError):
            raise
        # Pillow's header parsers raise these for malformed files (e.g. an oversized PNG text chunk).
        raise _read_error(path, f"file is corrupt ({one_line(error) or type(error).__name__})", _FIX_CORRUPT) from None
    return _apply_orientation(loaded, orientation)


@contextmanager
def _open_input(path: str | os.PathLike[str], inside: str | os.PathLike[str] | None) -> Iterator[BinaryIO]:
    """`path` opened once for reading, as a seekable binary file.

    Opened non-blocking, so that a FIFO without a writer does not wait forever: a pipe
    (`/dev/stdin`, a FIFO) is read whole (what a writer sends, or nothing at once when
    there is none), a device or socket is refused. With `inside`, the file opened must be
    one that lies in that folder: a link swapped in after the folder was listed, leading
    out of it, is refused here, where the file is opened, not only when it was listed.
    """
    fd = os.open(path, os.O_RDONLY | _O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if inside is not None:
            _check_opened_inside(path, info, inside)
        if stat.S_ISFIFO(info.st_mode):
            os.set_blocking(fd, True)
            with open(fd, "rb", closefd=False) as pipe:
                data = pipe.read(MAX_PIPE_BYTES + 1)
            if not data:
                raise _read_error(path, "it is a pipe (FIFO) that gave no data",
                                  "write the image into it, or pass an image file")
            if len(data) > MAX_PIPE_BYTES:
                raise _read_error(path, f"the pipe gave more than {MAX_PIPE_BYTES:,} bytes", "pass an image file")
            handle: BinaryIO = io.BytesIO(data)
        elif stat.S_ISREG(info.st_mode):
            handle = open(fd, "rb", closefd=False)
        else:
            raise _read_error(path, "it is not a regular file (a device or a socket)", "pass an image file")
        with handle:
            yield handle
    finally:
        os.close(fd)


def _check_opened_inside(path: str | os.PathLike[str], opened: os.stat_result, inside: str | os.PathLike[str]) -> None:
    """Refuse an opened file that is not `path` resolved inside folder `inside`: where the
    path leads now must be in the folder, and be the very file opened (a link switched back
    between the open and this check leads to another file)."""
    real = Path(path).resolve()
    try:
        same = os.path.samestat(os.stat(real), opened)
    except OSError:
        same = False
    if not (same and real.is_relative_to(Path(inside).resolve())):
        raise _read_error(path, f"it leads out of the folder {_quote(inside)} (a link changed after the folder was listed)",
                          "upscale the file it leads to by its own name if you mean it")


@contextmanager
def _pillow_pixel_limit_off() -> Iterator[None]:
    """Pillow's own decompression-bomb check off while a file is opened.

    Pillow warns above the module-wide `Image.MAX_IMAGE_PIXELS` and refuses twice that;
    liifsr checks its own limit on the header instead (and lifts it for --allow-huge),
    with a message that says so.
    """
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def read_uint8(path: str | os.PathLike[str], max_pixels: int | None = MAX_INPUT_PIXELS) -> torch.Tensor:
    """An image file as a uint8 (3, H, W) tensor, gray replicated to RGB as LIIF's loader does.

    8-bit files come back with their exact values; 16-bit ones are rounded to 8 bits.
    """
    levels = np.rint(read_image(path, max_pixels).rgb * 255).astype(np.uint8)
    return torch.from_numpy(levels).permute(2, 0, 1).contiguous()


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


def _exif_orientation(img: Image.Image) -> int:
    """EXIF Orientation tag (1..8), 1 when absent or unreadable.

    Orientation is optional metadata: a malformed EXIF block must not make an
    otherwise fine image unreadable, hence the broad except.
    """
    try:
        value = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - see docstring
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _apply_orientation(loaded: LoadedImage, orientation: int) -> LoadedImage:
    """Rotate/flip the arrays like ``ImageOps.exif_transpose`` would.

    Done on the arrays rather than the Pillow image so the same code handles
    16-bit colour PNGs, which never exist as a Pillow image.
    """
    transforms = {
        2: lambda a: a[:, ::-1],  # FLIP_LEFT_RIGHT
        3: lambda a: a[::-1, ::-1],  # ROTATE_180
        4: lambda a: a[::-1],  # FLIP_TOP_BOTTOM
        5: lambda a: a.swapaxes(0, 1),  # TRANSPOSE
        6: lambda a: np.rot90(a, -1),  # ROTATE_270 (clockwise)
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],  # TRANSVERSE
        8: lambda a: np.rot90(a, 1),  # ROTATE_90 (counter-clockwise)
    }
    if orientation == 1:
        return loaded
    fix = transforms[orientation]
    return LoadedImage(
        rgb=np.ascontiguousarray(fix(loaded.rgb)),
        alpha=None if loaded.alpha is None else np.ascontiguousarray(fix(loaded.alpha)),
        grayscale=loaded.grayscale,
        bit_depth=loaded.bit_depth,
        source_mode=loaded.source_mode,
    )


def _png_needs_pypng(handle: BinaryIO) -> bool:
    """True for 16-bit PNGs with colour (or gray+alpha), which Pillow truncates to 8 bits.

    Reads the IHDR chunk directly: bit depth at byte 24, colour type at 25.
    16-bit plain gray (colour type 0) is left to Pillow, which keeps it as I;16.
    """
    handle.seek(0)
    header = handle.read(26)
    if len(header) < 26 or not header.startswith(_PNG_SIGNATURE) or header[12:16] != b"IHDR":
        return False
    bit_depth, colour_type = header[24], header[25]
    return bit_depth == 16 and colour_type in (2, 4, 6)


def _read_png_16bit_color(path: str | os.PathLike[str], handle: BinaryIO, source_mode: str) -> LoadedImage:
    """Decode a 16-bit RGB/RGBA/gray+alpha PNG (the open file `handle` of `path`) with full precision using pypng."""
    try:
        handle.seek(0)
        reader = png.Reader(file=handle)
        reader.preamble()
        # An sBIT chunk says how many of the 16 bits the source had; the stored samples are
        # 16-bit all the same, and are read as such (asDirect would shift them down to the
        # sBIT depth, as Python lists rather than buffers).
        reader.sbit = None
        width, height, rows, info = reader.asDirect()
        data = np.vstack([np.asarray(row, dtype=np.uint16).reshape(-1) for row in rows])
    except (png.Error, EOFError, ValueError) as error:
        raise _read_error(path, f"file is corrupt ({one_line(error)})", _FIX_CORRUPT) from None
    planes = info["planes"]
    scale = float(2 ** info["bitdepth"] - 1)
    pixels = data.reshape(height, width, planes).astype(np.float32) / scale
    grayscale = bool(info["greyscale"])
    color_planes = 1 if grayscale else 3
    alpha = pixels[..., color_planes] if info["alpha"] else None
    rgb = pixels[..., :color_planes]
    return LoadedImage(
        rgb=_to_rgb3(rgb),
        alpha=None if alpha is None else np.ascontiguousarray(alpha),
        grayscale=grayscale,
        bit_depth=16,
        source_mode=source_mode,
    )


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


# --------------------------------------------------------------------------
# writing


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


def _write_png(tmp: Path, size: tuple[int, int], planes: int, bit_depth: int, bands: Iterable[np.ndarray]) -> None:
    """A PNG of `size` (HEIGHT, WIDTH) from integer levels (uint8 or uint16) that arrive top
    to bottom in bands (h, WIDTH, planes), planes 1-4 being gray, gray + alpha, RGB, RGBA;
    streamed: each block of rows is filtered, compressed and written as it comes.

    Every row is stored with PNG's Up filter (each byte minus the one above it), which
    upscaled images' smooth columns compress well after; the zlib level is PNG_COMPRESSION.
    """
    height, width = size
    with open(tmp, "wb") as handle:
        handle.write(_PNG_SIGNATURE)
        header = struct.pack(">IIBBBBB", width, height, bit_depth, _PNG_COLOUR_TYPES[planes], 0, 0, 0)
        _write_png_chunk(handle, b"IHDR", header)
        above = np.zeros(width * planes * bit_depth // 8, np.uint8)  # the first row's filter reads zeros above it
        step = max(1, _PNG_BLOCK_BYTES // above.size)
        compressor = zlib.compressobj(PNG_COMPRESSION)
        for band in bands:
            for start in range(0, band.shape[0], step):
                # PNG's samples are big-endian: 16-bit levels as their two bytes, high first
                rows = np.ascontiguousarray(band[start : start + step], ">u2" if bit_depth == 16 else np.uint8)
                rows = rows.view(np.uint8).reshape(rows.shape[0], -1)
                filtered = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
                filtered[:, 0] = _PNG_FILTER_UP
                np.subtract(rows[0], above, out=filtered[0, 1:])  # uint8: modulo 256, as PNG's filters are
                np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
                above = rows[-1].copy()
                _write_png_chunk(handle, b"IDAT", compressor.compress(filtered.data))  # the array's bytes, uncopied
        _write_png_chunk(handle, b"IDAT", compressor.flush())
        _write_png_chunk(handle, b"IEND", b"")


def _write_png_chunk(handle: io.BufferedWriter, kind: bytes, data: bytes) -> None:
    """One PNG chunk: its length, kind, data and CRC; an empty IDAT (zlib held it back) is left out."""
    if kind == b"IDAT" and not data:
        return
    handle.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))


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


def find_images(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files under `folder` (by extension), recursively, sorted. Symbolic links
    are not followed out of it: linked folders are not entered, and a linked file counts
    only if it points inside `folder`. A subfolder that cannot be listed is an error naming
    it, not a part of the collection silently left out."""
    root = Path(folder)
    inside = root.resolve()
    found = []

    def unlisted(error: OSError) -> None:
        where = error.filename if error.filename is not None else root
        raise ImageError(f"cannot list folder {_quote(where)} inside {_quote(root)}: {_os_error_problem(error)} "
                         "(fix its permissions, or move it out of the input folder)")

    for directory, subdirectories, names in os.walk(root, onerror=unlisted, followlinks=False):
        subdirectories.sort()
        for name in names:
            path = Path(directory) / name
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and path.resolve().is_relative_to(inside):
                found.append(path)
    return sorted(found)


class Found(NamedTuple):
    """One image of a collection: its path, its path relative to the input that named it
    (its name, for a file given by name), and that input folder (None for a file)."""

    path: Path
    relative: Path
    folder: Path | None


def find_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Found]:
    """Every input file and every image under every input folder (`find_images`), in the
    order given; a folder without images is an error. One path alone is one input (not an
    iterable of its characters)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found = []
    for item in inputs:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"inputs are paths (str or Path), not {type(item).__name__} {item!r}")
        item = Path(item)
        if item.is_dir():
            images = find_images(item)
            if not images:
                raise ImageError(f"folder {str(item)!r} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            found += [Found(image, image.relative_to(item), item) for image in images]
        else:
            found.append(Found(item, Path(item.name), None))
    return found


def collect_images(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[tuple[Path, Path]]:
    """(file, its path relative to its input) for every input file (relative: its name) and
    every image under every input folder (`find_inputs`); a folder without images is an error."""
    return [(item.path, item.relative) for item in find_inputs(inputs)]


def probe_bit_depth(path: str | os.PathLike[str]) -> int:
    """The bit depth (8 or 16) that `read_image` will give `path`, from its header alone, so
    that an output's name (16 bits: PNG) is known before any file is decoded. 8 for what it
    cannot tell (a file missing, not a regular file, or not an image): reading it says why."""
    try:  # a FIFO is not even opened: that would let its writer in, and the close would break its pipe
        if not stat.S_ISREG(os.stat(path).st_mode):
            return 8
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK)  # never waits, should it have become a FIFO since
    except (OSError, ValueError):
        return 8
    with open(fd, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return 8
            header = handle.read(26)
            if header.startswith(_PNG_SIGNATURE):
                return 16 if len(header) == 26 and header[24] == 16 else 8
            handle.seek(0)
            with _pillow_pixel_limit_off(), Image.open(handle) as img:
                return 16 if img.mode in _SIXTEEN_BIT_GRAY_MODES else 8
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError):
            return 8


# --------------------------------------------------------------------------
# in-memory PIL images (the Python API's `model.upscale(pil_image)`)


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


def sample_image() -> Path:
    """The bundled sample photograph: NASA's astronaut portrait (public domain), 512x512,
    as shipped in scikit-image's `skimage/data/astronaut.png`."""
    from importlib import resources

    return Path(str(resources.files("liifsr") / "assets" / "astronaut.png"))
