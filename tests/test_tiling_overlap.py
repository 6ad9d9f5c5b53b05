"""liifsr.tiling: a tile's encoder window is the tile grown by what its pixels read, no more.

The encoder is the cost of a whole upscale once the decoder is cheap, so every pixel a
tile encodes beyond its own is work done twice: the window must be the tile, plus the
latent codes its queries read (LIIF's local ensemble: one cell), plus the projection's
halo, plus the encoder's receptive radius, and clipped to the image."""

from __future__ import annotations

import pytest
import torch

from liifsr.models import ModelConfig, build_model
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIFConfig
from liifsr.models.thermal import ThermalConfig
from liifsr.tiling import Span, grow, tile_spans, upscale_tensor

IN_HW, OUT_HW, TILE = (37, 45), (101, 131), 16


def encoded_windows(model, lr: torch.Tensor) -> list[tuple[int, int]]:
    """The (height, width) of every window the encoder ran on in one tiled upscale."""
    windows = []
    encode = model.encode
    model.encode = lambda inp: windows.append(tuple(inp.shape[-2:])) or encode(inp)
    try:
        upscale_tensor(model, lr, OUT_HW, tile_size=TILE)
    finally:
        del model.encode
    return windows


def window_sides(n: int, reach: int) -> list[int]:
    """The side of each tile's window along an axis of n pixels: the tile grown by `reach`, clipped."""
    return [grow(tile, reach, n).stop - grow(tile, reach, n).start for tile in tile_spans(n, TILE)]


def model_with(decoder) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(EDSRConfig(n_resblocks=2, n_feats=8), decoder)).eval()


def test_a_heat_field_tile_encodes_its_receptive_radius_and_nothing_more() -> None:
    """The heat field reads only the nearest code, through a 1x1 projection: a tile's
    window is the tile grown by the encoder's receptive radius (EDSR with 2 blocks: 6)."""
    model = model_with(ThermalConfig(components=4))
    reach = model.encoder.receptive_radius
    assert reach == 6
    windows = encoded_windows(model, torch.rand(1, 3, *IN_HW))
    rows, cols = window_sides(IN_HW[0], reach), window_sides(IN_HW[1], reach)
    assert windows == [(h, w) for h in rows for w in cols]


@pytest.mark.parametrize("local_ensemble", [True, False])
def test_a_liif_tile_encodes_at_most_one_more_cell_for_the_ensemble_and_the_unfolding(local_ensemble: bool) -> None:
    """LIIF's queries read the codes around them (one cell each way with the ensemble) and
    each code's 3x3 unfolding one more ring: at most the receptive radius plus 2."""
    model = model_with(LIIFConfig(hidden=[8], local_ensemble=local_ensemble))
    reach = model.encoder.receptive_radius + model.projection_radius + int(local_ensemble)
    windows = encoded_windows(model, torch.rand(1, 3, *IN_HW))
    rows, cols = window_sides(IN_HW[0], reach), window_sides(IN_HW[1], reach)
    assert len(windows) == len(rows) * len(cols)
    for (h, w), (most_h, most_w) in zip(windows, [(h, w) for h in rows for w in cols]):
        assert h <= most_h and w <= most_w


def test_an_untiled_input_is_encoded_once_whole() -> None:
    model = model_with(ThermalConfig(components=4))
    windows = []
    encode = model.encode
    model.encode = lambda inp: windows.append(tuple(inp.shape[-2:])) or encode(inp)
    upscale_tensor(model, torch.rand(1, 3, *IN_HW), OUT_HW)
    assert windows == [IN_HW]


def test_grow_clips_to_the_image() -> None:
    assert grow(Span(0, 16), 6, 37) == Span(0, 22) and grow(Span(32, 37), 6, 37) == Span(26, 37)
