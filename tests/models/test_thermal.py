import math

import pytest
import torch
import torch.nn.functional as F

from liifsr import coords as C
from liifsr.models import build_model, model_preset
from liifsr.models.base import ModelConfig
from liifsr.models.edsr import EDSRConfig
from liifsr.models.thermal import ThermalConfig
from liifsr.tiling import upscale_tensor


def tiny_thermal(field: bool = True, context: int = 0) -> torch.nn.Module:
    """A small heat-field model; with `field`, a random W2 (it starts at zero) and
    frequencies whose damping is visible, so that the field adds something; with
    `context`, a context branch of that many channels, its output random too."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), ThermalConfig(components=6, context=context))).eval()
    if field:
        with torch.no_grad():
            for layer in table_layers(model):
                layer.weight.normal_(0, 0.3)
                layer.bias.normal_(0, 0.3)
    return model


def table_layers(model) -> list[torch.nn.Conv2d]:
    """The layers whose outputs make the per-pixel table: the 1x1 hyper-network and, with a
    context branch, its output layer."""
    return [layer for layer in (model.hyper, model.context_out) if layer is not None]


def test_preset_has_thera_air_s_decoder_size():
    """A 1x1 conv 64 -> 32 * 3 + 32, the shared (2, 32) frequencies and kappa: 8,385."""
    model = build_model(model_preset("edsr-thermal"))
    decoder = model.num_parameters() - sum(p.numel() for p in model.encoder.parameters())
    assert decoder == 64 * 128 + 128 + 2 * 32 + 1 == 8_385
    radius = model.frequencies.norm(dim=0)
    assert radius.max() <= 4 * math.pi and radius.max() > 2 * math.pi
    assert math.isclose(model.kappa.item(), math.sqrt(math.log(4)) / (2 * math.pi**2), rel_tol=1e-6)


def test_the_field_starts_at_zero_so_the_model_starts_as_nearest_upsampling():
    model = tiny_thermal(field=False)
    inp = torch.rand(1, 3, 6, 7) * 2 - 1
    coord, cell = C.make_coord((18, 21)).unsqueeze(0), C.cell_size((18, 21)).expand(1, 18 * 21, 2)
    with torch.no_grad():
        out = model(inp, coord, cell)
    assert torch.equal(out, C.nearest_sample(inp, coord, (6, 7)))


def literal_heat_field(model, inp, coord, cell):
    """The field written out per query and component, with grid_sample lookups."""
    feat = model.encode(inp)
    table = model.hyper(feat)  # (B, 4K, h, w)
    if model.context is not None:
        table = table + model.context_out(F.relu(model.context(feat)))
    h, w = table.shape[-2:]
    grid = coord.flip(-1).unsqueeze(1)
    params = F.grid_sample(table, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
    centres = C.make_coord((h, w)).view(h, w, 2).permute(2, 0, 1).unsqueeze(0).expand(inp.shape[0], 2, h, w)
    centre = F.grid_sample(centres, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
    x = (coord - centre) * torch.tensor([h / 2, w / 2])  # offsets in LR pixels
    scale_y, scale_x = 2 / (cell[..., 0] * h), 2 / (cell[..., 1] * w)
    t = 1 / (scale_y * scale_x)
    k = model.components
    out = torch.zeros(*coord.shape[:2], 3)
    for j in range(k):
        omega = model.frequencies[:, j]
        z = x[..., 0] * omega[0] + x[..., 1] * omega[1] + params[..., 3 * k + j]
        damped = torch.sin(z) * torch.exp(-(omega.square().sum()) * model.kappa * t)
        for c in range(3):
            out[..., c] += params[..., 3 * j + c] * damped
    skip = F.grid_sample(inp, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
    return out + skip


@pytest.mark.parametrize("context", [0, 5])
@pytest.mark.parametrize("cells", ["one grid", "every query its own"])
def test_decoder_is_the_literal_heat_field(cells, context):
    model = tiny_thermal(context=context)
    generator = torch.Generator().manual_seed(1)
    inp = torch.rand(2, 3, 9, 11, generator=generator) * 2 - 1
    coord = torch.rand(2, 300, 2, generator=generator) * 2 - 1
    cell = torch.stack([torch.full((2, 300), 2 / 27), torch.full((2, 300), 2 / 22)], dim=-1)  # x3 by x2
    if cells != "one grid":
        cell = cell * (0.2 + 2 * torch.rand(2, 300, 2, generator=generator))  # x1 to x15
    with torch.no_grad():
        assert (model(inp, coord, cell) - literal_heat_field(model, inp, coord, cell)).abs().max() < 1e-5


def test_a_context_branch_starts_at_zero_so_a_model_trained_without_it_starts_as_it_was():
    """What `init_from` relies on: every parameter but the branch's copied, same outputs."""
    trained = tiny_thermal()
    model = build_model(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), ThermalConfig(components=6, context=5))).eval()
    missing = model.load_state_dict(trained.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["context.bias", "context.weight", "context_out.bias", "context_out.weight"]
    assert model.projection_radius == 1 and trained.projection_radius == 0
    lr = torch.rand(1, 3, 9, 10)
    with torch.no_grad():
        assert (upscale_tensor(model, lr, (25, 31)) - upscale_tensor(trained, lr, (25, 31))).abs().max() < 1e-6


def test_nearest_sample_is_grid_sample_nearest_on_the_full_image():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 7, 9, generator=generator)
    coord = torch.rand(2, 100, 2, generator=generator) * 2 - 1
    expected = F.grid_sample(image, coord.flip(-1).unsqueeze(1), mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
    assert torch.equal(C.nearest_sample(image, coord, (7, 9)), expected)
    window = image[:, :, 2:6, 3:8]  # rows 2-5, columns 3-7
    lows, highs = torch.tensor([-1 + 4 / 7, -1 + 6 / 9]), torch.tensor([-1 + 12 / 7, -1 + 16 / 9])
    inside = lows + (highs - lows) * torch.rand(2, 50, 2, generator=generator)
    expected = F.grid_sample(image, inside.flip(-1).unsqueeze(1), mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
    assert torch.equal(C.nearest_sample(window, inside, (7, 9), (2, 3)), expected)


def test_higher_scales_damp_less_and_scale_one_damps_fine_components_away():
    """t = 1 / S^2: a component is damped less the finer the output grid."""
    model = tiny_thermal()
    norms = model.frequencies.square().sum(0)
    from liifsr.models.thermal import diffusion_time, heat_damping

    damping = [heat_damping(norms, model.kappa, diffusion_time(torch.full((1, 1, 2), 2 / s))) for s in (1, 2, 4, 30)]
    assert all(bool((a <= b).all()) for a, b in zip(damping, damping[1:]))
    assert torch.allclose(damping[0], torch.exp(-norms * model.kappa))


@pytest.mark.parametrize("context", [0, 5])
def test_tiled_upscale_equals_one_forward_and_a_constant_stays_constant(context):
    model = tiny_thermal(context=context)
    lr = torch.rand(1, 3, 13, 15)
    with torch.no_grad():
        whole = upscale_tensor(model, lr, (40, 47))
        tiled = upscale_tensor(model, lr, (40, 47), tile_size=4, chunk_size=97)
        assert (whole - tiled).abs().max() < 1e-6
        for layer in table_layers(model):
            layer.weight.zero_()
            layer.bias.zero_()
        flat = upscale_tensor(model, torch.full((1, 3, 7, 9), 0.3), (20, 31))
    assert torch.allclose(flat, torch.full_like(flat, 0.3), atol=1e-6)
