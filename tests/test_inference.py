import numpy as np
import pytest
import torch
from PIL import Image

from liifsr.config import DecoderConfig, EncoderConfig, ModelConfig, model_preset
from liifsr.coords import make_coord
from liifsr.inference import UpscaleError, output_size, upscale_tensor
from liifsr.liif import LIIF


def tiny_model(**flags) -> LIIF:
    torch.manual_seed(0)
    config = ModelConfig(EncoderConfig("edsr", n_resblocks=2, n_feats=8), DecoderConfig("relu", hidden=[32, 32]), **flags)
    return LIIF(config).eval()


def reference(model, lr, size):
    """One call of LIIF's forward on every output pixel."""
    coord = make_coord(size).unsqueeze(0)
    cell = torch.tensor([2 / size[0], 2 / size[1]]).expand_as(coord)
    with torch.no_grad():
        out = model((lr - 0.5) / 0.5, coord, cell)
    return (out * 0.5 + 0.5).clamp(0, 1).view(1, *size, 3).permute(0, 3, 1, 2)


@pytest.mark.parametrize("flags", [{}, {"local_ensemble": False}, {"feature_unfold": False}, {"global_skip": True}])
def test_tiled_and_chunked_equals_one_forward(flags):
    model = tiny_model(**flags)
    lr = torch.rand(1, 3, 29, 41)
    size = (97, 111)  # non-integer scales 3.34 x 2.71
    expected = reference(model, lr, size)
    assert (upscale_tensor(model, lr, size) - expected).abs().max() <= 1e-5
    for tile, chunk in ((7, 100), (10, 5000), (13, 1)):
        tiled = upscale_tensor(model, lr, size, tile_size=tile, chunk_size=chunk)
        assert (tiled - expected).abs().max() <= 1e-5, (tile, chunk)


def test_tiling_is_exact_for_the_full_edsr_receptive_field():
    torch.manual_seed(0)
    model = LIIF(model_preset("edsr-liif-relu")).eval()
    lr = torch.rand(1, 3, 90, 75)
    size = (180, 150)
    assert (upscale_tensor(model, lr, size, tile_size=32) - upscale_tensor(model, lr, size)).abs().max() <= 1e-5


def test_downscaling_and_uint8_output_buffer():
    model = tiny_model()
    lr = torch.rand(1, 3, 40, 40)
    size = (13, 17)
    buffer = torch.empty(13, 17, 3, dtype=torch.uint8)
    upscale_tensor(model, lr, size, out=buffer)
    expected = (reference(model, lr, size)[0].permute(1, 2, 0) * 255).round()
    assert (buffer.float() - expected).abs().max() <= 1


def test_output_size_rules():
    assert output_size((100, 80), 3.5, None) == (350, 280)
    assert output_size((100, 80), (2, 3), None) == (200, 240)
    assert output_size((100, 80), None, (7, 9)) == (7, 9)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(UpscaleError, match="positive finite"):
            output_size((10, 10), bad, None)
    with pytest.raises(UpscaleError):
        output_size((10, 10), 2, (20, 20))


def test_upscale_api_types_grayscale_alpha_and_16_bit():
    model = tiny_model()
    rng = np.random.default_rng(0)
    rgba = Image.fromarray(rng.integers(0, 256, (12, 10, 4), dtype=np.uint8), "RGBA")
    out = model.upscale(rgba, scale=2)
    assert out.mode == "RGBA" and out.size == (20, 24)
    gray = Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8), "L")
    assert model.upscale(gray, size=(30, 25)).mode == "L"
    array16 = rng.integers(0, 65536, (12, 10, 3), dtype=np.uint16)
    out16 = model.upscale(array16, scale=(1.5, 2))
    assert out16.dtype == np.uint16 and out16.shape == (18, 20, 3)
    gray8 = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    assert model.upscale(gray8, scale=2).shape == (24, 20)
    batch = torch.rand(2, 3, 12, 10)
    out_t = model.upscale(batch, scale=2)
    assert out_t.shape == (2, 3, 24, 20) and out_t.min() >= 0 and out_t.max() <= 1
    assert torch.allclose(out_t[1], model.upscale(batch[1], scale=2))


def test_alpha_is_resized_bicubic_and_opaque_stays_opaque():
    model = tiny_model()
    image = np.full((8, 8, 4), 255, dtype=np.uint8)
    image[..., :3] = 90
    out = model.upscale(image, scale=3)
    assert (out[..., 3] == 255).all()
