"""Requests that gave wrong output without a word, or a traceback: sizes beyond any
integer or float, float images outside [0, 1], a model's name instead of a model, 16-bit
images cut to 8 bits by the API, an sBIT chunk called corruption, an infinite PSNR
written as `Infinity` into JSON, and an environment switch read as something else."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import png
import pytest
import torch
from PIL import Image

import liifsr
from liifsr import kernels
from liifsr.checkpoint import save_model
from liifsr.checks import UpscaleError
from liifsr.cli import main
from liifsr.imageio import read_image
from liifsr.models import ModelConfig
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIF, LIIFConfig


@pytest.fixture(scope="module")
def model() -> LIIF:
    torch.manual_seed(0)
    return LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16]))).eval()


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("liifsr: error: ") and "Traceback" not in err, err
    return err


# --- size arithmetic --------------------------------------------------------------------


@pytest.mark.parametrize("target", [["--scale", "1e308"], ["--long-side", "99999999999", "--allow-huge"],
                                    ["--size", "1x3000000000", "--allow-huge"], ["--scale", "1e9", "--allow-huge"],
                                    ["--short-side", "2000000000", "--allow-huge"]])
def test_outputs_beyond_any_side_are_one_line_errors(tmp_path, capsys, target):
    """These ended in OverflowError, TypeError or pypng's ProtocolError tracebacks."""
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(image)
    assert main(["upscale", str(image), *target, "-o", str(tmp_path / "out.png"), "--model", "edsrless-liif-relu"]) == 2
    assert "2,147,483,647" in one_error_line(capsys)
    assert not (tmp_path / "out.png").exists()


def test_every_scale_is_checked_by_one_rule(tmp_path, capsys, model):
    """`checks.check_scale` is the one rule: the API and `upscale --scale` take any positive
    finite scale, `compare` one >= 1, `evaluate` whole ones >= 1; each refusal says so."""
    from liifsr.checks import check_scale
    from liifsr.evaluation.datasets import parse_scales

    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(image)
    assert check_scale(np.float32(0.5)) == 0.5 and check_scale(2, at_least=1, whole=True) == 2.0
    for bad in (0, -2, float("nan"), float("inf"), True, "2", 10**400):
        with pytest.raises(UpscaleError, match="scale must be a positive finite number, got"):
            liifsr.upscale(model, np.zeros((4, 4, 3), np.uint8), scale=bad)
    with pytest.raises(SystemExit):  # argparse's usage error
        main(["upscale", str(image), "--scale", "2,-1", "-o", str(tmp_path / "o.png")])
    assert "--scale: scale must be a positive finite number, got -1.0" in capsys.readouterr().err
    assert main(["compare", str(image), "--models", "bicubic", "--scale", "0.5", "--box", "0,0,4,4",
                 "-o", str(tmp_path / "f.png")]) == 2
    assert "scale must be a finite number >= 1, got 0.5" in one_error_line(capsys)
    for bad in ("2.5", "0", "nan"):
        with pytest.raises(UpscaleError, match="scale must be a whole number >= 1 .the PSNR protocols shave"):
            parse_scales(bad)
    assert not any(tmp_path.glob("[of].png"))


# --- the Python API's inputs ------------------------------------------------------------


@pytest.mark.parametrize("values", [torch.rand(3, 8, 8) * 255, torch.rand(3, 8, 8) - 0.5, torch.full((1, 3, 4, 4), 1.0001)])
def test_float_tensors_outside_0_1_are_refused_not_saturated(model, values):
    with pytest.raises(UpscaleError, match=r"in \[0, 1\]"):
        liifsr.upscale(model, values, scale=2)
    assert liifsr.upscale(model, values.clamp(0, 1), scale=2).shape[-2:] == (2 * values.shape[-2], 2 * values.shape[-1])


def test_a_model_name_is_a_type_error_naming_load_model(tmp_path):
    image = Image.fromarray(np.zeros((6, 6, 3), np.uint8))
    with pytest.raises(TypeError, match=r"liifsr\.load_model\('edsr-liif-relu'\)"):
        liifsr.upscale("edsr-liif-relu", image, scale=2)
    with pytest.raises(TypeError, match="liifsr.load_model"):
        liifsr.upscale(tmp_path / "model.safetensors", torch.rand(3, 4, 4), scale=2)
    image.save(tmp_path / "a.png")
    with pytest.raises(TypeError, match="liifsr.load_model"):
        next(iter(liifsr.upscale_files("edsr-liif-relu", [tmp_path / "a.png"], scale=2)))


def test_shapes_in_messages_read_as_sizes(model):
    with pytest.raises(UpscaleError) as caught:
        liifsr.upscale(model, torch.rand(40, 48), scale=2)
    assert "40x48" in str(caught.value) and "(40, 48)" not in str(caught.value)
    with pytest.raises(UpscaleError, match="40x48x5"):
        liifsr.upscale(model, np.zeros((40, 48, 5), np.uint8), scale=2)


def test_the_api_keeps_16_bits_as_the_command_line_does(model, tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 65536, (10, 12), dtype=np.uint16)
    out = liifsr.upscale(model, Image.fromarray(gray), scale=2)  # mode I;16
    assert out.mode == "I;16" and out.size == (24, 20)
    assert (np.asarray(out) % 257 != 0).any()  # not 8-bit values stretched to 16
    assert liifsr.upscale(model, Image.fromarray(gray.astype(np.int32)), scale=2).mode == "I"

    source, by_cli = tmp_path / "rgb16.png", tmp_path / "cli.png"
    rgb = rng.integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    with source.open("wb") as handle:
        png.Writer(12, 10, greyscale=False, bitdepth=16).write(handle, rgb.reshape(10, -1))
    model_path = tmp_path / "m.safetensors"
    save_model(model, model_path)
    assert main(["upscale", str(source), "--scale", "2", "-o", str(by_cli), "--model", str(model_path)]) == 0
    (result,) = liifsr.upscale_files(model, [source], scale=2)
    assert result.bit_depth == 16 and result.array.dtype == np.uint16 and result.array.shape == (20, 24, 3)
    result.save(tmp_path / "api.png")
    expected = read_image(by_cli)
    got = read_image(tmp_path / "api.png")
    assert got.bit_depth == expected.bit_depth == 16
    assert np.abs(got.rgb - expected.rgb).max() * 65535 <= 1  # the CLI's 16-bit output, to a level


def test_read_only_arrays_upscale_without_pytorch_s_warning(model):
    """PyTorch warns about tensors made of read-only memory (np.asarray of a PIL image), in
    the middle of the output: such arrays are copied instead."""
    import warnings

    from liifsr.inference import resize_alpha, upscale_array

    rgb = np.random.default_rng(0).random((6, 5, 3), dtype=np.float32)
    alpha = rgb[..., 0].copy()
    rgb.flags.writeable = alpha.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, out_alpha = upscale_array(model, rgb, alpha, scale=2)
        assert resize_alpha(alpha, (12, 10)).shape == (12, 10)
    assert out.shape == (12, 10, 3) and out_alpha.shape == (12, 10)


def test_no_path_from_read_only_pixels_to_a_tensor_warns(model, tmp_path, monkeypatch):
    """`torch.from_numpy` of a read-only array (np.asarray of a PIL image) warns once per
    process, in the middle of the output: the command line at x40, PIL's bicubic, and the
    server's decoded images and bicubic tiles copy such arrays instead. (Once per process:
    so `torch.from_numpy` is also watched, in case an earlier test spent the warning.)"""
    import warnings

    from_numpy = torch.from_numpy

    def writable_only(array):
        assert array.flags.writeable, "torch.from_numpy of a read-only array"
        return from_numpy(array)

    monkeypatch.setattr(torch, "from_numpy", writable_only)

    from liifsr.imageio import LoadedImage, sample_image
    from liifsr.resize import pil_bicubic
    from liifsr.serve.pyramid import bicubic_region
    from liifsr.serve.service import Pixels
    from liifsr.tiling import Span

    save_model(model, tmp_path / "tiny.safetensors")
    Image.open(sample_image()).convert("RGB").crop((100, 100, 108, 108)).save(tmp_path / "in.png")
    pixels = np.random.default_rng(0).random((6, 5, 3), dtype=np.float32)
    pixels.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["upscale", str(tmp_path / "in.png"), "--model", str(tmp_path / "tiny.safetensors"), "--scale", "40",
                     "-o", str(tmp_path / "out.png")]) == 0
        assert pil_bicubic(torch.rand(3, 4, 4), (1, 1)).shape == (3, 1, 1)  # one pixel: no copy made by a transpose
        served = Pixels.create(LoadedImage(pixels, None, False, 8, "RGB"))
        assert served.lr.shape == (1, 3, 6, 5) and np.shares_memory(served.image.rgb, served.lr.numpy())
        assert bicubic_region(pixels, (60, 50), Span(0, 10), Span(0, 10)).shape == (10, 10, 3)
    assert Image.open(tmp_path / "out.png").size == (320, 320)


def _with_sbit(data: bytes, bits: list[int]) -> bytes:
    body = bytes(bits)
    chunk = struct.pack(">I", len(body)) + b"sBIT" + body + struct.pack(">I", zlib.crc32(b"sBIT" + body))
    return data[:33] + chunk + data[33:]  # right after IHDR


@pytest.mark.parametrize("planes", [2, 3, 4])
def test_a_16_bit_png_with_an_sbit_chunk_is_read_not_called_corrupt(tmp_path, planes):
    """sBIT (how many bits the source had) made pypng return Python lists, read as corruption."""
    path = tmp_path / "sbit.png"
    pixels = (np.random.default_rng(0).integers(0, 4096, (5, 6, planes)) << 4).astype(np.uint16)
    with path.open("wb") as handle:
        png.Writer(6, 5, greyscale=planes < 3, alpha=planes in (2, 4), bitdepth=16).write(handle, pixels.reshape(5, -1))
    path.write_bytes(_with_sbit(path.read_bytes(), [12] * planes))
    image = read_image(path)
    color = 1 if planes < 3 else 3
    assert image.bit_depth == 16
    assert np.array_equal(np.rint(image.rgb[..., :color] * 65535), pixels[..., :color])
    assert np.array_equal(np.rint(image.alpha * 65535), pixels[..., -1]) if planes in (2, 4) else image.alpha is None


# --- reports and switches ---------------------------------------------------------------


def test_an_infinite_psnr_is_written_as_null_in_json(tmp_path):
    """`evaluate --scales 1` scores an exact reconstruction: PSNR +inf, which was written `Infinity`
    (not JSON: strict readers refuse the whole report)."""
    (tmp_path / "set" / "HR").mkdir(parents=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 20, 3), np.uint8)).save(tmp_path / "set" / "HR" / "a.png")
    report = tmp_path / "report.json"
    assert main(["evaluate", "--model", "bicubic", "--dataset", str(tmp_path / "set"), "--scales", "1", "--quiet",
                 "--out", str(report)]) == 0
    text = report.read_text()
    assert "Infinity" not in text and "NaN" not in text
    (record,) = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON report"))
    assert record["psnr"] is None and record["scale"] == 1


@pytest.mark.parametrize("value, allowed", [("0", False), ("false", False), ("No", False), ("OFF", False), ("1", True),
                                            ("true", True), ("yes", True), ("on", True), ("", True)])
def test_the_fused_kernels_switch_reads_every_usual_spelling(monkeypatch, value, allowed):
    monkeypatch.setenv(kernels.SWITCH, value)
    assert kernels.fused_allowed() is allowed


def test_an_unknown_fused_kernels_value_is_refused_naming_the_variable(monkeypatch, model):
    monkeypatch.setenv(kernels.SWITCH, "maybe")
    with pytest.raises(ValueError, match="LIIFSR_FUSED_KERNELS='maybe' is not a switch"):
        kernels.fused_allowed()
    with pytest.raises(ValueError, match="LIIFSR_FUSED_KERNELS"):
        liifsr.upscale(model, torch.rand(3, 4, 4), scale=2)
