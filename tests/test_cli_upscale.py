"""`liifsr upscale` / `convert` / `models` end to end, through the real argument parser."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FIXTURES
from liifsr.checkpoint import load_model, save_model
from liifsr.cli import main
from liifsr.config import DecoderConfig, EncoderConfig, ModelConfig
from liifsr.imageio import sample_image
from liifsr.liif import LIIF

SAMPLE = sample_image()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    config = ModelConfig(EncoderConfig("edsr", n_resblocks=2, n_feats=8), DecoderConfig("sine", hidden=[32, 32]), global_skip=True)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(LIIF(config), path)
    return str(path)


@pytest.fixture
def photo(tmp_path):
    """A real photograph: a 61x47 crop of the bundled astronaut image."""
    path = tmp_path / "photo.png"
    Image.open(SAMPLE).convert("RGB").crop((180, 60, 227, 121)).save(path)
    return path


def run(*args):
    return main([str(a) for a in args])


def test_float_and_per_axis_scales_and_size(tmp_path, photo, model_file):
    assert run("upscale", photo, "--scale", "3.5", "-o", tmp_path / "a.png", "--model", model_file) == 0
    assert Image.open(tmp_path / "a.png").size == (round(47 * 3.5), round(61 * 3.5))
    assert run("upscale", photo, "--scale", "2,1.5", "-o", tmp_path / "b.png", "--model", model_file) == 0
    assert Image.open(tmp_path / "b.png").size == (round(47 * 1.5), 122)
    assert run("upscale", photo, "--size", "100x80", "-o", tmp_path / "c.png", "--model", model_file) == 0
    assert Image.open(tmp_path / "c.png").size == (80, 100)


def test_model_option_picks_the_model(tmp_path, photo, model_file):
    """--model changes the output, and the output is the chosen model's; without it, the default's."""
    assert run("upscale", photo, "--scale", "2", "-o", tmp_path / "chosen.png", "--model", model_file) == 0
    assert run("upscale", photo, "--scale", "2", "-o", tmp_path / "default.png") == 0
    chosen, default = (np.asarray(Image.open(tmp_path / f"{name}.png")).astype(int) for name in ("chosen", "default"))
    assert np.abs(chosen - default).mean() > 5
    for output, model in ((chosen, load_model(model_file)), (default, load_model())):
        assert np.array_equal(output, np.asarray(model.upscale(Image.open(photo), scale=2)).astype(int))


def test_tiled_output_equals_untiled(tmp_path, photo, model_file):
    assert run("upscale", photo, "--scale", "2.3", "-o", tmp_path / "whole.png", "--model", model_file) == 0
    assert run("upscale", photo, "--scale", "2.3", "-o", tmp_path / "tiled.png", "--model", model_file, "--tile", "9", "--chunk", "777") == 0
    whole = np.asarray(Image.open(tmp_path / "whole.png")).astype(int)
    tiled = np.asarray(Image.open(tmp_path / "tiled.png")).astype(int)
    # 1e-5 in float can flip a rounding at most by one level
    assert np.abs(whole - tiled).max() <= 1 and (whole != tiled).mean() < 1e-3


def test_out_dir_keeps_names_grayscale_alpha_and_16_bit(tmp_path, photo, model_file):
    rgb = np.asarray(Image.open(photo))
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(tmp_path / "alpha.png")
    Image.fromarray(rgb[..., 1].astype(np.uint16) * 257).save(tmp_path / "deep.png")  # 16-bit gray
    out = tmp_path / "out"
    out.mkdir()
    inputs = [tmp_path / n for n in ("gray.png", "alpha.png", "deep.png")]
    assert run("upscale", *inputs, "--scale", "2", "--out-dir", out, "--model", model_file) == 0
    assert Image.open(out / "gray.png").mode == "L"
    alpha = Image.open(out / "alpha.png")
    assert alpha.mode == "RGBA" and np.all(np.asarray(alpha)[..., 3] == 128)
    assert Image.open(out / "deep.png").mode.startswith("I")


def assert_fails(capsys, args, message, leftover):
    assert run(*args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert not leftover.exists()


def test_bad_inputs_fail_in_one_line_without_output(tmp_path, photo, model_file, capsys):
    out = tmp_path / "out.png"
    model = ["--model", model_file]
    assert_fails(capsys, ["upscale", tmp_path / "missing.png", "--scale", "2", "-o", out, *model], "does not exist", out)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(photo.read_bytes()[:300])
    assert_fails(capsys, ["upscale", truncated, "--scale", "2", "-o", out, *model], "truncated", out)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert_fails(capsys, ["upscale", text, "--scale", "2", "-o", out, *model], "cannot read", out)
    floats = tmp_path / "float.tif"
    Image.fromarray(np.zeros((4, 4), np.float32), "F").save(floats)
    assert_fails(capsys, ["upscale", floats, "--scale", "2", "-o", out, *model], "unsupported image mode", out)
    for bad in ("0", "-2", "nan", "inf", "2,0", "abc"):
        with pytest.raises(SystemExit) as exit_info:
            run("upscale", photo, "--scale", bad, "-o", out, *model)
        assert exit_info.value.code == 2 and not out.exists()
        err = capsys.readouterr().err.strip()
        assert "--scale" in err and "\n" not in err, err
    assert_fails(capsys, ["upscale", photo, "--scale", "400", "-o", out, *model], "--allow-huge", out)
    assert_fails(capsys, ["upscale", photo, "--scale", "2", "-o", tmp_path / "nodir" / "x.png", *model], "does not exist", tmp_path / "nodir")
    assert_fails(capsys, ["upscale", photo, "--scale", "2", "-o", out, "--model", "no-such-model"], "unknown model", out)
    assert_fails(capsys, ["upscale", photo, photo, "--scale", "2", "-o", out, *model], "--out-dir", out)


def test_failure_while_writing_leaves_no_file(tmp_path, photo, model_file, capsys, monkeypatch):
    import liifsr.imageio as imageio

    def broken_save(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imageio, "_write_pil", broken_save)
    out = tmp_path / "out.png"
    assert_fails(capsys, ["upscale", photo, "--scale", "2", "-o", out, "--model", model_file], "No space left", out)
    assert list(tmp_path.iterdir()) == [photo]


def test_convert_and_models(tmp_path, capsys):
    assert run("convert", FIXTURES / "tiny-full.pth", tmp_path / "tiny.safetensors") == 0
    assert (tmp_path / "tiny.safetensors").exists()
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    assert_fails(capsys, ["convert", bad, tmp_path / "x.safetensors"], "cannot read LIIF checkpoint", tmp_path / "x.safetensors")
    assert run("models") == 0
    assert "edsr-liif-siren30" in capsys.readouterr().out
