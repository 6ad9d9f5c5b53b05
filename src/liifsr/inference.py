"""Upscaling whole images with bounded memory, exactly as LIIF's forward would.

The LR grid is cut into tiles. For each tile we run the encoder on the tile plus a
margin of `encoder.receptive_radius` pixels (so the features inside are those of the
whole image), project the latent codes once, and decode the output pixels whose
centres fall in the tile, in chunks of at most `chunk_size` queries. A query reads
latent codes at most one cell away from its own (local ensemble), and each code's
projection reads one more ring (feature unfolding), so a tile's decoding needs codes
within 2 cells of it, plus the encoder's margin.

Peak memory beyond the input and output buffers is therefore bounded by the tile
(encoder activations over (tile + 2 * (margin + 2))^2 pixels) and the chunk
(about chunk_size * 4 * hidden floats for the MLP), whatever the image size.
`upscale_bands` goes one step further for outputs written to disk: it yields the
output top to bottom in bands of at most `BAND_PIXELS` pixels, so that no buffer
grows with the output (`liifsr.imageio.write_image_bands` streams them into a PNG).

Every request is validated here, once, for the Python API and the command line alike
(`check_options`, `output_size`, `check_input`): bad sizes, scales, options and pixel
values raise `UpscaleError` with a one-line message.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from liifsr import coords as C
from liifsr.progress import progress_bar
from liifsr.resize import bicubic_taps
from liifsr.runtime import PRECISIONS, autocast

if TYPE_CHECKING:  # the model is only named in annotations: liif.py imports this module
    from PIL import Image

    from liifsr.liif import LIIF

# Queries decoded at once. On a CPU the MLP runs in cache-sized blocks of rows anyway
# (decoders.rows_per_block), so a chunk only has to amortise the per-chunk index arithmetic
# (about 150 small tensor operations): on this project's 2-core machine 65,536 decoded
# x4 in bf16 1.28x faster than 4,096 (fp32 unchanged), and a GPU wants large chunks too.
DEFAULT_CHUNK = 65536
DEFAULT_TILE = 256
# Inputs up to this many pixels are encoded in one piece (no margin overhead).
UNTILED_MAX_PIXELS = 512 * 512
# Outputs beyond this need allow_huge=True: a typo like --scale 300 should not eat the disk.
MAX_OUTPUT_PIXELS = 20000 * 20000
# Output pixels per band of `upscale_bands` (float32 RGB: 48 MB).
BAND_PIXELS = 2**22


class UpscaleError(ValueError):
    """A request that cannot be served; the message names the problem and the fix."""


def _is_number(value: object) -> bool:
    """A real number, and not a bool (True is an int in Python, but never a size or a scale)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _is_count(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Fit:
    """An output size that keeps the input's aspect: its long side, its short side, or the
    largest size within a box (HEIGHT, WIDTH). Exactly one; pass it as `size`."""

    long_side: int | None = None
    short_side: int | None = None
    box: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        given = [value for value in (self.long_side, self.short_side, self.box) if value is not None]
        if len(given) != 1:
            raise UpscaleError("a Fit takes exactly one of long_side, short_side or box")
        sides = self.box if self.box is not None else given
        if not isinstance(sides, (tuple, list)) or len(sides) != len(given) + (self.box is not None) or not all(
                _is_count(n) and n > 0 for n in sides):
            raise UpscaleError(f"a Fit's sides must be positive integers (a box two of them), got {given[0]!r}")

    def size_for(self, in_hw: tuple[int, int]) -> tuple[int, int]:
        """The output (H, W) for an input of `in_hw`: the side that binds is exact, the other
        rounded to the nearest pixel (at least 1)."""
        if self.box is not None:
            ratios = (self.box[0] / in_hw[0], self.box[1] / in_hw[1])
            binding = 0 if ratios[0] <= ratios[1] else 1
            target = self.box[binding]
        else:
            pick = max if self.long_side is not None else min
            binding = 0 if pick(in_hw) == in_hw[0] else 1
            target = self.long_side if self.long_side is not None else self.short_side
        scale = target / in_hw[binding]
        out = [max(1, round(n * scale)) for n in in_hw]
        out[binding] = int(target)
        if self.box is not None:  # rounding must not leave the box
            out = [min(n, limit) for n, limit in zip(out, self.box)]
        return out[0], out[1]


def output_size(in_hw: tuple[int, int], scale: float | tuple[float, float] | None,
                size: tuple[int, int] | Fit | None) -> tuple[int, int]:
    """Output (H, W) from a scale (one or per axis), an explicit size (HEIGHT, WIDTH) or a
    `Fit` (long side, short side, or within a box, aspect kept); validated. The one rule
    of output sizes, for the command line and the API."""
    if (scale is None) == (size is None):
        raise UpscaleError("give exactly one of scale or size")
    if isinstance(size, Fit):
        return size.size_for(in_hw)
    if size is not None:
        if not isinstance(size, (tuple, list)) or len(size) != 2 or not all(_is_count(n) and n > 0 for n in size):
            raise UpscaleError(f"size must be two positive integers (HEIGHT, WIDTH), got {size!r}")
        return int(size[0]), int(size[1])
    scales = scale if isinstance(scale, (tuple, list)) else (scale, scale)
    if len(scales) != 2:
        raise UpscaleError(f"scale must be one number or (sy, sx), got {scale!r}")
    for s in scales:
        if not _is_number(s) or not math.isfinite(s) or s <= 0:
            raise UpscaleError(f"scale must be a positive finite number, got {s!r}")
    out = tuple(max(1, round(n * s)) for n, s in zip(in_hw, scales))
    return out[0], out[1]


def check_output_size(out_hw: tuple[int, int], allow_huge: bool) -> None:
    pixels = out_hw[0] * out_hw[1]
    if pixels > MAX_OUTPUT_PIXELS and not allow_huge:
        raise UpscaleError(
            f"output of {out_hw[0]}x{out_hw[1]} (HEIGHTxWIDTH) pixels exceeds the limit of {MAX_OUTPUT_PIXELS:,} pixels "
            "(use --allow-huge / allow_huge=True if you mean it)"
        )


def check_options(chunk_size: int | None = None, tile_size: int | None = None, precision: str = "fp32") -> None:
    """The tuning options of an upscale: positive integers (or None for the default) and a known precision."""
    for name, flag, value in (("chunk_size", "--chunk", chunk_size), ("tile_size", "--tile", tile_size)):
        if value is not None and not (_is_count(value) and value > 0):
            raise UpscaleError(f"{name} ({flag}) must be a positive integer, got {value!r}")
    if precision not in PRECISIONS:
        raise UpscaleError(f"unknown precision {precision!r} (choose one of: {', '.join(PRECISIONS)})")


def check_input(lr: Tensor) -> None:
    """An LR image tensor (1, 3, H, W): float, not empty, no NaN or infinity."""
    if lr.dim() != 4 or lr.shape[:2] != (1, 3):
        raise UpscaleError(f"expected a (1, 3, H, W) tensor, got shape {tuple(lr.shape)}")
    if lr.shape[-2] == 0 or lr.shape[-1] == 0:
        raise UpscaleError(f"the image is empty ({lr.shape[-2]}x{lr.shape[-1]} pixels, HEIGHTxWIDTH)")
    if not lr.is_floating_point():
        raise UpscaleError(f"tensors must be float in [0, 1], got {lr.dtype}")
    if not bool(torch.isfinite(lr).all()):
        raise UpscaleError("the image contains NaN or infinite values (expected floats in [0, 1])")


@dataclass(frozen=True)
class Span:
    """A half-open range [start, stop) along one axis."""

    start: int
    stop: int


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
    rows, cols = [], []
    for vy, vx in C.ensemble_offsets(local_ensemble):
        query = C.shifted_query(corners, vy, vx, grid_hw, eps)
        rows.append(C.nearest_index(query[:, 0], grid_hw[0]))
        cols.append(C.nearest_index(query[:, 1], grid_hw[1]))
    rows, cols = torch.cat(rows), torch.cat(cols)
    return Span(int(rows.min()), int(rows.max()) + 1), Span(int(cols.min()), int(cols.max()) + 1)


def grow(span: Span, by: int, n: int) -> Span:
    return Span(max(0, span.start - by), min(n, span.stop + by))


def decode_region(
    model: LIIF, inp: Tensor, out_hw: tuple[int, int], rows: Span, cols: Span, chunk_size: int | None = None
) -> Iterator[tuple[Span, Span, Tensor]]:
    """Decode the output pixels rows x cols, encoding only the LR window they read.

    Yields (rows, cols, rgb (1, h, w, 3) in normalised space) in chunks of at most
    `chunk_size` queries. `inp` is the normalised LR image (1, 3, H, W) on the model's
    device; the result equals that region of one LIIF forward over the whole output.
    """
    in_h, in_w = inp.shape[-2:]
    device = inp.device
    ys = C.pixel_centers(out_hw[0], device)[rows.start : rows.stop]
    xs = C.pixel_centers(out_hw[1], device)[cols.start : cols.stop]
    cell = C.cell_size(out_hw, device)
    # latents read by the queries -> features for their 3x3 projection -> encoder input
    lat_r, lat_c = needed_latents(ys, xs, (in_h, in_w), model.config.local_ensemble)
    feat_r, feat_c = grow(lat_r, 1, in_h), grow(lat_c, 1, in_w)
    margin = model.encoder.receptive_radius
    enc_r, enc_c = grow(feat_r, margin, in_h), grow(feat_c, margin, in_w)
    feat = model.encode(inp[:, :, enc_r.start : enc_r.stop, enc_c.start : enc_c.stop])
    feat = feat[:, :, feat_r.start - enc_r.start : feat_r.stop - enc_r.start, feat_c.start - enc_c.start : feat_c.stop - enc_c.start]
    proj = model.latent_projection(feat)
    proj = proj[:, lat_r.start - feat_r.start : lat_r.stop - feat_r.start, lat_c.start - feat_c.start : lat_c.stop - feat_c.start]
    proj = proj.contiguous()  # a window of the projection: make it gatherable without per-chunk copies
    corner = (lat_r.start, lat_c.start)
    # The bilinear skip reads pixels within one cell of the queries: the latent span.
    skip = inp[:, :, lat_r.start : lat_r.stop, lat_c.start : lat_c.stop] if model.config.global_skip else None

    width = cols.stop - cols.start
    rows_per_chunk = max(1, chunk_size // width)
    for r0 in range(0, rows.stop - rows.start, rows_per_chunk):
        r1 = min(r0 + rows_per_chunk, rows.stop - rows.start)
        coord = torch.stack(torch.meshgrid(ys[r0:r1], xs, indexing="ij"), dim=-1).view(1, -1, 2)
        rgb = model.decode(
            proj, coord, cell.expand(1, coord.shape[1], 2), (in_h, in_w), corner, skip_image=skip, skip_window=corner
        )
        yield Span(rows.start + r0, rows.start + r1), cols, rgb.view(1, r1 - r0, width, -1)


def lr_row_bands(in_h: int, tile_size: int, band_rows: int | None = None) -> list[Span]:
    """Spans of LR rows decoded together: a tile's height, or fewer to bound a band's output."""
    return tile_spans(in_h, min(tile_size, band_rows) if band_rows else tile_size)


def decode_row_band(
    model: LIIF, inp: Tensor, out_hw: tuple[int, int], out_rows: Span, tile_size: int, chunk_size: int
) -> Iterator[tuple[Span, Span, Tensor]]:
    """Decode output rows `out_rows` across the whole width, one LR tile column at a time."""
    xs = C.pixel_centers(out_hw[1], inp.device)
    for tile_cols in tile_spans(inp.shape[-1], tile_size):
        out_cols = owned_outputs(xs, inp.shape[-1], tile_cols)
        if out_cols.start < out_cols.stop:
            yield from decode_region(model, inp, out_hw, out_rows, out_cols, chunk_size)


def decode_bands(
    model: LIIF,
    inp: Tensor,
    out_hw: tuple[int, int],
    chunk_size: int,
    tile_size: int | None = None,
    band_pixels: int | None = None,
) -> Iterator[tuple[Span, Iterator[tuple[Span, Span, Tensor]]]]:
    """Yield (output rows, their blocks) top to bottom; the blocks (rows, cols, rgb (1, h, w, 3)
    in normalised space) cover those rows. Each LR tile decodes the output pixels whose
    centres fall in it; with `band_pixels` a band also holds at most about that many pixels."""
    in_h, in_w = inp.shape[-2:]
    if tile_size is None:
        tile_size = max(in_h, in_w) if in_h * in_w <= UNTILED_MAX_PIXELS else DEFAULT_TILE
    band_rows = None
    if band_pixels is not None:  # LR rows whose output rows (about out_h / in_h each) fit the budget
        band_rows = max(1, band_pixels // (out_hw[1] * math.ceil(out_hw[0] / in_h)))
    ys = C.pixel_centers(out_hw[0], inp.device)
    for lr_rows in lr_row_bands(in_h, tile_size, band_rows):
        out_rows = owned_outputs(ys, in_h, lr_rows)
        if out_rows.start < out_rows.stop:
            yield out_rows, decode_row_band(model, inp, out_hw, out_rows, tile_size, chunk_size)


def _prepare(model: LIIF, lr: Tensor, chunk_size: int | None, tile_size: int | None, precision: str) -> tuple[Tensor, int]:
    """Validate a request; the normalised input on the model's device and the chunk size."""
    check_input(lr)
    check_options(chunk_size, tile_size, precision)
    device = next(model.parameters()).device
    chunk_size = chunk_size or DEFAULT_CHUNK
    return C.normalise(lr.to(device, torch.float32)), chunk_size


def _store(result: Tensor, rgb: Tensor, row: int, col: int) -> None:
    """Write a decoded block (1, h, w, 3), normalised, into `result` (H, W, 3) at (row, col),
    in [0, 1] for floats or rounded to the full range for uint8/uint16 buffers."""
    block = C.denormalise(rgb[0].float()).clamp_(0, 1).cpu()
    levels = {torch.uint8: 255, torch.uint16: 65535}.get(result.dtype)
    if levels is not None:
        block = (block * levels).round_()
    result[row : row + block.shape[0], col : col + block.shape[1]] = block.to(result.dtype)


@torch.no_grad()
def upscale_tensor(
    model: LIIF,
    lr: Tensor,
    size: tuple[int, int],
    *,
    chunk_size: int | None = None,
    tile_size: int | None = None,
    precision: str = "fp32",
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
    """
    inp, chunk_size = _prepare(model, lr, chunk_size, tile_size, precision)
    device = inp.device
    if region is None:
        origin, out_hw = (0, 0), size
        blocks = (block for _, band in decode_bands(model, inp, size, chunk_size, tile_size) for block in band)
    else:
        origin, out_hw = (region[0].start, region[1].start), (region[0].stop - region[0].start, region[1].stop - region[1].start)
        blocks = decode_region(model, inp, size, *region, chunk_size)
    result = out if out is not None else torch.empty(out_hw[0], out_hw[1], 3)
    with progress_bar(total=out_hw[0] * out_hw[1], unit="px", unit_scale=True, enabled=progress) as bar, \
            autocast(device, precision):
        for rows, cols, rgb in blocks:
            _store(result, rgb, rows.start - origin[0], cols.start - origin[1])
            bar.update((rows.stop - rows.start) * (cols.stop - cols.start))
            if on_block is not None:
                on_block((rows.stop - rows.start) * (cols.stop - cols.start))
    return result if out is not None else result.permute(2, 0, 1).unsqueeze(0)


@torch.no_grad()
def upscale_bands(
    model: LIIF,
    lr: Tensor,
    size: tuple[int, int],
    *,
    chunk_size: int | None = None,
    tile_size: int | None = None,
    precision: str = "fp32",
    progress: bool | None = False,
    band_pixels: int = BAND_PIXELS,
) -> Iterator[tuple[Span, Tensor]]:
    """Upscale `lr` (1, 3, h, w) in [0, 1] to `size`, yielding (rows, rgb (h, W, 3) float32 in
    [0, 1] on the CPU) top to bottom, each band of at most about `band_pixels` pixels.

    The same pixels as `upscale_tensor`, without ever holding the whole output: memory
    is bounded by one band, one tile's encoder and one chunk of queries.
    """
    inp, chunk_size = _prepare(model, lr, chunk_size, tile_size, precision)
    with progress_bar(total=size[0] * size[1], unit="px", unit_scale=True, enabled=progress) as bar, \
            autocast(inp.device, precision):
        for rows, blocks in decode_bands(model, inp, size, chunk_size, tile_size, band_pixels):
            band = torch.empty(rows.stop - rows.start, size[1], 3)
            for block_rows, cols, rgb in blocks:
                _store(band, rgb, block_rows.start - rows.start, cols.start)
                bar.update((block_rows.stop - block_rows.start) * (cols.stop - cols.start))
            yield rows, band


def upscale(
    model: LIIF,
    image,
    scale: float | tuple[float, float] | None = None,
    size: tuple[int, int] | None = None,
    *,
    allow_huge: bool = False,
    **options,
):
    """Upscale a PIL image, a uint8/uint16 array (H, W[, C]) or a float tensor in [0, 1].

    Returns the same kind of object. Grayscale stays grayscale (the model sees it as
    RGB); an alpha channel is resized with bicubic interpolation. Options are those
    of `upscale_tensor` (chunk_size, tile_size, precision, progress).
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        from liifsr.imageio import from_pil, to_pil

        loaded = from_pil(image)
        rgb, alpha = upscale_array(model, loaded.rgb, loaded.alpha, scale, size, allow_huge=allow_huge, **options)
        return to_pil(rgb, alpha, grayscale=loaded.grayscale)
    if isinstance(image, np.ndarray):
        if image.dtype not in (np.uint8, np.uint16):
            raise UpscaleError(f"arrays must be uint8 or uint16, got {image.dtype} (pass floats as a torch tensor)")
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (1, 2, 3, 4)):
            raise UpscaleError(f"arrays must be (H, W) or (H, W, 1-4 channels), got shape {image.shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise UpscaleError(f"the image is empty (shape {image.shape})")
        levels = np.iinfo(image.dtype).max
        array = image.astype(np.float32) / levels
        gray = array.ndim == 2
        if gray:
            array = array[..., None]
        color = array[..., :3] if array.shape[-1] >= 3 else np.repeat(array[..., :1], 3, axis=-1)
        alpha = array[..., -1] if array.shape[-1] in (2, 4) else None
        rgb, alpha = upscale_array(model, color, alpha, scale, size, allow_huge=allow_huge, **options)
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
            raise UpscaleError(f"tensors must be shaped (3, H, W) or (N, 3, H, W), got {tuple(image.shape)}")
        if batch.shape[0] == 0:
            raise UpscaleError(f"the batch is empty (shape {tuple(image.shape)})")
        check_options(options.get("chunk_size"), options.get("tile_size"), options.get("precision", "fp32"))
        out_hw = output_size(tuple(batch.shape[-2:]), scale, size)
        check_output_size(out_hw, allow_huge)
        outs = [upscale_tensor(model, b.unsqueeze(0), out_hw, **options) for b in batch]
        result = torch.cat(outs).to(image.device)
        return result if image.dim() == 4 else result[0]
    raise UpscaleError(f"cannot upscale a {type(image).__name__}: pass a PIL image, a numpy array or a torch tensor")


@dataclass
class UpscaledFile:
    """One result of `upscale_files`: the upscaled image, or why this file failed."""

    source: Path
    image: "Image.Image | None"  # None when it failed
    error: str | None = None  # one line naming the file and the problem


def upscale_files(model: LIIF, inputs: Iterable[str | Path], scale: float | tuple[float, float] | None = None,
                  size: tuple[int, int] | Fit | None = None, *, allow_huge: bool = False, **options) -> Iterator[UpscaledFile]:
    """Upscale image files and folders of them (recursively), one result at a time, as PIL
    images: a notebook can show each as it comes. A file that cannot be read or upscaled is
    a result with its error, and the others go on. Options are `upscale`'s."""
    from liifsr.files import about
    from liifsr.imageio import MAX_INPUT_PIXELS, ImageError, collect_images, read_image, to_pil

    for source, _ in collect_images(inputs):
        try:
            loaded = read_image(source, max_pixels=None if allow_huge else MAX_INPUT_PIXELS)
            rgb, alpha = upscale_array(model, loaded.rgb, loaded.alpha, scale, size, allow_huge=allow_huge, **options)
            yield UpscaledFile(source, to_pil(rgb, alpha, grayscale=loaded.grayscale))
        except (ImageError, UpscaleError, OSError, MemoryError) as error:
            yield UpscaledFile(source, None, about(source, str(error) or type(error).__name__))


def upscale_array(
    model: LIIF,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    scale: float | tuple[float, float] | None = None,
    size: tuple[int, int] | None = None,
    *,
    allow_huge: bool = False,
    **options,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Float (H, W, 3) in [0, 1] (and an optional (H, W) alpha) -> upscaled float arrays."""
    check_options(options.get("chunk_size"), options.get("tile_size"), options.get("precision", "fp32"))
    out_hw = output_size(rgb.shape[:2], scale, size)
    check_output_size(out_hw, allow_huge)
    lr = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    out = upscale_tensor(model, lr, out_hw, **options)[0].permute(1, 2, 0).numpy()
    return out, (resize_alpha(alpha, out_hw) if alpha is not None else None)


def resize_alpha(alpha: np.ndarray, size: tuple[int, int], rows: Span | None = None) -> np.ndarray:
    """Bicubic resize of an alpha plane in [0, 1], clamped: transparency is not super-resolved.

    PyTorch's bicubic (`F.interpolate(mode="bicubic")`), computed for output rows `rows`
    only (default: all), so that a streamed output resizes its alpha band by band.
    """
    rows = rows or Span(0, size[0])
    plane = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32))
    row_w, row_i = bicubic_taps(plane.shape[0], size[0], rows.start, rows.stop)
    col_w, col_i = bicubic_taps(plane.shape[1], size[1])
    band = sum(plane[row_i[:, k]] * row_w[:, k, None] for k in range(4))  # (rows, in_w)
    resized = sum(band[:, col_i[:, k]] * col_w[None, :, k] for k in range(4))  # (rows, out_w)
    return resized.clamp_(0, 1).numpy()
