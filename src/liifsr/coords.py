"""LIIF's conventions for coordinates, cells and pixel values, and its area arithmetic,
as small pure functions.

Conventions (LIIF's): an image of n pixels along an axis spans [-1, 1]; pixel i has its
centre at -1 + (2i + 1) / n. Coordinates are (y, x) pairs, the last dimension of a
coordinate tensor. A query's cell is the size of its output pixel in the same units,
2 / H by 2 / W on an H x W output. Pixel values in [0, 1] enter and leave the model
normalised to [-1, 1], (x - 0.5) / 0.5 (LIIF's data_norm).
"""

from __future__ import annotations

import torch
from torch import Tensor


def pixel_centers(n: int, device: torch.device | str | None = None) -> Tensor:
    """Centres of n pixels spanning [-1, 1], computed exactly as LIIF's `make_coord`.

    The float32 rounding matters: LIIF subtracts these values from the query
    coordinate, so we reproduce its arithmetic order bit for bit.
    """
    r = (1 - -1) / (2 * n)
    return -1 + r + (2 * r) * torch.arange(n, device=device).float()


def make_coord(shape: tuple[int, int], device: torch.device | str | None = None) -> Tensor:
    """(H*W, 2) pixel-centre coordinates of an H x W image, row-major, LIIF's layout."""
    ys = pixel_centers(shape[0], device)
    xs = pixel_centers(shape[1], device)
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).view(-1, 2)


def cell_size(out_hw: tuple[int, int], device: torch.device | str | None = None) -> Tensor:
    """(2,) float32: the cell (2 / H, 2 / W) of every query on an H x W output grid."""
    return torch.tensor([2 / out_hw[0], 2 / out_hw[1]], dtype=torch.float32, device=device)


def normalise(x: Tensor) -> Tensor:
    """Pixel values in [0, 1] -> the model's [-1, 1] (LIIF's data_norm: sub 0.5, div 0.5)."""
    return (x - 0.5) / 0.5


def denormalise(x: Tensor) -> Tensor:
    """The model's [-1, 1] -> pixel values in [0, 1] (not clamped)."""
    return x * 0.5 + 0.5


def nearest_index(coord: Tensor, n: int) -> Tensor:
    """Index of the pixel (of n along this axis) whose cell contains `coord`.

    Equals `grid_sample(..., mode='nearest', align_corners=False)`, ties included: the
    source position ((coord + 1) * n - 1) / 2 in the same float arithmetic, rounded
    half to even, then kept in range.
    """
    position = ((coord + 1) * n - 1) / 2
    return torch.round(position).long().clamp_(0, n - 1)


def ensemble_offsets(local_ensemble: bool) -> list[tuple[int, int]]:
    """Shifts (vy, vx) of the latent codes that vote for a query: 4 corners or 1."""
    if local_ensemble:
        return [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    return [(0, 0)]


def shifted_query(coord: Tensor, vy: int, vx: int, feat_hw: tuple[int, int], eps: float) -> Tensor:
    """The query moved by (vy, vx) half-cells of the feature grid, as LIIF does before lookup.

    The small `eps` breaks ties at cell borders the same way LIIF does, and the clamp
    keeps the lookup inside the grid.
    """
    ry = 1 / feat_hw[0]
    rx = 1 / feat_hw[1]
    shifted = coord.clone()
    shifted[..., 0] += vy * ry + eps
    shifted[..., 1] += vx * rx + eps
    return shifted.clamp_(-1 + 1e-6, 1 - 1e-6)


def relative_coord(coord: Tensor, latent_coord: Tensor, feat_hw: tuple[int, int]) -> Tensor:
    """Query minus latent-code position, in units of the feature grid (LIIF's rel_coord)."""
    rel = coord - latent_coord
    rel[..., 0] *= feat_hw[0]
    rel[..., 1] *= feat_hw[1]
    return rel


def relative_cell(cell: Tensor | None, feat_hw: tuple[int, int]) -> Tensor:
    """Cell size in units of the feature grid (LIIF's rel_cell)."""
    if cell is None:
        raise ValueError("this decoder reads the cell size: pass `cell` (coords.cell_size gives it)")
    rel = cell.clone()
    rel[..., 0] *= feat_hw[0]
    rel[..., 1] *= feat_hw[1]
    return rel


def ensemble_weights(rel_coords: list[Tensor]) -> list[Tensor]:
    """Local-ensemble weights: each member is weighted by the area of the rectangle
    between the query and the *diagonally opposite* latent code, normalised to sum 1.

    `rel_coords` come in `ensemble_offsets` order; with one member the weight is 1.
    """
    areas = [torch.abs(rel[..., 0] * rel[..., 1]) + 1e-9 for rel in rel_coords]
    total = torch.stack(areas).sum(dim=0)
    if len(areas) == 4:
        areas = [areas[3], areas[2], areas[1], areas[0]]
    return [area / total for area in areas]


def bilinear_sample(
    image: Tensor, coord: Tensor, grid_hw: tuple[int, int], window: tuple[int, int] = (0, 0)
) -> Tensor:
    """Bilinear interpolation of `image` (B, C, h, w) at `coord` (B, Q, 2) -> (B, Q, C).

    Equals grid_sample(bilinear, border padding, align_corners=False) on the full
    (H, W) = `grid_hw` image, of which `image` is the window starting at `window`.
    """
    batch, channels, win_h, win_w = image.shape
    corners = []
    for axis, n in enumerate(grid_hw):
        position = (coord[..., axis] * (n / 2) + (n - 1) / 2).clamp(0, n - 1)
        low = position.floor().long()
        corners.append((low, (low + 1).clamp(max=n - 1), position - low))
    (y0, y1, ty), (x0, x1, tx) = corners
    pixels = image.permute(0, 2, 3, 1).reshape(-1, channels)
    batch_offset = torch.arange(batch, device=image.device).view(batch, 1) * (win_h * win_w)

    def at(y: Tensor, x: Tensor) -> Tensor:
        index = (y - window[0]) * win_w + (x - window[1]) + batch_offset
        return pixels.index_select(0, index.view(-1)).view(batch, -1, channels)

    ty, tx = ty.unsqueeze(-1), tx.unsqueeze(-1)
    top = at(y0, x0) * (1 - tx) + at(y0, x1) * tx
    bottom = at(y1, x0) * (1 - tx) + at(y1, x1) * tx
    return top * (1 - ty) + bottom * ty


def ensemble_lookup(
    coord: Tensor, grid_hw: tuple[int, int], window: tuple[int, int], window_hw: tuple[int, int], local_ensemble: bool
) -> tuple[list[Tensor], list[Tensor]]:
    """The latent codes that vote for each query (B, Q, 2): per ensemble member, the code's
    row (B, Q) in a batch of windows of the grid laid out row-major, (B * h * w) rows for
    windows of `window_hw` with top-left corner `window`, and the query's coordinate
    relative to the code (`relative_coord`).

    The lookup is LIIF's `grid_sample(mode='nearest')` of a shifted query, done by index
    arithmetic on the full grid (`shifted_query`, `nearest_index`).
    """
    eps = 1e-6 if local_ensemble else 0.0
    ys = pixel_centers(grid_hw[0], coord.device)
    xs = pixel_centers(grid_hw[1], coord.device)
    batch_offset = torch.arange(coord.shape[0], device=coord.device).view(-1, 1) * (window_hw[0] * window_hw[1])
    rows, rel_coords = [], []
    for vy, vx in ensemble_offsets(local_ensemble):
        query = shifted_query(coord, vy, vx, grid_hw, eps)
        iy = nearest_index(query[..., 0], grid_hw[0])
        ix = nearest_index(query[..., 1], grid_hw[1])
        rel_coords.append(relative_coord(coord, torch.stack([ys[iy], xs[ix]], dim=-1), grid_hw))
        rows.append((iy - window[0]) * window_hw[1] + (ix - window[1]) + batch_offset)
    return rows, rel_coords


def nearest_sample(image: Tensor, coord: Tensor, grid_hw: tuple[int, int], window: tuple[int, int] = (0, 0)) -> Tensor:
    """The pixel of `image` (B, C, h, w) whose cell holds each `coord` (B, Q, 2) -> (B, Q, C).

    Equals grid_sample(nearest, align_corners=False) on the full (H, W) = `grid_hw` image,
    of which `image` is the window starting at `window`.
    """
    batch, channels, win_h, win_w = image.shape
    iy = nearest_index(coord[..., 0], grid_hw[0]) - window[0]
    ix = nearest_index(coord[..., 1], grid_hw[1]) - window[1]
    # Gathered per channel plane, (B, C, Q): a gather of rows of the channels-last view of an
    # NCHW image reads 3 strided values per query (13x slower for an x3.5 chunk, 2-core Xeon).
    index = (iy * win_w + ix).unsqueeze(1).expand(batch, channels, -1)
    return image.reshape(batch, channels, win_h * win_w).gather(2, index).transpose(1, 2)
