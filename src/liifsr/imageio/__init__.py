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

    errors.py      ImageError and its one-line messages
    formats.py     the extensions, Pillow's formats, what each format can store
    convert.py     LoadedImage; Pillow images to float pixels, float pixels to levels
    reading.py     read_image, read_uint8, probe_bit_depth, sample_image, exif_orientation
    writing.py     check_writable, write_image, write_image_bands
    png_writer.py  the streamed PNG writer (Up filter, PNG_COMPRESSION)
    discovery.py   find_images, find_inputs, collect_images: the images of folders
"""

from __future__ import annotations

from liifsr.imageio.convert import LoadedImage, from_pil, to_pil
from liifsr.imageio.convert import _quantize_inputs as _quantize_inputs  # inference.py checks arrays with it
from liifsr.imageio.discovery import Found, collect_images, find_images, find_inputs
from liifsr.imageio.errors import ImageError
from liifsr.imageio.formats import IMAGE_EXTENSIONS
from liifsr.imageio.png_writer import PNG_COMPRESSION
from liifsr.imageio.reading import (
    MAX_INPUT_PIXELS,
    exif_orientation,
    probe_bit_depth,
    read_image,
    read_uint8,
    sample_image,
)
from liifsr.imageio.writing import check_writable, write_image, write_image_bands

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_INPUT_PIXELS",
    "PNG_COMPRESSION",
    "Found",
    "ImageError",
    "LoadedImage",
    "check_writable",
    "collect_images",
    "find_images",
    "find_inputs",
    "from_pil",
    "probe_bit_depth",
    "exif_orientation",
    "read_image",
    "read_uint8",
    "sample_image",
    "to_pil",
    "write_image",
    "write_image_bands",
]
