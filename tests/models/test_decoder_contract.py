"""The decoding contract (`liifsr.models.window`), for every registered decoder: a tiled
upscale equals one forward pass. It holds only if the decoder's declarations are right
(`local_ensemble`, `projection_radius`, `global_skip`: what a tile's window is grown by),
so a decoder that reads more than it declares fails here; the last tests show that it does.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from liifsr import coords as C
from liifsr.models import DECODERS, ModelConfig, build_model
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIFConfig
from liifsr.models.thermal import Thermal, ThermalConfig
from liifsr.tiling import upscale_tensor

IN_HW, OUT_HW = (13, 15), (40, 47)


def random_model(decoder_config) -> torch.nn.Module:
    """A small model of `decoder_config` whose every weight is perturbed, so that no part
    of the decoder is idle (the heat field's output weights start at zero, and its context
    branch's output layer entirely)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), decoder_config)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * (parameter.abs().mean() if parameter.any() else 0.3))
    return model


def tiled_minus_forward(model) -> float:
    """The largest difference between a tiled upscale (tiles of 4 LR pixels, chunks of 97
    queries) and one forward pass over the whole output, in [0, 1] pixel values."""
    torch.manual_seed(1)
    lr = torch.rand(1, 3, *IN_HW)
    coord = C.make_coord(OUT_HW).unsqueeze(0)
    cell = C.cell_size(OUT_HW).expand(1, coord.shape[1], 2)
    with torch.no_grad():
        forward = C.denormalise(model(C.normalise(lr), coord, cell)).clamp(0, 1)
        tiled = upscale_tensor(model, lr, OUT_HW, tile_size=4, chunk_size=97)
    forward = forward.view(1, *OUT_HW, 3).permute(0, 3, 1, 2)
    assert ((forward > 0) & (forward < 1)).float().mean() > 0.5  # not clamped away: the comparison sees the decoder
    return float((tiled - forward).abs().max())


@pytest.mark.parametrize("name", DECODERS.names())
def test_a_tiled_upscale_equals_one_forward_for_every_registered_decoder(name: str) -> None:
    model = random_model(DECODERS.configs[name]())
    assert tiled_minus_forward(model) < 1e-5


@pytest.mark.parametrize("unfold, ensemble", [(True, True), (True, False), (False, True), (False, False)])
def test_and_for_each_of_liifs_reaches(unfold: bool, ensemble: bool) -> None:
    model = random_model(LIIFConfig(hidden=[32, 32], feature_unfold=unfold, local_ensemble=ensemble, global_skip=True))
    assert tiled_minus_forward(model) < 1e-5


def test_and_for_the_heat_field_s_context_branch() -> None:
    assert tiled_minus_forward(random_model(ThermalConfig(components=4, context=6))) < 1e-5


def test_a_context_branch_declared_without_its_radius_fails_the_check() -> None:
    model = random_model(ThermalConfig(components=4, context=6))
    model.projection_radius = 0
    assert tiled_minus_forward(model) > 1e-3


class BlursItsFeatures(Thermal):
    """A heat field whose projection reads the 3x3 features around each code, declared as 1x1."""

    def latent_projection(self, feat):
        return super().latent_projection(F.avg_pool2d(feat, 3, stride=1, padding=1))


def test_a_projection_radius_declared_too_small_fails_the_check() -> None:
    """At a tile's border its codes miss the features beyond it."""
    model = random_model(ThermalConfig(components=4))
    model.__class__ = BlursItsFeatures
    assert tiled_minus_forward(model) > 1e-3


class ReadsTheNextCode(Thermal):
    """A heat field that also reads the code after its nearest one, without declaring a
    local ensemble: at a tile's right edge the code after it is not its neighbour."""

    def decode_codes(self, window, codes, cell):
        later = (codes.index() + 1).clamp(max=window.flat_table().shape[0] - 1).view_as(codes.rows[0])
        return super().decode_codes(window, type(codes)([later], codes.rel_coords), cell)


def test_an_undeclared_neighbour_fails_the_check() -> None:
    model = random_model(ThermalConfig(components=4))
    model.__class__ = ReadsTheNextCode
    assert tiled_minus_forward(model) > 1e-3


class AddsTheSkipItself(Thermal):
    """Adds the LR pixel itself rather than declaring a global skip."""

    global_skip = False

    def decode_window(self, window, coord, cell):
        return super().decode_window(window, coord, cell) + window.nearest_skip(coord)


def test_an_undeclared_skip_fails_the_check() -> None:
    model = random_model(ThermalConfig(components=4))
    model.__class__ = AddsTheSkipItself
    with pytest.raises(ValueError, match="must declare global_skip"):
        tiled_minus_forward(model)
