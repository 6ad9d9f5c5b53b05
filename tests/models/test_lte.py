import pytest
import torch

from liifsr.models import build_model, model_preset
from liifsr.models.base import ModelConfig
from liifsr.models.edsr import EDSRConfig
from liifsr.models.lte import LTEConfig, fourier_input
from liifsr.reference import literal_lte
from liifsr.tiling import upscale_tensor


def tiny_lte() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LTEConfig(channels=16, hidden=[32, 32])))
    with torch.no_grad():  # frequencies of a trained LTE are large: make the sines turn
        model.freq.weight.mul_(20)
        model.phase.weight.mul_(5)
    return model.eval()


def queries(batch: int = 1, count: int = 300, scale: float = 3.0):
    generator = torch.Generator().manual_seed(1)
    coord = torch.rand(batch, count, 2, generator=generator) * 2 - 1
    return coord, torch.full((batch, count, 2), 2 / (10 * scale))


def test_preset_has_lte_s_decoder_size():
    """LTE with EDSR-baseline: 0.49 M decoder parameters (two 3x3 convs 64 -> 256, a
    2 -> 128 phase, the MLP 256 -> [256] * 3 -> 3)."""
    model = build_model(model_preset("edsr-lte"))
    decoder = model.num_parameters() - sum(p.numel() for p in model.encoder.parameters())
    conv = 64 * 256 * 9 + 256
    assert decoder == 2 * conv + 2 * 128 + 3 * (256 * 256 + 256) + 256 * 3 + 3 == 493_827


def test_fourier_input_is_the_literal_formula():
    torch.manual_seed(0)
    amplitude, frequency, rel, phase = torch.randn(5, 6), torch.randn(5, 6), torch.randn(5, 2), torch.randn(5, 3)
    s = torch.stack([frequency[:, 2 * k] * rel[:, 0] + frequency[:, 2 * k + 1] * rel[:, 1] for k in range(3)], 1) + phase
    expected = amplitude * torch.cat([torch.cos(torch.pi * s), torch.sin(torch.pi * s)], 1)
    assert torch.allclose(fourier_input(amplitude, frequency, rel, phase), expected, atol=1e-5)


@pytest.mark.parametrize("scale", [3.0, 8.0])  # x8: above LTE's training range, the cell of x4
@pytest.mark.usefixtures("kernel_branch")
def test_fast_decoder_equals_lte_s_query_rgb(scale):
    model = tiny_lte()
    inp = torch.rand(2, 3, 10, 12) * 2 - 1
    coord, cell = queries(batch=2, scale=scale)
    with torch.no_grad():
        assert (model(inp, coord, cell) - literal_lte(model, inp, coord, cell)).abs().max() < 1e-5


@pytest.mark.usefixtures("kernel_branch")
def test_gradients_equal_the_literal_ones():
    model = tiny_lte().train()
    inp = torch.rand(1, 3, 9, 11) * 2 - 1
    coord, cell = queries(count=200)
    grads = []
    for forward in (model, lambda *a: literal_lte(model, *a)):
        model.zero_grad()
        forward(inp, coord, cell).square().sum().backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()})
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], rtol=1e-4, atol=1e-5), name


def test_tiled_upscale_equals_one_forward():
    """Tiles and chunks (the halo of LTE's 3x3 estimators, the skip's window) change nothing."""
    model = tiny_lte()
    lr = torch.rand(1, 3, 13, 15)
    with torch.no_grad():
        whole = upscale_tensor(model, lr, (40, 47))
        tiled = upscale_tensor(model, lr, (40, 47), tile_size=4, chunk_size=97)
    assert (whole - tiled).abs().max() < 1e-5


def test_a_constant_image_stays_constant_when_the_decoder_adds_nothing():
    """The bilinear skip reproduces a constant; with a zero MLP output layer LTE adds nothing."""
    model = tiny_lte()
    with torch.no_grad():
        model.imnet.layers[-1].weight.zero_()
        model.imnet.layers[-1].bias.zero_()
        out = upscale_tensor(model, torch.full((1, 3, 7, 9), 0.3), (20, 31))
    assert torch.allclose(out, torch.full_like(out, 0.3), atol=1e-6)
