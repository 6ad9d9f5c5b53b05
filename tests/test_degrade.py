"""Synthetic degradations (liifsr.degrade) and their place in the training sampler."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from liifsr.config import ConfigError, load_yaml
from liifsr.data import DataConfig, ImageFolder, LIIFTrainSet, make_sample, make_train_loader, sample_generator
from liifsr.degrade import (
    BlurConfig,
    DegradeConfig,
    DegradeError,
    JpegConfig,
    NoiseConfig,
    Step,
    apply_steps,
    blur,
    check_degrade_config,
    degrade_patch,
    downsample,
    gaussian_kernel,
    gaussian_noise,
    image_generator,
    jpeg,
    parse_spec,
    poisson_noise,
    spec_text,
)
from liifsr.resize import resize_lr

PHOTO = DegradeConfig(kernels=["bicubic", "bilinear", "area"], second_order=0.3, blur=BlurConfig(prob=0.4),
                      noise=NoiseConfig(prob=0.5, poisson=0.2), jpeg=JpegConfig(prob=0.5))


def smooth_image(h: int = 40, w: int = 40, seed: int = 0) -> torch.Tensor:
    """A float (3, h, w) image in [0.2, 0.8] with some structure."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / 7.0
    planes = [0.5 + 0.3 * np.sin(x * (c + 1) + y * rng.uniform(0.5, 1.5)) for c in range(3)]
    return torch.from_numpy(np.stack(planes)).float()


# --- the stages -----------------------------------------------------------------------


def test_gaussian_kernel_is_the_formula():
    kernel = gaussian_kernel(1.0, 2.0, angle=0.3)
    radius = kernel.shape[-1] // 2
    assert radius == 6 and math.isclose(float(kernel.sum()), 1.0, rel_tol=1e-6)
    y, x = 1.0, -2.0  # one tap, by the literal formula: rotate (x, y) by 0.3 into the kernel's axes
    u, v = math.cos(0.3) * x + math.sin(0.3) * y, -math.sin(0.3) * x + math.cos(0.3) * y
    grid = torch.arange(-radius, radius + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    uu, vv = math.cos(0.3) * xx + math.sin(0.3) * yy, -math.sin(0.3) * xx + math.cos(0.3) * yy
    total = torch.exp(-0.5 * ((uu / 2.0) ** 2 + (vv / 1.0) ** 2)).sum()
    expected = math.exp(-0.5 * ((u / 2.0) ** 2 + (v / 1.0) ** 2)) / float(total)
    assert math.isclose(float(kernel[radius + 1, radius - 2]), expected, rel_tol=1e-5)


def test_isotropic_kernel_is_symmetric_and_blur_spreads_as_its_sigma():
    kernel = gaussian_kernel(1.5, 1.5)
    assert torch.allclose(kernel, kernel.t()) and torch.allclose(kernel, kernel.flip(0))
    impulse = torch.zeros(3, 31, 31)
    impulse[:, 15, 15] = 1
    spread = blur(impulse, kernel)[0]
    rows = torch.arange(31).float() - 15
    variance = float((spread.sum(1) * rows**2).sum())
    assert math.isclose(variance, 1.5**2, rel_tol=0.02)  # the discrete Gaussian's variance


def test_blur_keeps_a_constant_image_constant():
    image = torch.full((3, 20, 24), 0.37)
    assert torch.allclose(blur(image, gaussian_kernel(2.0, 0.7, 1.0)), image, atol=1e-6)


def test_gaussian_noise_has_its_sigma_and_grey_noise_is_the_same_in_every_channel():
    image = torch.full((3, 200, 200), 0.5)
    noisy = gaussian_noise(image, 10.0, gray=False, generator=torch.Generator().manual_seed(0))
    assert math.isclose(float((noisy - image).std()), 10 / 255, rel_tol=0.02)
    grey = gaussian_noise(image, 10.0, gray=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    assert not torch.equal(noisy[0], noisy[1])


def test_poisson_noise_grows_with_brightness():
    generator = torch.Generator().manual_seed(0)
    dark, bright = torch.full((3, 200, 200), 0.05), torch.full((3, 200, 200), 0.8)
    spread = [float((poisson_noise(x, 1.0, generator) - x).std()) for x in (dark, bright)]
    # Poisson(255 x) / 255 has a deviation of sqrt(x / 255)
    assert math.isclose(spread[0], math.sqrt(0.05 / 255), rel_tol=0.05)
    assert math.isclose(spread[1], math.sqrt(0.8 / 255), rel_tol=0.05)


def test_jpeg_is_pillows_round_trip():
    image = smooth_image()
    pixels = (image * 255 + 0.5).floor().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=30)
    expected = torch.from_numpy(np.asarray(Image.open(buffer)).copy()).permute(2, 0, 1).float() / 255
    assert torch.equal(jpeg(image, 30), expected)
    assert float((jpeg(image, 30) - image).abs().mean()) > float((jpeg(image, 90) - image).abs().mean())


@pytest.mark.parametrize("kernel", ["bicubic", "bilinear", "area"])
def test_downsampling_kernels_keep_a_constant_image_and_give_8_bit_values(kernel):
    hr = torch.full((3, 96, 96), 100 / 255)
    lr = downsample(hr, (48, 48), kernel, "pil")
    assert lr.shape == (3, 48, 48) and torch.allclose(lr, hr[:, :48, :48], atol=1 / 255)
    assert torch.equal(lr * 255, (lr * 255).round())


def test_bicubic_downsampling_is_the_samplers_own():
    hr = smooth_image(96, 96)
    assert torch.equal(downsample(hr, (48, 48), "bicubic", "matlab"), resize_lr(hr, (48, 48), "matlab"))


# --- the training sampler ---------------------------------------------------------------


def test_degradations_change_only_the_lr_patch():
    image = (smooth_image(200, 200) * 255).to(torch.uint8)
    clean = make_sample(image, DataConfig(), sample_generator(0, 1, 7))
    config = DataConfig(degrade=DegradeConfig(noise=NoiseConfig(prob=1.0, sigma=[20.0, 20.0])))
    degraded = make_sample(image, config, sample_generator(0, 1, 7), sample_generator(0, 1, 7, stream=1))
    for key in ("coord", "cell", "gt"):  # the targets and queries stay as they were
        assert torch.equal(clean[key], degraded[key])
    difference = degraded["inp"] - clean["inp"]
    assert 15 / 255 < float(difference.std()) < 25 / 255


def test_all_probabilities_zero_and_bicubic_is_the_clean_sampler():
    assert not DegradeConfig().enabled
    assert DegradeConfig(kernels=["area"]).enabled and PHOTO.enabled


def test_a_model_card_names_what_the_inputs_went_through():
    assert DegradeConfig().describe() == "clean bicubic LR inputs"
    text = PHOTO.describe()
    assert "bicubic/bilinear/area" in text and "JPEG p 0.5 (quality 40-95)" in text and "twice with p 0.3" in text
    assert text.index("blur") < text.index("noise") < text.index("JPEG")


def test_a_degraded_patch_is_determined_by_its_generator():
    hr = smooth_image(120, 120)
    patches = [degrade_patch(hr, (48, 48), PHOTO, "pil", torch.Generator().manual_seed(seed)) for seed in (3, 3, 4)]
    assert torch.equal(patches[0], patches[1]) and not torch.equal(patches[0], patches[2])
    assert torch.equal(patches[0] * 255, (patches[0] * 255).round())  # an 8-bit image, as a file holds


def test_every_stage_and_kernel_is_drawn_over_many_samples():
    hr = smooth_image(96, 96)
    clean = resize_lr(hr, (48, 48), "pil")
    changed = sum(not torch.equal(degrade_patch(hr, (48, 48), PHOTO, "pil", torch.Generator().manual_seed(s)), clean)
                  for s in range(40))
    assert 25 <= changed < 40  # about one patch in seven stays clean


def write_folder(tmp_path, count: int) -> ImageFolder:
    paths = []
    for seed in range(count):
        paths.append(tmp_path / f"{seed}.png")
        pixels = (smooth_image(64, 64, seed) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(np.ascontiguousarray(pixels)).save(paths[-1])
    return ImageFolder(paths, cache=True)


def test_degraded_batches_are_identical_across_runs_and_workers(tmp_path):
    images = write_folder(tmp_path, 4)
    config = DataConfig(patch_size=16, sample_q=32, repeat=2, degrade=PHOTO)

    def first_batch(config: DataConfig, workers: int) -> dict[str, torch.Tensor]:
        loader = make_train_loader(LIIFTrainSet(images, config, seed=0), batch_size=4, num_workers=workers)
        loader.sampler.set_epoch(1)
        return next(iter(loader))

    runs = [first_batch(config, 0), first_batch(config, 0), first_batch(config, 2)]
    for other in runs[1:]:
        assert all(torch.equal(runs[0][key], other[key]) for key in runs[0])
    clean = first_batch(DataConfig(patch_size=16, sample_q=32, repeat=2), 0)
    assert not torch.equal(clean["inp"], runs[0]["inp"]) and torch.equal(clean["gt"], runs[0]["gt"])


def test_the_yaml_maps_onto_the_config(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("train_dirs: [x]\ndegrade:\n  kernels: [area]\n  order: [jpeg, blur]\n"
                    "  jpeg: {prob: 0.5, quality: [50, 60]}\n")
    config = load_yaml(DataConfig, path)
    assert config.degrade.kernels == ["area"] and config.degrade.order == ["jpeg", "blur"]
    assert config.degrade.jpeg == JpegConfig(prob=0.5, quality=[50, 60])
    path.write_text("train_dirs: [x]\ndegrade: {jpeg: {probability: 0.5}}\n")
    with pytest.raises(ConfigError, match="probability"):
        load_yaml(DataConfig, path)


@pytest.mark.parametrize("config, message", [
    (DegradeConfig(kernels=["lanczos"]), "kernels"),
    (DegradeConfig(kernels=[]), "kernels"),
    (DegradeConfig(order=["blur", "blur"]), "order"),
    (DegradeConfig(order=["sharpen"]), "order"),
    (DegradeConfig(second_order=1.5), "second_order"),
    (DegradeConfig(blur=BlurConfig(prob=float("nan"))), "blur.prob"),
    (DegradeConfig(blur=BlurConfig(sigma=[2.0, 1.0])), "blur.sigma"),
    (DegradeConfig(noise=NoiseConfig(sigma=[1.0])), "noise.sigma"),
    (DegradeConfig(jpeg=JpegConfig(quality=[0, 90])), "jpeg.quality"),
])
def test_bad_settings_are_refused_naming_the_key(config, message):
    with pytest.raises(DegradeError, match=f"data.degrade.{message}"):
        check_degrade_config(config)


# --- evaluation chains --------------------------------------------------------------------


def test_specs_parse_in_order_and_print_canonically():
    steps = parse_spec("blur:1.2, noise:5,jpeg:85")
    assert steps == (Step("blur", 1.2), Step("noise", 5.0), Step("jpeg", 85.0))
    assert spec_text(steps) == "blur:1.2,noise:5,jpeg:85" and spec_text(()) == "clean"


@pytest.mark.parametrize("text", ["sharpen:2", "jpeg", "jpeg:abc", "jpeg:75.5", "jpeg:100", "noise:-1", "blur:9", ""])
def test_bad_specs_are_one_line_errors(text):
    with pytest.raises(DegradeError) as error:
        parse_spec(text)
    assert "\n" not in str(error.value)


def test_a_chain_is_deterministic_per_image_and_applies_its_steps_in_order():
    lr = smooth_image(32, 32).unsqueeze(0)
    steps = parse_spec("noise:5,jpeg:85")
    first = apply_steps(lr, steps, image_generator("a.png", 4.0, steps))
    assert torch.equal(first, apply_steps(lr, steps, image_generator("a.png", 4.0, steps)))
    assert not torch.equal(first, apply_steps(lr, steps, image_generator("b.png", 4.0, steps)))
    expected = jpeg(gaussian_noise(lr[0], 5.0, False, image_generator("a.png", 4.0, steps)), 85)
    assert torch.equal(first[0], expected)


def test_grey_images_stay_grey():
    lr = smooth_image(32, 32)[:1]
    steps = parse_spec("blur:1,gray:3,jpeg:70")
    out = apply_steps(lr, steps, image_generator("g.png", 2.0, steps))
    assert out.shape == lr.shape and float((out - lr).abs().mean()) > 0
