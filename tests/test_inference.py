import numpy as np
import pytest
import torch
from PIL import Image

from liifsr.checks import Fit, UpscaleError, output_size
from liifsr.coords import make_coord
from liifsr.inference import upscale
from liifsr.models import ModelConfig, model_preset
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIF, LIIFConfig
from liifsr.tiling import upscale_tensor


def tiny_model(**flags) -> LIIF:
    torch.manual_seed(0)
    config = ModelConfig(EDSRConfig(n_resblocks=2, n_feats=8), LIIFConfig(hidden=[32, 32], **flags))
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
    out = upscale(model, rgba, scale=2)
    assert out.mode == "RGBA" and out.size == (20, 24)
    gray = Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8), "L")
    assert upscale(model, gray, size=(30, 25)).mode == "L"
    array16 = rng.integers(0, 65536, (12, 10, 3), dtype=np.uint16)
    out16 = upscale(model, array16, scale=(1.5, 2))
    assert out16.dtype == np.uint16 and out16.shape == (18, 20, 3)
    gray8 = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    assert upscale(model, gray8, scale=2).shape == (24, 20)
    batch = torch.rand(2, 3, 12, 10)
    out_t = upscale(model, batch, scale=2)
    assert out_t.shape == (2, 3, 24, 20) and out_t.min() >= 0 and out_t.max() <= 1
    assert torch.allclose(out_t[1], upscale(model, batch[1], scale=2))


def test_alpha_is_resized_bicubic_and_opaque_stays_opaque():
    model = tiny_model()
    image = np.full((8, 8, 4), 255, dtype=np.uint8)
    image[..., :3] = 90
    out = upscale(model, image, scale=3)
    assert (out[..., 3] == 255).all()


# --- one validation for every entry point ---------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({"tile_size": -3}, "tile_size"), ({"tile_size": 0}, "tile_size"), ({"chunk_size": 0}, "chunk_size"),
    ({"chunk_size": -5}, "chunk_size"), ({"chunk_size": True}, "chunk_size"), ({"tile_size": 2.5}, "tile_size"),
    ({"precision": "fp8"}, "precision"),
])
def test_bad_options_are_refused_by_every_input_kind(options, message):
    model = tiny_model()
    array = np.zeros((6, 5, 3), np.uint8)
    for image in (array, torch.rand(3, 6, 5), Image.fromarray(array)):
        with pytest.raises(UpscaleError, match=message):
            upscale(model, image, scale=2, **options)


@pytest.mark.parametrize("image", [
    torch.rand(3, 16, 0), torch.rand(0, 3, 8, 8), torch.full((3, 4, 4), float("nan")), torch.full((1, 3, 4, 4), float("inf")),
    np.zeros((0, 20, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8), np.zeros((8, 8, 5), np.uint8),
    torch.zeros(3, 4, 4, dtype=torch.uint8), [[0.5]],
], ids=["empty-width", "empty-batch", "nan", "inf", "empty-array", "4d-array", "5-channels", "int-tensor", "list"])
def test_empty_nan_and_misshapen_inputs_are_errors_not_garbage(image):
    with pytest.raises(UpscaleError):
        upscale(tiny_model(), image, scale=2)


@pytest.mark.parametrize("target", [{"scale": True}, {"scale": (2, False)}, {"size": (True, 4)}, {"size": (4.0, 4)},
                                    {"size": 8}, {"scale": "2"}, {"scale": np.bool_(True)}])
def test_booleans_and_strings_are_not_sizes_or_scales(target):
    with pytest.raises(UpscaleError):
        output_size((10, 10), target.get("scale"), target.get("size"))


def test_animated_images_are_refused_like_files_and_truncated_ones_say_so(tmp_path):
    from liifsr.imageio import ImageError

    frames = [Image.new("RGB", (8, 8), color) for color in ("red", "blue")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="frames"):
        upscale(tiny_model(), Image.open(tmp_path / "anim.gif"), scale=2)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(tmp_path / "full.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:2000])
    with pytest.raises(ImageError, match="truncated"):
        upscale(tiny_model(), Image.open(tmp_path / "cut.png"), scale=2)  # opened lazily, decoded by upscale


def test_unknown_and_missing_devices_are_clear_errors():
    from liifsr.runtime import DeviceError
    from liifsr.zoo import load_model

    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        load_model(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA"):
            load_model(device="cuda")


def test_bands_cover_the_output_with_its_pixels():
    from liifsr.tiling import upscale_bands

    model = tiny_model(global_skip=True)
    lr = torch.rand(1, 3, 23, 19)
    size = (71, 50)
    whole = upscale_tensor(model, lr, size)[0].permute(1, 2, 0)
    for band_pixels, tile in ((1, None), (500, 7), (10**9, None)):
        rows = [(r, band) for r, band in upscale_bands(model, lr, size, band_pixels=band_pixels, tile_size=tile)]
        assert [r.start for r, _ in rows] == [0] + [r.stop for r, _ in rows[:-1]] and rows[-1][0].stop == size[0]
        assert all(band.shape[0] * size[1] <= max(band_pixels, 4 * size[1]) for _, band in rows)
        assert (torch.cat([band for _, band in rows]) - whole).abs().max() <= 1e-5


def test_alpha_bands_match_torch_bicubic():
    import torch.nn.functional as F

    from liifsr.inference import resize_alpha
    from liifsr.tiling import Span

    alpha = np.random.default_rng(1).random((17, 23)).astype(np.float32)
    for size in ((40, 61), (5, 9), (17, 23), (100, 7)):
        expected = F.interpolate(torch.from_numpy(alpha)[None, None], size=size, mode="bicubic", align_corners=False)
        expected = expected[0, 0].clamp(0, 1).numpy()
        assert np.abs(resize_alpha(alpha, size) - expected).max() <= 1e-5
        assert np.abs(resize_alpha(alpha, size, Span(2, 4)) - expected[2:4]).max() <= 1e-5


@pytest.mark.parametrize("in_hw,fit,expected", [
    ((300, 400), Fit(long_side=3840), (2880, 3840)),
    ((400, 300), Fit(long_side=3840), (3840, 2880)),
    ((300, 400), Fit(short_side=1080), (1080, 1440)),
    ((333, 500), Fit(long_side=1000), (666, 1000)),
    ((300, 400), Fit(box=(1080, 1920)), (1080, 1440)),  # the height binds
    ((300, 800), Fit(box=(1080, 1920)), (720, 1920)),  # the width binds
    ((1, 1000), Fit(long_side=10), (1, 10)),  # never a zero side
    ((7, 3), Fit(box=(10, 10)), (10, 4)),
])
def test_fit_sizes_keep_the_aspect_and_make_the_binding_side_exact(in_hw, fit, expected) -> None:
    out = output_size(in_hw, None, fit)
    assert out == expected
    if fit.box is not None:
        assert out[0] <= fit.box[0] and out[1] <= fit.box[1] and (out[0] == fit.box[0] or out[1] == fit.box[1])
    ratio = (out[0] / in_hw[0], out[1] / in_hw[1])
    assert abs(ratio[0] - ratio[1]) <= 1 / min(in_hw) + 0.5 / min(out)  # aspect kept up to rounding


def test_fit_is_validated_and_reaches_the_api() -> None:
    for bad in ({}, {"long_side": 0}, {"long_side": 3, "short_side": 4}, {"box": (10,)}, {"long_side": True}, {"box": (5, -1)}):
        with pytest.raises(UpscaleError):
            Fit(**bad)
    assert upscale(tiny_model(), torch.rand(3, 12, 16), size=Fit(long_side=40)).shape == (3, 30, 40)


def test_upscale_files_yields_every_result_and_the_errors_in_place(tmp_path) -> None:
    """The API for collections: a folder and a file in, one result per image, in order; a
    corrupt file is a result with its one-line error and does not stop the others."""
    import numpy as np
    from PIL import Image

    from liifsr.inference import upscale_files

    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.fromarray(np.full((10, 14, 3), 120, np.uint8)).save(tmp_path / "in" / "a.png")
    (tmp_path / "in" / "sub" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    Image.fromarray(np.full((6, 4), 50, np.uint8)).save(tmp_path / "gray.png")
    results = list(upscale_files(tiny_model(), [tmp_path / "in", tmp_path / "gray.png"], size=Fit(short_side=12)))
    assert [r.source.name for r in results] == ["a.png", "bad.png", "gray.png"]
    assert results[0].image.size == (17, 12) and results[0].error is None  # (W, H)
    assert results[1].image is None and "bad.png" in results[1].error and "\n" not in results[1].error
    assert results[2].image.size == (12, 18) and results[2].image.mode == "L"  # grayscale stays grayscale
