"""The decoding contract: the latent window a decoder reads, the one function that builds
it, and what every model that decodes offers (PyTorch's `ImplicitModel`, an exported
`liifsr.onnx_runtime.OnnxModel`).

A decoder reads the per-image latent table (`latent_projection`'s rows) at the codes near
each query and, with a global skip, the LR input near it. Tiled inference decodes a tile
from a window of both and a forward pass from the window that covers the whole image;
`encode_window` builds either, so that the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from liifsr import coords as C


@dataclass(frozen=True)
class Span:
    """A half-open range [start, stop) along one axis."""

    start: int
    stop: int

    def within(self, outer: Span) -> slice:
        """This span as a slice of a tensor that holds `outer`."""
        return slice(self.start - outer.start, self.stop - outer.start)


def grow(span: Span, by: int, n: int) -> Span:
    """`span` widened by `by` on each side, clipped to [0, n)."""
    return Span(max(0, span.start - by), min(n, span.stop + by))


@dataclass(frozen=True)
class Codes:
    """The latent codes that vote for each of the queries (B, Q, 2): per ensemble member, in
    `coords.ensemble_offsets` order, the code's row (B, Q) in the window's flattened table
    and the query's coordinate relative to the code (B, Q, 2)."""

    rows: list[Tensor]
    rel_coords: list[Tensor]

    def __len__(self) -> int:
        return len(self.rows)

    def index(self) -> Tensor:
        """Every member's rows, member after member: (B * K * Q,) for one gather."""
        return torch.cat(self.rows, dim=1).view(-1)

    def blend(self, preds: Tensor) -> Tensor:
        """Every member's prediction (B, K * Q, C), members one after another, to one per
        query (B, Q, C): LIIF's area-weighted local ensemble (one member: its prediction)."""
        if len(self) == 1:
            return preds  # its weight is exactly 1
        terms = [pred * weight.unsqueeze(-1) for pred, weight in zip(preds.chunk(len(self), dim=1), C.ensemble_weights(self.rel_coords))]
        return sum(terms[1:], terms[0])


@dataclass(frozen=True)
class LatentWindow:
    """What a decoder reads: a window of the latent table, and of the LR input for models
    with a global skip. A forward pass's window is the whole grid, a tile's a part of it."""

    table: Tensor  # (B, h, w, D): `latent_projection` rows of the codes from `corner` on
    grid_hw: tuple[int, int]  # the whole latent grid's size (the LR image's)
    corner: tuple[int, int] = (0, 0)  # the (row, col) in the grid of the table's first code
    skip_image: Tensor | None = None  # (B, 3, h', w'): the normalised LR pixels from `skip_corner` on
    skip_corner: tuple[int, int] = (0, 0)

    def lookup(self, coord: Tensor, local_ensemble: bool) -> Codes:
        """The codes that vote for each query (LIIF's nearest-code lookup, 4 codes or 1)."""
        window_hw = (self.table.shape[1], self.table.shape[2])
        return Codes(*C.ensemble_lookup(coord, self.grid_hw, self.corner, window_hw, local_ensemble))

    def flat_table(self) -> Tensor:
        """The table as one row per code (B * h * w, D), the rows `Codes` index."""
        return self.table.reshape(-1, self.table.shape[-1])

    def bilinear_skip(self, coord: Tensor) -> Tensor:
        """The LR input interpolated bilinearly at `coord` (B, Q, 2) -> (B, Q, 3)."""
        return C.bilinear_sample(self._skip(), coord, self.grid_hw, self.skip_corner)

    def nearest_skip(self, coord: Tensor) -> Tensor:
        """The LR pixel under each query (B, Q, 2) -> (B, Q, 3)."""
        return C.nearest_sample(self._skip(), coord, self.grid_hw, self.skip_corner)

    def _skip(self) -> Tensor:
        if self.skip_image is None:
            raise ValueError("this window holds no LR pixels: a model whose decoder reads them must declare global_skip")
        return self.skip_image


@dataclass(frozen=True)
class FeatureBlock:
    """Encoder features `feat` (B, C, h, w) of the latent grid's codes rows x cols, with the
    values of the whole image's (`encode_features`). Tiled inference keeps one per tile to
    cut several windows from it (`window_from_features`) without encoding again."""

    feat: Tensor
    rows: Span
    cols: Span


def encode_features(model: Any, inp: Tensor, rows: Span, cols: Span) -> FeatureBlock:
    """The features that the codes rows x cols of the latent grid of `inp` (B, 3, H, W,
    normalised) read, encoded from only the pixels they depend on: the projection reads
    `model.projection_radius` features around each code, each feature
    `model.encoder.receptive_radius` pixels around its own. `model` is any `Decoder`."""
    in_h, in_w = inp.shape[-2:]
    feat_rows, feat_cols = grow(rows, model.projection_radius, in_h), grow(cols, model.projection_radius, in_w)
    margin = model.encoder.receptive_radius
    enc_rows, enc_cols = grow(feat_rows, margin, in_h), grow(feat_cols, margin, in_w)
    feat = model.encode(inp[:, :, enc_rows.start : enc_rows.stop, enc_cols.start : enc_cols.stop])
    return FeatureBlock(feat[:, :, feat_rows.within(enc_rows), feat_cols.within(enc_cols)], feat_rows, feat_cols)


def window_from_features(model: Any, inp: Tensor, features: FeatureBlock, rows: Span, cols: Span) -> LatentWindow:
    """The window of codes rows x cols, cut from `features`, which must hold what they read
    (`encode_features` of these codes or of more), and a global skip's LR pixels from `inp`."""
    in_h, in_w = inp.shape[-2:]
    feat_rows, feat_cols = grow(rows, model.projection_radius, in_h), grow(cols, model.projection_radius, in_w)
    if not _contains(features.rows, feat_rows) or not _contains(features.cols, feat_cols):
        raise ValueError(f"features of codes {features.rows} x {features.cols} do not hold those that codes {rows} x {cols} read")
    feat = features.feat[:, :, feat_rows.within(features.rows), feat_cols.within(features.cols)]
    # Contiguous, once per window: decoding gathers its rows chunk after chunk.
    table = model.latent_projection(feat)[:, rows.within(feat_rows), cols.within(feat_cols)].contiguous()
    skip_rows, skip_cols = grow(rows, 1, in_h), grow(cols, 1, in_w)
    skip = inp[:, :, skip_rows.start : skip_rows.stop, skip_cols.start : skip_cols.stop] if model.global_skip else None
    return LatentWindow(table, (in_h, in_w), (rows.start, cols.start), skip, (skip_rows.start, skip_cols.start))


def encode_window(model: Any, inp: Tensor, rows: Span | None = None, cols: Span | None = None) -> LatentWindow:
    """The codes rows x cols (default: all) of the latent grid of `inp` (B, 3, H, W,
    normalised), encoded from only the pixels they depend on (`encode_features`), with the
    values of the whole image's, and with a global skip the LR pixels either side of a
    query (within one of the code nearest to it). `model` is any `Decoder`."""
    in_h, in_w = inp.shape[-2:]
    rows, cols = rows or Span(0, in_h), cols or Span(0, in_w)
    return window_from_features(model, inp, encode_features(model, inp, rows, cols), rows, cols)


def _contains(outer: Span, inner: Span) -> bool:
    return outer.start <= inner.start and inner.stop <= outer.stop


class Decoder:
    """What tiled inference, ONNX export and training ask of a model, whoever runs it:

      encode(inp)                      normalised LR (B, 3, H, W) -> features (B, C, H, W)
      latent_projection(feat)          -> the latent table (B, H, W, D), once per image
      decode_window(window, coord, cell) -> normalised RGB (B, Q, 3) at coord (B, Q, 2)
      encoder.receptive_radius         (`models.encoder.Encoder`)

    and how far a query reads around its code, which `encode_window` grows windows by.
    """

    # Does a query read the 4 latent codes around it (LIIF's local ensemble) or only the nearest?
    local_ensemble: bool = False
    # How many codes around each code `latent_projection` reads (1 for a 3x3 unfolding or conv).
    projection_radius: int = 0
    # Is an interpolation of the LR input added to the output (so the window must hold LR pixels)?
    global_skip: bool = False
    # The precisions `liifsr.tiling` may run it in, and those `--precision auto` may pick.
    precisions: tuple[str, ...]
    auto_precisions: tuple[str, ...]

    def encode(self, inp: Tensor) -> Tensor:
        raise NotImplementedError

    def latent_projection(self, feat: Tensor) -> Tensor:
        raise NotImplementedError

    def decode_window(self, window: LatentWindow, coord: Tensor, cell: Tensor | None) -> Tensor:
        raise NotImplementedError

    def decode(
        self,
        proj: Tensor,
        coord: Tensor,
        cell: Tensor | None,
        grid_hw: tuple[int, int] | None = None,
        window: tuple[int, int] = (0, 0),
        skip_image: Tensor | None = None,
        skip_window: tuple[int, int] = (0, 0),
    ) -> Tensor:
        """`decode_window` of the window given by its parts (the ONNX decoder graph's inputs):
        the table `proj` (default: the whole grid), its corner `window` in the grid of size
        `grid_hw`, the LR pixels `skip_image` from `skip_window` on."""
        grid_hw = grid_hw or (proj.shape[1], proj.shape[2])
        return self.decode_window(LatentWindow(proj, grid_hw, window, skip_image, skip_window), coord, cell)

    def forward(self, inp: Tensor, coord: Tensor, cell: Tensor | None) -> Tensor:
        """Normalised LR (B, 3, H, W), coords and cells (B, Q, 2) -> normalised RGB (B, Q, 3)."""
        return self.decode_window(encode_window(self, inp), coord, cell)
