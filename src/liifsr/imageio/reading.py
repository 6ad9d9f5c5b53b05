"""Reading image files: `read_image` (the one image reader of liifsr), `read_uint8`, a file's
bit depth from its header, and the bundled sample photograph."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import png
import torch
from PIL import Image, UnidentifiedImageError

from liifsr.files import one_line
from liifsr.imageio.convert import LoadedImage, _check_single_frame, _from_pil, _load_fully, _to_rgb3
from liifsr.imageio.errors import _FIX_CORRUPT, ImageError, _os_error_problem, _quote, _read_error
from liifsr.imageio.formats import _PNG_SIGNATURE, _SIXTEEN_BIT_GRAY_MODES, IMAGE_EXTENSIONS

# Inputs beyond this many pixels are refused unless the caller allows huge images
# (`--allow-huge`): decoding one takes about 30 bytes per pixel.
MAX_INPUT_PIXELS = 2**27  # 134,217,728, e.g. 11585 x 11585
_EXIF_ORIENTATION = 0x0112
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # not on Windows, which has no FIFOs to wait on
# The most read from a pipe (`/dev/stdin`, a FIFO): more than any image within the pixel limit needs.
MAX_PIPE_BYTES = 2**31


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
            orientation = exif_orientation(img)
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


def exif_orientation(img: Image.Image) -> int:
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


def sample_image() -> Path:
    """The bundled sample photograph: NASA's astronaut portrait (public domain), 512x512,
    as shipped in scikit-image's `skimage/data/astronaut.png`."""
    from importlib import resources

    return Path(str(resources.files("liifsr") / "assets" / "astronaut.png"))
