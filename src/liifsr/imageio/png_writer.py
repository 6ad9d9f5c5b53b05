"""The PNG writer: rows that arrive top to bottom in bands, Up-filtered, compressed and
written as they come, so that memory does not grow with the image."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from liifsr.imageio.formats import _PNG_SIGNATURE

# The zlib level of the PNGs liifsr writes itself (streamed outputs, 16-bit colour). On the
# README's quick-start output (1792x1792, edsr-thermal-clean), Up-filtered, on the 2-core AMX
# Xeon: level 1 took 0.11 s for 4.1 MB, level 6 (zlib's default) 0.63 s for 3.6 MB; the rows
# unfiltered, as pypng writes them, 0.18 s for 6.9 MB at level 1, 0.25 s for 7.0 MB at 6
# (`python benchmarks/bench_breakdown.py --model edsr-thermal-clean --precisions bf16`).
PNG_COMPRESSION = 1
_PNG_FILTER_UP = 2  # PNG filter type 2: each byte minus the byte above it
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # planes -> PNG colour type: gray, gray + alpha, RGB, RGBA
_PNG_BLOCK_BYTES = 2**22  # rows filtered and compressed at a time: bounds the copies a band's writing makes


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
