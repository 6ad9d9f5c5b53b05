"""liifsr.tiling: the span arithmetic that cuts an upscale into tiles and bands, and its two
entry points, `upscale_tensor` (the whole output) and `upscale_bands` (row bands), which run
one tile loop. (The encoder's windows: test_tiling_overlap.py; its layout: test_tiling_layout.py.)"""

from __future__ import annotations

import pytest
import torch

from liifsr import coords as C
from liifsr.models import ModelConfig, build_model
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIFConfig
from liifsr.tiling import (
    FEATURE_CACHE_BYTES,
    Span,
    encoded_rows,
    needed_latents,
    owned_outputs,
    tile_spans,
    upscale_bands,
    upscale_tensor,
)


@pytest.mark.parametrize("n,tile", [(1, 1), (1, 5), (5, 5), (10, 3), (256, 256), (257, 256), (1000, 7)])
def test_tile_spans_cover_the_axis_once_in_order(n: int, tile: int) -> None:
    spans = tile_spans(n, tile)
    assert spans[0].start == 0 and spans[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(spans, spans[1:]))  # no gap, no overlap
    assert all(s.stop - s.start == tile for s in spans[:-1]) and 0 < spans[-1].stop - spans[-1].start <= tile


# (latent cells, output pixels, tile): upscales, one tile for all, identity, a downscale (tiles owning nothing).
SIZES = [(23, 71, 7), (19, 50, 19), (10, 10, 3), (37, 13, 5), (5, 150, 2)]


@pytest.mark.parametrize("n_latent,n_out,tile", SIZES)
def test_owned_outputs_partition_the_output_pixels_among_the_tiles(n_latent: int, n_out: int, tile: int) -> None:
    """Every output pixel belongs to exactly one tile: the one holding its nearest latent cell."""
    centers = C.pixel_centers(n_out)
    tiles = tile_spans(n_latent, tile)
    owned = [owned_outputs(centers, n_latent, span) for span in tiles]
    assert owned[0].start == 0 and owned[-1].stop == n_out
    assert all(a.stop == b.start for a, b in zip(owned, owned[1:]))
    cells = C.nearest_index(centers, n_latent).tolist()
    for span, pixels in zip(tiles, owned):
        assert all(span.start <= cell < span.stop for cell in cells[pixels.start : pixels.stop])


def read_cells(ys: torch.Tensor, xs: torch.Tensor, grid_hw: tuple[int, int], local_ensemble: bool) -> tuple[Span, Span]:
    """The latent rows and columns that every query of ys x xs reads, looked up one by one."""
    coord = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).view(-1, 2)
    eps = 1e-6 if local_ensemble else 0.0
    rows, cols = [], []
    for vy, vx in C.ensemble_offsets(local_ensemble):
        query = C.shifted_query(coord, vy, vx, grid_hw, eps)
        rows.append(C.nearest_index(query[:, 0], grid_hw[0]))
        cols.append(C.nearest_index(query[:, 1], grid_hw[1]))
    r, c = torch.cat(rows), torch.cat(cols)
    return Span(int(r.min()), int(r.max()) + 1), Span(int(c.min()), int(c.max()) + 1)


@pytest.mark.parametrize("local_ensemble", [True, False])
def test_needed_latents_are_the_cells_the_queries_read(local_ensemble: bool) -> None:
    """From the two extreme corners only, the span of every query's cells, ensemble included."""
    grid_hw, out_hw = (11, 17), (40, 29)
    all_ys, all_xs = C.pixel_centers(out_hw[0]), C.pixel_centers(out_hw[1])
    for rows, cols in ((Span(0, 40), Span(0, 29)), (Span(5, 9), Span(20, 29)), (Span(39, 40), Span(0, 1)), (Span(17, 23), Span(7, 8))):
        ys, xs = all_ys[rows.start : rows.stop], all_xs[cols.start : cols.stop]
        assert needed_latents(ys, xs, grid_hw, local_ensemble) == read_cells(ys, xs, grid_hw, local_ensemble), (rows, cols)


def test_encoded_rows_fill_the_feature_budget_between_a_band_and_a_tile() -> None:
    row_bytes = 4 * 64 * 1000  # one LR row's float32 features, 64 channels, 1,000 pixels wide
    assert encoded_rows(1000, 64, 256, 2) == min(256, FEATURE_CACHE_BYTES // row_bytes)
    assert encoded_rows(1000, 64, 8, 2) == 8  # never more than a tile
    assert encoded_rows(10**6, 64, 256, 3) == 3  # never fewer than a band


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16, 16]))).eval()


@pytest.mark.parametrize("tile_size", [None, 7])
def test_upscale_tensor_is_the_bands_of_upscale_bands_put_together(tile_size: int | None) -> None:
    """With the default band budget, `upscale_bands`' bands are the tile rows `upscale_tensor`
    decodes: the same computations, so the same values to the bit, counted the same."""
    model, lr, size = tiny_model(), torch.rand(1, 3, 23, 19, generator=torch.Generator().manual_seed(1)), (71, 50)
    whole_counts: list[int] = []
    band_counts: list[int] = []
    whole = upscale_tensor(model, lr, size, tile_size=tile_size, on_block=whole_counts.append)[0].permute(1, 2, 0)
    bands = list(upscale_bands(model, lr, size, tile_size=tile_size, on_block=band_counts.append))

    ys = C.pixel_centers(size[0])
    tile_rows = [owned_outputs(ys, 23, lr_rows) for lr_rows in tile_spans(23, tile_size or 23)]
    assert [rows for rows, _ in bands] == tile_rows  # the premise: the same schedule
    assert all(band.shape == (rows.stop - rows.start, size[1], 3) for rows, band in bands)
    assert torch.equal(torch.cat([band for _, band in bands]), whole)
    assert whole_counts == band_counts and sum(whole_counts) == size[0] * size[1]

    into = upscale_tensor(model, lr, size, tile_size=tile_size, out=torch.empty(*size, 3, dtype=torch.uint8))
    assert torch.equal(into, (whole * 255).round().to(torch.uint8))  # a preallocated uint8 result: the same, rounded


def test_thin_bands_share_the_features_encoded_for_their_tile_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """At large scales a band holds a few LR rows. Its windows are cut from features encoded
    once per tile (a tile row's bands share them), not encoded per band with the encoder's
    margin around each: 4 encodings for 2 x 2 tiles, not one per band and tile column."""
    model, lr, size = tiny_model(), torch.rand(1, 3, 23, 19, generator=torch.Generator().manual_seed(2)), (230, 190)
    whole = upscale_tensor(model, lr, size, tile_size=16)[0].permute(1, 2, 0)
    encoded: list[tuple[int, int]] = []
    encode = model.encode
    monkeypatch.setattr(model, "encode", lambda inp: (encoded.append(tuple(inp.shape[-2:])), encode(inp))[1])
    bands = list(upscale_bands(model, lr, size, tile_size=16, band_pixels=size[1] * 10))  # one LR row a band

    assert len(bands) == 23 and len(encoded) == 4
    assert (torch.cat([band for _, band in bands]) - whole).abs().max() <= 1e-5
