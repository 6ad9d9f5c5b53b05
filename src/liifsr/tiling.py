"""The tiling engine: whole images upscaled with bounded memory, exactly as one forward would.

The LR grid is cut into tiles. For each tile we find the latent codes its output
pixels read (one cell beyond the tile with LIIF's local ensemble), encode that window
of codes (`models.window.encode_window`: plus the projection's halo and the encoder's
receptive radius, so the codes are those of the whole image), and decode the output
pixels whose centres fall in the tile, in chunks of at most `chunk_size` queries.

Peak memory beyond the input and output buffers is therefore bounded by the tile
(encoder activations over (tile + 2 * (margin + 2))^2 pixels) and the chunk
(about chunk_size * 4 * hidden floats for the MLP), whatever the image size.
`upscale_bands` goes one step further for outputs written to disk: it yields the
output top to bottom in bands of at most `BAND_PIXELS` pixels, so that no buffer
grows with the output (`liifsr.imageio.write_image_bands` streams them into a PNG).
Both run one tile loop (`_decoded_bands`): `upscale_tensor` writes each decoded block
straight into the whole output, `upscale_bands` into the band it yields next.

Requests are validated by `liifsr.checks`; `liifsr.inference` is the Python API on top.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from liifsr import coords as C
from liifsr.checks import check_input, check_model_precision, check_tuning
from liifsr.models.window import FeatureBlock, Span, encode_features, encode_window, grow, window_from_features  # noqa: F401  (grow: tiling's API as before)
from liifsr.progress import progress_bar
from liifsr.runtime import autocast, resolve_precision

if TYPE_CHECKING:
    from liifsr.models import ImplicitModel
    from liifsr.onnx_runtime import OnnxModel

# Queries decoded at once. On a CPU the MLP runs in cache-sized blocks of rows anyway
# (models.mlp.rows_per_block), so a chunk only has to amortise the per-chunk index arithmetic
# (about 150 small tensor operations): on this project's 2-core machine 65,536 decoded
# x4 in bf16 1.28x faster than 4,096 (fp32 unchanged), and a GPU wants large chunks too.
DEFAULT_CHUNK = 65536
DEFAULT_TILE = 256
# Inputs up to this many pixels are encoded in one piece (no margin overhead).
UNTILED_MAX_PIXELS = 512 * 512
# Output pixels per band of `upscale_bands` (float32 RGB: 48 MB).
BAND_PIXELS = 2**22
# Encoder features kept for bands thinner than a tile (at large scales a band holds a few LR
# rows): a band then cuts its windows from features encoded once for many bands, instead of
# encoding its own rows with the encoder's margin above and below them (at x30, 2048 px
# wide, that was 40x the encoder work).
FEATURE_CACHE_BYTES = 2**26


def tile_spans(n: int, tile: int) -> list[Span]:
    return [Span(start, min(start + tile, n)) for start in range(0, n, tile)]


def owned_outputs(centers: Tensor, n_latent: int, span: Span) -> Span:
    """Output pixels (along one axis) whose centre lies in latent cells `span`.

    The nearest latent cell is monotone in the coordinate, so this is a contiguous range.
    """
    cells = C.nearest_index(centers, n_latent)
    bounds = torch.tensor([span.start, span.stop], device=cells.device)
    start, stop = torch.searchsorted(cells, bounds).tolist()
    return Span(start, stop)


def needed_latents(ys: Tensor, xs: Tensor, grid_hw: tuple[int, int], local_ensemble: bool) -> tuple[Span, Span]:
    """Latent rows and columns that the queries ys x xs (ascending centres) read, all
    ensemble members included.

    The lookup (`coords.shifted_query`, then `nearest_index`) is monotone in the
    coordinate, so the grid's two extreme corners bound the span.
    """
    corners = torch.stack([ys[[0, -1]], xs[[0, -1]]], dim=-1)
    eps = 1e-6 if local_ensemble else 0.0
    row_parts, col_parts = [], []
    for vy, vx in C.ensemble_offsets(local_ensemble):
        query = C.shifted_query(corners, vy, vx, grid_hw, eps)
        row_parts.append(C.nearest_index(query[:, 0], grid_hw[0]))
        col_parts.append(C.nearest_index(query[:, 1], grid_hw[1]))
    rows, cols = torch.cat(row_parts), torch.cat(col_parts)
    return Span(int(rows.min()), int(rows.max()) + 1), Span(int(cols.min()), int(cols.max()) + 1)


def decode_region(
    model: ImplicitModel | OnnxModel,
    inp: Tensor,
    out_hw: tuple[int, int],
    rows: Span,
    cols: Span,
    chunk_size: int,
    features: FeatureBlock | None = None,
) -> Iterator[tuple[Span, Span, Tensor]]:
    """Decode the output pixels rows x cols, encoding only the LR window they read (or
    cutting it from `features`, which must hold it).

    Yields (rows, cols, rgb (1, h, w, 3) in normalised space) in chunks of at most
    `chunk_size` queries. `inp` is the normalised LR image (1, 3, H, W) on the model's
    device; the result equals that region of one LIIF forward over the whole output.
    """
    ys = C.pixel_centers(out_hw[0], inp.device)[rows.start : rows.stop]
    xs = C.pixel_centers(out_hw[1], inp.device)[cols.start : cols.stop]
    cell = C.cell_size(out_hw, inp.device)
    latents = needed_latents(ys, xs, (inp.shape[-2], inp.shape[-1]), model.local_ensemble)
    window = encode_window(model, inp, *latents) if features is None else window_from_features(model, inp, features, *latents)
    width = cols.stop - cols.start
    rows_per_chunk = max(1, chunk_size // width)
    for r0 in range(0, rows.stop - rows.start, rows_per_chunk):
        r1 = min(r0 + rows_per_chunk, rows.stop - rows.start)
        coord = torch.stack(torch.meshgrid(ys[r0:r1], xs, indexing="ij"), dim=-1).view(1, -1, 2)
        rgb = model.decode_window(window, coord, cell.expand(1, coord.shape[1], 2))
        yield Span(rows.start + r0, rows.start + r1), cols, rgb.view(1, r1 - r0, width, -1)


def encoded_rows(in_w: int, feature_dim: int, tile_size: int, band_rows: int, cache_bytes: int = FEATURE_CACHE_BYTES) -> int:
    """LR rows encoded at once for bands of `band_rows` rows: as many as `cache_bytes` of
    float32 features across the width hold, from one band's rows to a tile's."""
    return max(band_rows, min(tile_size, cache_bytes // (4 * feature_dim * in_w)))


def decode_row_band(
    model: ImplicitModel | OnnxModel,
    inp: Tensor,
    out_hw: tuple[int, int],
    out_rows: Span,
    column_tiles: list[tuple[Span, FeatureBlock | None]],
    chunk_size: int,
) -> Iterator[tuple[Span, Span, Tensor]]:
    """Decode output rows `out_rows` across the whole width, one tile column (its output
    columns, and the features it cuts its window from, or None to encode it) at a time."""
    for out_cols, features in column_tiles:
        yield from decode_region(model, inp, out_hw, out_rows, out_cols, chunk_size, features)


def decode_bands(
    model: ImplicitModel | OnnxModel,
    inp: Tensor,
    out_hw: tuple[int, int],
    chunk_size: int,
    tile_size: int | None = None,
    band_pixels: int | None = None,
    feature_cache_bytes: int = FEATURE_CACHE_BYTES,
) -> Iterator[tuple[Span, Iterator[tuple[Span, Span, Tensor]]]]:
    """Yield (output rows, their blocks) top to bottom; the blocks (rows, cols, rgb (1, h, w, 3)
    in normalised space) cover those rows. Each LR tile decodes the output pixels whose
    centres fall in it; with `band_pixels` a band also holds at most about that many pixels,
    and bands thinner than a tile share the features of the rows encoded for them (at most
    `feature_cache_bytes` of them; 0: each band encodes its own)."""
    in_h, in_w = inp.shape[-2:]
    if tile_size is None:
        tile_size = max(in_h, in_w) if in_h * in_w <= UNTILED_MAX_PIXELS else DEFAULT_TILE
    band_rows = tile_size
    if band_pixels is not None:  # LR rows whose output rows (about out_h / in_h each) fit the budget
        band_rows = min(tile_size, max(1, band_pixels // (out_hw[1] * math.ceil(out_hw[0] / in_h))))
    ys, xs = C.pixel_centers(out_hw[0], inp.device), C.pixel_centers(out_hw[1], inp.device)
    out_cols = [cols for cols in (owned_outputs(xs, in_w, tile) for tile in tile_spans(in_w, tile_size)) if cols.start < cols.stop]
    group_rows = encoded_rows(in_w, model.encoder.out_dim, tile_size, band_rows, feature_cache_bytes)
    for group in tile_spans(in_h, group_rows):
        bands = [Span(group.start + part.start, group.start + part.stop) for part in tile_spans(group.stop - group.start, band_rows)]
        group_out = owned_outputs(ys, in_h, group)
        if group_out.start == group_out.stop:
            continue
        if len(bands) == 1:  # nothing to share: each tile column encodes its window as it goes
            column_tiles: list[tuple[Span, FeatureBlock | None]] = [(cols, None) for cols in out_cols]
        else:
            column_tiles = [(cols, encode_features(model, inp, *needed_latents(
                ys[group_out.start : group_out.stop], xs[cols.start : cols.stop], (in_h, in_w), model.local_ensemble)))
                for cols in out_cols]
        for band in bands:
            out_rows = owned_outputs(ys, in_h, band)
            if out_rows.start < out_rows.stop:
                yield out_rows, decode_row_band(model, inp, out_hw, out_rows, column_tiles, chunk_size)


def _prepare(model: ImplicitModel | OnnxModel, lr: Tensor, chunk_size: int | None, tile_size: int | None,
             precision: str) -> tuple[Tensor, int, str]:
    """Validate a request; the normalised input on the model's device, the chunk size and
    the precision that runs ('auto' resolved for this device and model)."""
    check_input(lr)
    check_tuning(chunk_size, tile_size)
    device = next(model.parameters()).device
    precision = resolve_precision(precision, device, model.precisions, model.auto_precisions)
    check_model_precision(model, device, precision)
    chunk_size = chunk_size or DEFAULT_CHUNK
    # NCHW-contiguous, so that `ImplicitModel.encode` makes a true channels-last copy: an image
    # from a file or array arrives as a permuted HWC array, channels-last but with a batch
    # stride of 3, which convolutions take for NCHW; the whole encoder then ran NCHW, with a
    # layout reorder around every fused convolution (on the AMX Xeon its bf16 encoder 4.4x slower).
    return C.normalise(lr.to(device, torch.float32)).contiguous(), chunk_size, precision


def _bar_label(precision: str, device: torch.device) -> str:
    """What a progress bar says ran: 'bf16 on cpu'."""
    return f"{precision} on {device.type}"


def _store(result: Tensor, rgb: Tensor, row: int, col: int) -> None:
    """Write a decoded block (1, h, w, 3), normalised, into `result` (H, W, 3) at (row, col),
    in [0, 1] for floats or rounded to the full range for uint8/uint16 buffers."""
    block = C.denormalise(rgb[0].float()).clamp_(0, 1).cpu()
    levels = {torch.uint8: 255, torch.uint16: 65535}.get(result.dtype)
    if levels is not None:
        block = (block * levels).round_()
    result[row : row + block.shape[0], col : col + block.shape[1]] = block.to(result.dtype)


Block = tuple[Span, Span, Tensor]  # output rows, output cols, rgb (1, h, w, 3) in normalised space


def _decoded_bands(
    model: ImplicitModel | OnnxModel,
    inp: Tensor,
    size: tuple[int, int],
    chunk_size: int,
    tile_size: int | None,
    precision: str,
    progress: bool | None,
    on_block: Callable[[int], None] | None,
    band_pixels: int | None = None,
    region: tuple[Span, Span] | None = None,
) -> Generator[tuple[Span, Iterator[Block]], None, None]:
    """The one tile loop of `upscale_tensor` and `upscale_bands`: (output rows, their blocks)
    top to bottom, decoded under `precision`'s autocast. `region` = (rows, cols) decodes
    only that part, as one band. A block is counted (the progress bar, `on_block`) when
    the caller asks for the next, so once it is stored; `on_block` raising stops the loop.
    Callers close this generator (`contextlib.closing`) so that an error leaves no
    autocast or bar behind."""
    out_hw = size if region is None else (region[0].stop - region[0].start, region[1].stop - region[1].start)
    with progress_bar(total=out_hw[0] * out_hw[1], unit="px", unit_scale=True, enabled=progress,
                      desc=_bar_label(precision, inp.device)) as bar, autocast(inp.device, precision):

        def counted(blocks: Iterator[Block]) -> Iterator[Block]:
            for block in blocks:
                yield block
                pixels = (block[0].stop - block[0].start) * (block[1].stop - block[1].start)
                bar.update(pixels)
                if on_block is not None:
                    on_block(pixels)

        if region is not None:
            yield region[0], counted(decode_region(model, inp, size, *region, chunk_size))
            return
        for rows, blocks in decode_bands(model, inp, size, chunk_size, tile_size, band_pixels):
            yield rows, counted(blocks)


@torch.no_grad()
def upscale_tensor(
    model: ImplicitModel | OnnxModel,
    lr: Tensor,
    size: tuple[int, int],
    *,
    chunk_size: int | None = None,
    tile_size: int | None = None,
    precision: str = "fp32",  # the engine of `evaluate` and training's validation: fp32 unless asked
    progress: bool | None = False,
    out: Tensor | None = None,
    region: tuple[Span, Span] | None = None,
    on_block: Callable[[int], None] | None = None,
) -> Tensor:
    """Upscale `lr` (1, 3, h, w) in [0, 1] to `size`; returns (1, 3, H, W) clamped to [0, 1].

    Runs on the model's device. `out` may be a preallocated (H, W, 3) CPU tensor of any
    dtype (uint8 or uint16 to save memory: values are then rounded to that range) which
    is filled and returned instead. `region` = (rows, cols) decodes only that part of
    the output (for zoomed crops): the result is then that region's size. `progress`:
    True shows a bar, None only on a terminal (the command line's choice). `on_block` is
    called with the pixel count of each decoded block (progress; raising in it stops).
    `precision` is 'fp32', 'bf16', 'fp16' (CUDA) or 'auto' (`runtime.resolve_precision`).
    """
    inp, chunk_size, precision = _prepare(model, lr, chunk_size, tile_size, precision)
    origin, out_hw = (0, 0), size
    if region is not None:
        origin, out_hw = (region[0].start, region[1].start), (region[0].stop - region[0].start, region[1].stop - region[1].start)
    result = out if out is not None else torch.empty(out_hw[0], out_hw[1], 3)
    # Each block goes straight into `result`: no band buffer beside it.
    with closing(_decoded_bands(model, inp, size, chunk_size, tile_size, precision, progress, on_block, region=region)) as bands:
        for _, blocks in bands:
            for rows, cols, rgb in blocks:
                _store(result, rgb, rows.start - origin[0], cols.start - origin[1])
    return result if out is not None else result.permute(2, 0, 1).unsqueeze(0)


@torch.no_grad()
def upscale_bands(
    model: ImplicitModel | OnnxModel,
    lr: Tensor,
    size: tuple[int, int],
    *,
    chunk_size: int | None = None,
    tile_size: int | None = None,
    precision: str = "fp32",
    progress: bool | None = False,
    band_pixels: int | None = None,
    on_block: Callable[[int], None] | None = None,
) -> Iterator[tuple[Span, Tensor]]:
    """Upscale `lr` (1, 3, h, w) in [0, 1] to `size`, yielding (rows, rgb (h, W, 3) float32 in
    [0, 1] on the CPU) top to bottom, each band of at most about `band_pixels` pixels
    (default BAND_PIXELS). `on_block` is `upscale_tensor`'s.

    The same pixels as `upscale_tensor`, without ever holding the whole output: memory
    is bounded by one band, one tile's encoder and one chunk of queries.
    """
    inp, chunk_size, precision = _prepare(model, lr, chunk_size, tile_size, precision)
    with closing(_decoded_bands(model, inp, size, chunk_size, tile_size, precision, progress, on_block,
                                band_pixels=band_pixels or BAND_PIXELS)) as bands:
        for rows, blocks in bands:
            band = torch.empty(rows.stop - rows.start, size[1], 3)
            for block_rows, cols, rgb in blocks:
                _store(band, rgb, block_rows.start - rows.start, cols.start)
            yield rows, band
