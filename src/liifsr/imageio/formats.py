"""The image formats liifsr reads and writes: their extensions, Pillow's name for each and what
each can store."""

from __future__ import annotations

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
# Largest side each format can store; PNG and TIFF have no practical limit here.
_MAX_SIDE = {"JPEG": 65535, "WEBP": 16383}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow modes of 16-bit gray images (PNG, TIFF), read at 16 bits (`_from_pil`).
_SIXTEEN_BIT_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I")
