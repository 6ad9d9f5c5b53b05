"""Tests for `liifsr compare`: region decoding, panel contents and the written figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from liifsr import LIIF, ModelConfig, save_model
from liifsr.cli import main
from liifsr.commands.compare import parse_box
from liifsr.compare import (
    CAPTION_HEIGHT,
    FOOTNOTE_HEIGHT,
    MIN_PANEL_HEIGHT,
    PAD,
    Box,
    decode_box,
    downsampled_panels,
    lr_crop_panels,
)
from liifsr.decoding import DecodeOptions
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIFConfig
from liifsr.tiling import upscale_tensor


def tiny_model(global_skip: bool = False) -> LIIF:
    torch.manual_seed(0)
    config = ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16, 16], global_skip=global_skip))
    return LIIF(config).eval()


def synthetic_image(path: Path, height: int = 80, width: int = 96) -> Path:
    y, x = np.mgrid[0:height, 0:width] / 6.0
    rgb = np.stack([np.sin(x + y), np.cos(x - y), np.sin(0.5 * x)], axis=-1) * 0.4 + 0.5
    Image.fromarray(np.rint(rgb * 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("global_skip", [False, True])
def test_decode_box_equals_the_crop_of_the_full_output(global_skip: bool) -> None:
    model = tiny_model(global_skip)
    lr = torch.rand(1, 3, 23, 19)
    out_hw = (92, 71)
    box = Box(x=30, y=7, w=25, h=40)
    full = upscale_tensor(model, lr, out_hw)
    region = decode_box(model, lr, out_hw, box, DecodeOptions(chunk=64))
    assert region.shape == box.crop(full).shape
    # Equal up to fp32 rounding, not to the bit: the region's encoder runs over a smaller
    # window of the input, and oneDNN picks its convolution kernels, and with them the
    # order of the sums, by the shape (3e-8 to 6e-8 apart on AMD Zen 4, equal on Intel
    # with AMX). 1e-6 is about 16 units in the last place of values near 1.
    assert (region - box.crop(full)).abs().max() <= 1e-6
    assert not torch.allclose(region, box.crop(upscale_tensor(model, lr, (92, 72))), atol=1e-3)  # a real comparison


def test_downsampled_panels_show_lr_methods_and_hr_with_psnr() -> None:
    image = torch.rand(3, 64, 48)
    box = Box(8, 16, 24, 20)
    panels = downsampled_panels(image, ["tiny"], {"tiny": tiny_model()}, 4, box)
    assert [p.caption.split("\n")[0] for p in panels] == ["LR input (12x16)", "bicubic", "tiny", "HR"]
    assert panels[0].mark == (2.0, 4.0, 6.0, 5.0)  # the box in LR pixels
    assert all(p.image.shape == (20, 24, 3) for p in panels[1:])
    assert all(p.caption.endswith(" dB") for p in panels[1:3])


def test_lr_crop_panels_upscale_the_box_and_show_no_psnr() -> None:
    image = torch.rand(3, 64, 48)
    panels = lr_crop_panels(image, ["tiny"], {"tiny": tiny_model()}, 2.5, Box(4, 6, 10, 8))
    assert panels[0].image.shape == (64, 48, 3) and panels[0].mark == (4, 6, 10, 8)
    assert panels[1].image.shape == (8, 10, 3)
    assert [p.image.shape for p in panels[2:]] == [(20, 25, 3), (20, 25, 3)]
    assert not any("dB" in p.caption for p in panels)


def test_cli_writes_a_figure_of_the_expected_layout(tmp_path: Path) -> None:
    model_path = tmp_path / "tiny.safetensors"
    save_model(tiny_model(), model_path)
    image = synthetic_image(tmp_path / "img.png")
    out = tmp_path / "fig.png"
    argv = ["compare", str(image), "--models", str(model_path), "--scale", "4", "--box", "8,8,40,32", "-o", str(out), "--device", "cpu"]
    assert main(argv) == 0
    with Image.open(out) as fig:
        width, height = fig.size
    # One row of 4 panels (LR, bicubic, model, HR), each MIN_PANEL_HEIGHT tall, captions below.
    assert height == PAD + MIN_PANEL_HEIGHT + CAPTION_HEIGHT + FOOTNOTE_HEIGHT
    assert 4 * MIN_PANEL_HEIGHT < width < 6 * MIN_PANEL_HEIGHT
    assert not list(tmp_path.glob(".*tmp*"))

    crop_out = tmp_path / "crop.png"
    argv = ["compare", str(image), "--models", str(model_path), "--scale", "8", "--box", "8,8,20,10", "--lr-crop", "-o", str(crop_out)]
    assert main(argv) == 0
    assert crop_out.stat().st_size > 1000


@pytest.mark.parametrize(
    ("box", "message"),
    [("1,2,3", "bad --box"), ("0,0,0,5", "bad --box"), ("80,0,20,20", "does not fit")],
)
def test_cli_bad_boxes(tmp_path: Path, capsys: pytest.CaptureFixture[str], box: str, message: str) -> None:
    image = synthetic_image(tmp_path / "img.png")
    out = tmp_path / "fig.png"
    assert main(["compare", str(image), "--models", "bicubic", "--scale", "4", "--box", box, "-o", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_unknown_model_and_bad_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = synthetic_image(tmp_path / "img.png")
    assert main(["compare", str(image), "--models", "nope", "--box", "0,0,8,8", "-o", str(tmp_path / "f.png")]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["compare", str(image), "--models", "bicubic", "--box", "0,0,8,8", "-o", str(tmp_path / "f.gif")]) == 2
    assert "cannot write figure" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [image]


def test_parse_box() -> None:
    assert parse_box("1, 2,3,4") == Box(1, 2, 3, 4)


# --- degraded inputs (--degrade) -------------------------------------------------------------


def test_a_degradation_reaches_every_panel_and_is_the_same_on_every_run() -> None:
    from liifsr.degrade import apply_steps, image_generator, parse_spec
    from liifsr.resize import liif_downsample

    image = torch.rand(3, 64, 48, generator=torch.Generator().manual_seed(0))
    box, steps, model = Box(8, 16, 24, 20), parse_spec("noise:5,jpeg:75"), {"tiny": tiny_model()}
    clean = downsampled_panels(image, ["tiny"], model, 4, box)
    degraded = downsampled_panels(image, ["tiny"], model, 4, box, steps=steps, image_name="img.png")
    again = downsampled_panels(image, ["tiny"], model, 4, box, steps=steps, image_name="img.png")
    assert degraded[0].caption == "LR input (12x16)\nnoise:5,jpeg:75"
    _, lr = liif_downsample(image, 4)
    expected = apply_steps(lr.unsqueeze(0), steps, image_generator("img.png", 4.0, steps))
    assert np.array_equal(degraded[0].image, expected[0].permute(1, 2, 0).numpy())
    for index in (0, 1, 2):  # the LR input, bicubic's and the model's output from it
        assert not np.array_equal(degraded[index].image, clean[index].image)
        assert np.array_equal(degraded[index].image, again[index].image)
    assert np.array_equal(degraded[3].image, clean[3].image)  # the ground truth stays clean

    crop_clean = lr_crop_panels(image, ["tiny"], model, 2.5, Box(4, 6, 10, 8))
    crop = lr_crop_panels(image, ["tiny"], model, 2.5, Box(4, 6, 10, 8), steps=steps, image_name="img.png")
    assert crop[1].caption == "LR input (10x8)\nnoise:5,jpeg:75" and not np.array_equal(crop[1].image, crop_clean[1].image)


def test_cli_degrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = synthetic_image(tmp_path / "img.png")
    out = tmp_path / "fig.png"
    argv = ["compare", str(image), "--models", "bicubic", "--scale", "4", "--box", "8,8,40,32", "-o", str(out)]
    assert main([*argv, "--degrade", "jpeg:75,blur"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("liifsr: error: unknown degradation 'blur'") and "\n" not in err and not out.exists()
    assert main([*argv, "--degrade", "blur:1.0,jpeg:75"]) == 0
    assert out.stat().st_size > 1000
