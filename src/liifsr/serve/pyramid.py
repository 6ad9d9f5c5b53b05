"""The zoom levels of the viewer and the pixels of one tile, as small pure functions.

Level scales are LR-relative: below 1 the image is downscaled (MATLAB imresize, with
antialiasing) for the overview; from x1 to x30 every level is a whole-image upscale of
the output size `inference.output_size(lr_size, scale)`, and tile (col, row) of a level
is the TILE x TILE block of that upscale starting at (row * TILE, col * TILE) (plus
an overlap of one pixel), decoded on
its own by region decoding (`tiling.upscale_tensor(..., region=...)`). Upscale levels
are half an octave apart, so the viewer never magnifies decoded pixels by much; x30 is
the last one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from liifsr.checks import output_size
from liifsr.inference import float_tensor
from liifsr.resize import contributions
from liifsr.tiling import Span

TILE = 256
# Neighbouring tiles share a pixel on each side, so the viewer can draw them edge to edge
# without stretching them to hide seams.
OVERLAP = 1
MAX_ZOOM = 30.0
STEPS_PER_OCTAVE = 2


@dataclass(frozen=True)
class Level:
    scale: float
    height: int
    width: int

    @property
    def decoded(self) -> bool:
        """Whether the model draws this level (scale >= 1) or it is a downscaled overview."""
        return self.scale >= 1

    def tiles(self, tile: int = TILE) -> tuple[int, int]:
        """(columns, rows) of tiles."""
        return math.ceil(self.width / tile), math.ceil(self.height / tile)


def upscale_factors(max_zoom: float = MAX_ZOOM) -> list[float]:
    """1, 2^(1/2), 2, ... below max_zoom, then max_zoom itself."""
    count = math.ceil(math.log2(max_zoom) * STEPS_PER_OCTAVE - 1e-9)
    return [2 ** (k / STEPS_PER_OCTAVE) for k in range(count)] + [max_zoom]


def levels(lr_hw: tuple[int, int], tile: int = TILE, max_zoom: float = MAX_ZOOM) -> list[Level]:
    """All levels of an LR image, smallest first: halvings down to one tile, then the upscales."""
    scales = upscale_factors(max_zoom)
    scale = 0.5
    while max(lr_hw) * scale * 2 > tile:  # the previous level did not fit in one tile
        scales.insert(0, scale)
        scale /= 2
    return [Level(s, *output_size(lr_hw, s, None)) for s in scales]


def tile_region(level: Level, col: int, row: int, tile: int = TILE, overlap: int = OVERLAP) -> tuple[Span, Span] | None:
    """(rows, cols) of tile (col, row) with `overlap` more pixels on each inner side (as in
    Deep Zoom), or None when the level has no such tile."""
    columns, rows = level.tiles(tile)
    if not (0 <= col < columns and 0 <= row < rows):
        return None
    return (Span(max(0, row * tile - overlap), min((row + 1) * tile + overlap, level.height)),
            Span(max(0, col * tile - overlap), min((col + 1) * tile + overlap, level.width)))


def bicubic_region(lr: np.ndarray, out_hw: tuple[int, int], rows: Span, cols: Span) -> np.ndarray:
    """Rows x cols of MATLAB's bicubic imresize of `lr` (H, W, C) to `out_hw`, without the rest.

    The same weights as `resize.imresize(x, size=out_hw)` (antialiased when shrinking),
    applied to the output rows and columns asked for only, so a tile of a x30 view costs
    a tile's worth of work.
    """
    image = float_tensor(lr)  # a copy where `lr` is read-only (PyTorch warns of those)
    taps = []
    for axis, (n_out, span) in enumerate(zip(out_hw, (rows, cols))):
        n_in = image.shape[axis]
        weights, indices = contributions(n_in, n_out, n_out / n_in)
        weights, indices = weights[span.start : span.stop].float(), indices[span.start : span.stop]
        low, high = int(indices.min()), int(indices.max()) + 1
        image = image.narrow(axis, low, high - low)  # only the input pixels this tile reads
        taps.append((weights, indices - low))
    for axis, (weights, indices) in enumerate(taps):
        gathered = image.index_select(axis, indices.reshape(-1))
        shape = list(image.shape)
        shape[axis : axis + 1] = list(indices.shape)
        weights = weights.view(*weights.shape, *([1] * (image.dim() - axis - 1)))
        image = (gathered.view(shape) * weights).sum(dim=axis + 1)
    return image.numpy()
