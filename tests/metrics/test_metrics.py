"""Tests for liifsr.metrics: LIIF's calc_psnr, the psnr wrapper, Y conversion, SSIM, the edge width and slope."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from liifsr.imageio import sample_image
from liifsr.metrics import calc_psnr, edge_reach, edge_slope, edge_width, filter_valid, gaussian_window, psnr, rgb_to_y, ssim
from liifsr.resize import imresize, modcrop

FIXTURE = Path(__file__).parents[1] / "fixtures" / "liif-reference" / "cases.npz"

# MATLAB rgb2ycbcr / LIIF coefficients (published constants).
Y_COEFFS = np.array([65.738, 129.057, 25.064]) / 256
C1 = (0.01 * 255) ** 2


@pytest.fixture(scope="module")
def cases():
    return np.load(FIXTURE)


@pytest.mark.parametrize("dataset", ["benchmark", "div2k"])
@pytest.mark.parametrize("scale", [2, 3, 4, 6])
def test_calc_psnr_matches_liif(cases, dataset, scale):
    pred = torch.from_numpy(cases["psnr/pred"])
    gt = torch.from_numpy(cases["psnr/gt"])
    expected = float(cases[f"psnr/{dataset}-{scale}"])
    assert abs(calc_psnr(pred, gt, dataset=dataset, scale=scale).item() - expected) <= 1e-4
    assert abs(psnr(pred, gt, protocol=dataset, scale=scale) - expected) <= 1e-4


def test_calc_psnr_plain_matches_liif(cases):
    pred = torch.from_numpy(cases["psnr/pred"])
    gt = torch.from_numpy(cases["psnr/gt"])
    expected = float(cases["psnr/plain"])
    assert abs(calc_psnr(pred, gt).item() - expected) <= 1e-4
    assert abs(psnr(pred, gt, protocol="plain") - expected) <= 1e-4


def test_psnr_by_hand():
    hr = torch.full((1, 3, 20, 20), 0.5, dtype=torch.float64)
    sr = hr.clone()
    sr[:, 1] += 0.1  # error only in G
    assert math.isclose(psnr(sr, hr, "plain"), -10 * math.log10(0.01 / 3), rel_tol=1e-12)
    y_err = 0.1 * Y_COEFFS[1]
    assert math.isclose(psnr(sr, hr, "benchmark", 2), -10 * math.log10(y_err**2), rel_tol=1e-12)
    # rgb_range divides the difference.
    assert math.isclose(
        calc_psnr(sr * 255, hr * 255, rgb_range=255).item(), psnr(sr, hr, "plain"), rel_tol=1e-12
    )


@pytest.mark.parametrize("protocol,scale,shave", [("benchmark", 3, 3), ("div2k", 2, 8)])
def test_psnr_shaves_border(protocol, scale, shave):
    hr = torch.zeros(1, 3, 30, 30, dtype=torch.float64)
    sr = hr + 0.01
    sr[..., :shave, :] = 1.0  # a huge error confined to the shaved band
    sr[..., -shave:] = 1.0
    expected = -10 * math.log10((0.01 * Y_COEFFS.sum()) ** 2) if protocol == "benchmark" else 40.0
    assert math.isclose(psnr(sr, hr, protocol, scale), expected, rel_tol=1e-9)
    assert psnr(sr, hr, "plain") < 20


def test_rgb_protocol_of_training_validation_shaves_scale_on_rgb():
    hr = torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    noisy = hr.clone()
    noisy[..., :, 0:2] += 0.5  # only in the 2-pixel border shaved at x2
    assert psnr(noisy, hr, "rgb", 2) == float("inf")
    assert psnr(noisy, hr, "rgb", 1) < 30
    sr = hr.clone()
    sr[:, 1] += 0.1  # error only in G: RGB PSNR, not Y
    assert math.isclose(psnr(sr, hr, "rgb", 2), -10 * math.log10(0.01 / 3), rel_tol=1e-5)


def test_rejects_unknown_protocol_and_fractional_shave():
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(ValueError):
        psnr(x, x, "set5", 2)
    with pytest.raises(ValueError):
        calc_psnr(x, x, dataset="benchmark", scale=2.5)


def test_rgb_to_y():
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    assert torch.allclose(rgb_to_y(white), torch.full((1, 1, 2, 2), 235 / 255), atol=1e-5)
    assert torch.allclose(rgb_to_y(black), torch.full((1, 1, 2, 2), 16 / 255), atol=1e-7)
    assert torch.equal(rgb_to_y(black, offset=False), torch.zeros(1, 1, 2, 2))
    rgb = torch.tensor([0.2, 0.7, 0.4], dtype=torch.float64).view(1, 3, 1, 1)
    assert math.isclose(rgb_to_y(rgb, offset=False).item(), float(Y_COEFFS @ [0.2, 0.7, 0.4]), rel_tol=1e-12)


def test_gaussian_window():
    w = gaussian_window()
    assert w.shape == (11, 11)
    assert math.isclose(w.sum().item(), 1.0, rel_tol=1e-12)
    assert math.isclose((w[5, 6] / w[5, 5]).item(), math.exp(-1 / (2 * 1.5**2)), rel_tol=1e-12)


@pytest.mark.parametrize("block", [4, 7, 128])
def test_filter_valid_is_the_literal_sliding_sum(block):
    """Output column j = sum_i taps[i] * t[..., j + i], whatever the blocks' split of the columns."""
    generator = torch.Generator().manual_seed(0)
    t = torch.rand(2, 3, 5, 23, dtype=torch.float64, generator=generator)
    taps = torch.rand(6, dtype=torch.float64, generator=generator)
    literal = sum(taps[i] * t[..., i : i + 18] for i in range(6))
    torch.testing.assert_close(filter_valid(t, taps, block), literal, rtol=1e-14, atol=1e-14)


def test_ssim_identity_is_one():
    x = torch.rand(2, 3, 40, 36, generator=torch.Generator().manual_seed(0))
    assert math.isclose(ssim(x, x, 4, "benchmark"), 1.0, rel_tol=1e-12)
    assert math.isclose(ssim(x, x), 1.0, rel_tol=1e-12)


def test_ssim_decreases_with_noise():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 48, 48, generator=gen, dtype=torch.float64)
    noise = torch.randn(1, 3, 48, 48, generator=gen, dtype=torch.float64)
    values = [ssim((x + sigma * noise).clamp(0, 1), x, 2, "benchmark") for sigma in (0.01, 0.05, 0.1, 0.3)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[0] < 1


@pytest.mark.parametrize("a,b", [(0.2, 0.3), (0.5, 0.9), (0.0, 1.0)])
def test_ssim_constant_images_is_luminance_term(a, b):
    """Zero variance: the contrast-structure term is C2 / C2, SSIM = luminance term."""
    mu1 = 255 * (16 / 255 + a * Y_COEFFS.sum())
    mu2 = 255 * (16 / 255 + b * Y_COEFFS.sum())
    expected = (2 * mu1 * mu2 + C1) / (mu1**2 + mu2**2 + C1)
    x = torch.full((1, 3, 20, 20), a, dtype=torch.float64)
    y = torch.full((1, 3, 20, 20), b, dtype=torch.float64)
    assert math.isclose(ssim(x, y), expected, rel_tol=1e-9)


def test_ssim_single_channel_has_no_offset():
    x = torch.full((1, 1, 16, 16), 0.2, dtype=torch.float64)
    y = torch.full((1, 1, 16, 16), 0.4, dtype=torch.float64)
    expected = (2 * 51 * 102 + C1) / (51**2 + 102**2 + C1)
    assert math.isclose(ssim(x, y), expected, rel_tol=1e-9)


def test_ssim_shaves_border():
    gen = torch.Generator().manual_seed(1)
    hr = torch.rand(1, 3, 30, 30, generator=gen)
    sr = hr.clone()
    sr[..., :4, :] = 0  # damage only the band that x4 benchmark shaves
    assert math.isclose(ssim(sr, hr, 4, "benchmark"), 1.0, rel_tol=1e-12)
    assert ssim(sr, hr, 4, "plain") < 0.99


def test_ssim_too_small_after_shave():
    x = torch.rand(1, 3, 20, 20)
    with pytest.raises(ValueError):
        ssim(x, x, 4, "div2k")


def test_ssim_single_window_by_hand():
    """An 11x11 image has exactly one 'valid' window: compute Wang et al.'s formula directly."""
    rng = np.random.default_rng(3)
    a, b = rng.random((11, 11)), rng.random((11, 11))
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    x, y = 255 * a, 255 * b
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    cov = (w * (x - mx) * (y - my)).sum()
    c2 = (0.03 * 255) ** 2
    expected = (2 * mx * my + C1) * (2 * cov + c2) / ((mx**2 + my**2 + C1) * (vx + vy + c2))
    got = ssim(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None])
    assert math.isclose(got, expected, rel_tol=1e-9)


# --- against an outside implementation -------------------------------------------------


def matlab_y(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr's Y for uint8-range RGB (H, W, 3) in [0, 1]: 16 + (65.481 R + 128.553 G + 24.966 B) / 255 * 255."""
    return 16 + rgb @ np.array([65.481, 128.553, 24.966])


@pytest.mark.parametrize("scale,protocol", [(2, "plain"), (2, "benchmark"), (3, "benchmark"), (4, "div2k")])
def test_ssim_matches_scikit_image_on_real_images(scale, protocol):
    """skimage's structural_similarity with Wang et al.'s settings, on Y of the bundled photograph
    against its bicubic down-and-up reconstruction, on two crops."""
    photo = np.asarray(Image.open(sample_image()).convert("RGB"), dtype=np.float64) / 255
    crops = [modcrop(photo[40:200, 100:292], 12), modcrop(photo[300:480, 260:500], 12)]
    expected, hrs, srs = [], [], []
    for hr in crops:
        hr_t = torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1)))
        sr = imresize(imresize(hr_t, 1 / scale), scale).clamp(0, 1).numpy().transpose(1, 2, 0)
        shave = {"plain": 0, "benchmark": scale, "div2k": scale + 6}[protocol]
        window = (slice(shave, -shave or None), slice(shave, -shave or None))
        expected.append(structural_similarity(
            matlab_y(hr)[window], matlab_y(sr)[window],
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
        ))
        hrs.append(hr_t)
        srs.append(torch.from_numpy(np.ascontiguousarray(sr.transpose(2, 0, 1))))
    assert 0.5 < min(expected) < max(expected) < 0.99  # real, imperfect reconstructions
    for sr, hr, value in zip(srs, hrs, expected):
        # 1e-6: LIIF's Y coefficients (65.738 / 256, ...) and MATLAB's differ in the 6th digit.
        assert ssim(sr[None], hr[None], scale, protocol) == pytest.approx(value, abs=1e-6)


# --- edge width ----------------------------------------------------------------------------

# The 10-90 % rise of an erf edge (a step blurred by a Gaussian of sigma s) spans
# s sqrt(2) (erfinv(0.8) - erfinv(-0.8)) = 2.563 s.
ERF_10_90 = 2 * math.sqrt(2) * float(torch.special.erfinv(torch.tensor(0.8, dtype=torch.float64)))


def erf_edge(sigma: float, angle: float, size: int = 64, low: float = 0.2, high: float = 0.8) -> torch.Tensor:
    """(1, 3, size, size) grey image: a straight edge through (size / 2 + 0.3, size / 2) with
    its normal at `angle` degrees, from `low` to `high`, blurred by a Gaussian of `sigma`
    pixels (each pixel the exact blurred step at its centre)."""
    y, x = torch.meshgrid(*(torch.arange(size, dtype=torch.float64),) * 2, indexing="ij")
    across = (x - size / 2 - 0.3) * math.cos(math.radians(angle)) + (y - size / 2) * math.sin(math.radians(angle))
    values = low + (high - low) * 0.5 * (1 + torch.special.erf(across / (sigma * math.sqrt(2))))
    return values.expand(1, 3, size, size).clone()


def test_the_erf_10_90_constant():
    assert ERF_10_90 == pytest.approx(2.563, abs=5e-4)


@pytest.mark.parametrize("angle", [0, 17, 45, 70, 180])
@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 3.0])
def test_edge_width_recovers_the_width_of_blurred_steps(sigma, angle):
    """Known widths, at any orientation (180: the edge falls from left to right): within 5 %
    (measured: at most 2.2 %, at sigma 1) on the profiles across a near-sharp ground truth."""
    truth = erf_edge(0.5, angle)
    assert edge_width(erf_edge(sigma, angle), truth, 4, "benchmark") == pytest.approx(ERF_10_90 * sigma, rel=0.05)


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_edge_width_of_an_8_bit_output(sigma):
    truth = erf_edge(0.5, 30)
    output = (erf_edge(sigma, 30) * 255).round() / 255
    assert edge_width(output, truth, 4, "benchmark") == pytest.approx(ERF_10_90 * sigma, rel=0.05)


def test_edge_width_ignores_contrast_and_polarity():
    truth, output = erf_edge(0.5, 20), erf_edge(2.0, 20)
    width = edge_width(output, truth)
    assert edge_width(1 - output, 1 - truth) == pytest.approx(width, rel=1e-9)
    faint_truth, faint = (0.45 + 0.2 * (x - 0.2) for x in (truth, output))  # a tenth of the contrast
    assert edge_width(faint, faint_truth) == pytest.approx(width, rel=0.02)


def test_a_lost_edge_is_wider_than_any_profile_and_no_edge_is_none():
    truth = erf_edge(0.5, 10)
    flat = torch.full_like(truth, 0.5)
    assert edge_width(flat, truth, 2, "benchmark") == 2 * edge_reach(2)
    assert edge_width(truth, flat) is None
    assert edge_reach(2) == 8 and edge_reach(30) == 90


def test_edge_width_grows_with_blur_on_a_photograph():
    """The edges of a real image, blurred by Gaussians of growing sigma (the degradation
    module's kernels): each blur measures wider than the last and than the photograph."""
    from liifsr.degrade import blur, gaussian_kernel

    photo = torch.from_numpy(np.array(Image.open(sample_image()).convert("RGB"))[100:260, 150:310]).permute(2, 0, 1)
    truth = photo.double().div(255)[None]
    widths = [edge_width(truth, truth, 2, "benchmark")]
    widths += [edge_width(blur(truth[0], gaussian_kernel(s, s))[None], truth, 2, "benchmark") for s in (1.0, 2.0, 3.0)]
    assert all(a < b for a, b in zip(widths, widths[1:])), widths
    assert widths[-1] > ERF_10_90 * 3 * 0.9  # a 3-pixel blur spreads the photograph's edges over about 7.7 pixels


def test_edge_width_checks_its_inputs():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="shape"):
        edge_width(x, x[..., :15])
    with pytest.raises(ValueError, match="one image"):
        edge_width(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))


@pytest.mark.parametrize("angle", [0, 17, 45, 70, 180])
@pytest.mark.parametrize("sigma", [1.5, 2.0, 3.0])
def test_edge_slope_recovers_the_ratio_of_blurs(sigma, angle):
    """A step blurred by sigma s against one blurred by t has slopes in the ratio t / s:
    recovered within 10 % at any orientation."""
    assert edge_slope(erf_edge(sigma, angle), erf_edge(1.0, angle), 4, "benchmark") == pytest.approx(1 / sigma, rel=0.1)


def test_edge_slope_has_no_ceiling_where_the_width_has_one():
    """At x30 two blurs too wide for the width's reach (under half the rise within it) both
    score the lost-edge width, while their slopes still differ in the ratio of the blurs."""
    truth = erf_edge(1.0, 30, size=200)
    blurry, blurrier = erf_edge(160.0, 30, size=200), erf_edge(320.0, 30, size=200)
    assert edge_width(blurry, truth, 30, "plain") == edge_width(blurrier, truth, 30, "plain") == 2 * edge_reach(30)
    ratio = edge_slope(blurrier, truth, 30, "plain") / edge_slope(blurry, truth, 30, "plain")
    assert ratio == pytest.approx(0.5, rel=0.1)


def test_edge_slope_of_the_truth_is_one_and_of_a_flat_output_zero():
    truth = erf_edge(1.0, 20)
    assert edge_slope(truth, truth) == pytest.approx(1.0, abs=1e-12)
    assert edge_slope(torch.full_like(truth, 0.5), truth) == pytest.approx(0.0, abs=1e-12)
    assert edge_slope(truth, torch.full_like(truth, 0.5)) is None
