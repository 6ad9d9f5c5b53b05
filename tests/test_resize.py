"""Tests for liifsr.resize: MATLAB imresize, LIIF's PIL downsampler, modcrop."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path
from PIL import Image

from liifsr import resize as rs
from liifsr.metrics import calc_psnr
from liifsr.resize import (
    contributions,
    cubic,
    imresize,
    imresize_uint8,
    liif_downsample,
    modcrop,
    pil_bicubic,
)

FIXTURE = Path(__file__).parent / "fixtures" / "liif-reference" / "cases.npz"
SET5_NAMES = ("baby", "bird", "butterfly", "head", "woman")


# --- independent reference written from MATLAB's formulas ----------------------------


def ref_cubic(t: float) -> float:
    a = abs(t)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


def ref_mirror(j: int, n: int) -> int:
    """1-based index j -> 0-based index into MATLAB's aux = [1..n, n..1]."""
    m = (j - 1) % (2 * n)
    return m if m < n else 2 * n - 1 - m


def ref_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
    """Dense (n_out, n_in) resize matrix, antialiased when scale < 1, looping per tap."""
    stretch = min(scale, 1.0)
    half_width = 2 / stretch
    mat = np.zeros((n_out, n_in))
    for i in range(1, n_out + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        taps = range(math.floor(u - half_width), math.ceil(u + half_width) + 1)
        w = np.array([stretch * ref_cubic(stretch * (u - j)) for j in taps])
        w /= w.sum()
        for j, wj in zip(taps, w):
            mat[i - 1, ref_mirror(j, n_in)] += wj
    return mat


# --- kernel and contributions --------------------------------------------------------


def test_cubic_kernel_values():
    x = torch.tensor([0.0, 0.5, -0.5, 1.0, -1.0, 1.5, 2.0, -2.0, 2.5], dtype=torch.float64)
    expected = torch.tensor([ref_cubic(v) for v in x.tolist()], dtype=torch.float64)
    assert torch.equal(cubic(x), expected)
    # Interpolating at the samples: 1 at 0, 0 at the other integers.
    assert cubic(x)[0] == 1 and cubic(x)[3:5].abs().max() == 0 and cubic(x)[6:8].abs().max() == 0


def test_contributions_scale_one_is_a_single_tap():
    weights, indices = contributions(10, 10, 1.0)
    assert weights.shape == (10, 1)  # five all-zero tap columns dropped
    assert torch.equal(weights, torch.ones(10, 1, dtype=torch.float64))
    assert torch.equal(indices[:, 0], torch.arange(10))


@pytest.mark.parametrize("n_in,n_out,scale", [(8, 4, 0.5), (13, 5, 1 / 3), (7, 18, 2.5), (9, 9, 0.99)])
def test_contributions_match_reference_matrix(n_in, n_out, scale):
    weights, indices = contributions(n_in, n_out, scale)
    assert torch.allclose(weights.sum(dim=1), torch.ones(n_out, dtype=torch.float64))
    assert indices.min() >= 0 and indices.max() < n_in
    dense = torch.zeros(n_out, n_in, dtype=torch.float64)
    dense.scatter_add_(1, indices, weights)
    np.testing.assert_allclose(dense.numpy(), ref_matrix(n_in, n_out, scale), atol=1e-14)


def test_x2_downscale_8_taps_by_hand():
    """Antialiased x2: kernel cubic(x/2)/2 over 8 taps, normalised, mirrored borders."""
    weights, _ = contributions(8, 4, 0.5)
    assert weights.shape == (4, 8)
    # u = 2i - 0.5: distances to the 8 taps are +-0.5, +-1.5, +-2.5, +-3.5.
    raw = np.array([ref_cubic(d / 2) / 2 for d in (3.5, 2.5, 1.5, 0.5, -0.5, -1.5, -2.5, -3.5)])
    for row in weights.numpy():
        np.testing.assert_allclose(row, raw / raw.sum(), atol=1e-15)

    row_signal = torch.arange(1.0, 9.0, dtype=torch.float64) ** 2  # 1, 4, ..., 64
    out = imresize(row_signal[None, :], scale=(1, 0.5))
    padded = [row_signal[ref_mirror(j, 8)].item() for j in range(-2, 12)]  # 1-based -2..11
    expected = [
        sum(w * padded[j + 2] for w, j in zip(raw / raw.sum(), range(2 * i - 4, 2 * i + 4)))
        for i in range(1, 5)
    ]
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-12)


def test_2d_downscale_matches_separable_reference():
    x = torch.rand(8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = imresize(x, 0.5)
    ref = ref_matrix(8, 4, 0.5) @ x.numpy() @ ref_matrix(6, 3, 0.5).T
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)


# --- imresize properties -------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.37, 0.5, 0.8, 1.7, 2.5, 3.3, (0.6, 2.2)])
def test_constant_image_stays_constant(scale):
    x = torch.full((3, 23, 17), 0.6137, dtype=torch.float64)
    out = imresize(x, scale)
    assert torch.allclose(out, torch.full_like(out, 0.6137), atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "scale,size,expected",
    [(0.5, None, (50, 38)), (1 / 3, None, (34, 25)), (2.5, None, (250, 188)), ((0.5, 2), None, (50, 150)),
     (0.5, (41, 30), (41, 30)), (None, (7, 9), (7, 9))],
)
def test_imresize_output_size_follows_matlab(scale, size, expected):
    out = imresize(torch.zeros(100, 75), scale=scale, size=size)
    assert tuple(out.shape) == expected


def test_scale_one_is_identity():
    x = torch.rand(2, 3, 11, 14)
    assert torch.equal(imresize(x, 1.0), x)


def test_batched_equals_per_image():
    x = torch.rand(2, 3, 19, 23, dtype=torch.float64)
    batched = imresize(x, 0.45)
    for n in range(2):
        assert torch.allclose(batched[n], imresize(x[n], 0.45), atol=1e-14)
        for c in range(3):
            assert torch.allclose(batched[n, c], imresize(x[n, c], 0.45), atol=1e-14)


def test_float32_agrees_with_float64():
    x = torch.rand(3, 30, 25, dtype=torch.float64)
    for scale in (0.3, 2.7):
        out32 = imresize(x.float(), scale)
        assert out32.dtype == torch.float32
        assert torch.allclose(out32.double(), imresize(x, scale), atol=1e-5)


def test_upscale_reproduces_linear_ramp_in_interior():
    ramp = torch.arange(20, dtype=torch.float64).expand(5, 20)
    out = imresize(ramp, scale=(1, 2))
    # Output pixel k (0-based) samples input position k / 2 - 0.25.
    expected = torch.arange(40, dtype=torch.float64) / 2 - 0.25
    assert torch.allclose(out[:, 6:-6], expected[6:-6].expand(5, -1), atol=1e-12)
    assert not torch.allclose(out[:, 0], expected[0].expand(5))  # borders are mirrored, not linear


def test_not_clamped():
    x = torch.zeros(16, 16, dtype=torch.float64)
    x[:, 8:] = 1
    out = imresize(x, 2)
    assert out.min() < 0 and out.max() > 1  # bicubic overshoot is kept


def test_smaller_scale_axis_resized_first(monkeypatch):
    order = []
    real = rs._resize_axis

    def spy(x, dim, out_len, scale, antialias):
        order.append(dim)
        return real(x, dim, out_len, scale, antialias)

    monkeypatch.setattr(rs, "_resize_axis", spy)
    x = torch.rand(20, 20)
    imresize(x, (0.5, 0.25))
    imresize(x, (0.25, 0.5))
    imresize(x, 0.5)
    assert order == [-1, -2, -2, -1, -2, -1]


def test_rejects_integer_tensors():
    with pytest.raises(TypeError):
        imresize(torch.zeros(4, 4, dtype=torch.uint8), 0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.rand(2, 3, 31, 27, dtype=torch.float64)
    out = imresize(x.cuda(), 0.37)
    assert out.device.type == "cuda"
    assert torch.allclose(out.cpu(), imresize(x, 0.37), atol=1e-12)


def test_imresize_uint8_rounds_and_clips():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(17, 13, 3), dtype=np.uint8)
    img[:, 6:] = 255  # a hard edge makes the bicubic overshoot past 255
    out = imresize_uint8(img, 1.9)
    assert out.dtype == np.uint8 and out.shape == (33, 25, 3)
    ref = imresize(torch.from_numpy(img.astype(np.float64)).permute(2, 0, 1), 1.9)
    ref = np.floor(ref.clamp(0, 255).numpy() + 0.5).astype(np.uint8).transpose(1, 2, 0)
    assert np.array_equal(out, ref)
    as_tensor = imresize_uint8(torch.from_numpy(img).permute(2, 0, 1), 1.9)
    assert as_tensor.dtype == torch.uint8
    assert np.array_equal(as_tensor.permute(1, 2, 0).numpy(), out)


def test_imresize_uint8_rounds_half_away_from_zero():
    """A step centred on an output pixel gives an exact .5 there (symmetric weights)."""
    img = np.array([[100] * 7 + [101] * 9, [1] * 7 + [2] * 9], dtype=np.uint8)
    exact = imresize(torch.from_numpy(img.astype(np.float64)), scale=(1, 0.5))
    assert exact[0, 3].item() == 100.5 and exact[1, 3].item() == 1.5
    out = imresize_uint8(img, (1, 0.5))
    assert out[0, 3] == 101 and out[1, 3] == 2  # MATLAB's round, not round-half-even


def test_modcrop():
    assert modcrop(np.zeros((101, 77, 3)), 4).shape == (100, 76, 3)
    assert modcrop(np.zeros((101, 77)), 3).shape == (99, 75)
    assert modcrop(torch.zeros(2, 3, 101, 77), 4).shape == (2, 3, 100, 76)


# --- LIIF's PIL downsampler -----------------------------------------------------------


@pytest.mark.parametrize("scale", ["6.0", "3.7"])
def test_liif_downsample_matches_fixture(scale):
    cases = np.load(FIXTURE)
    hr = torch.from_numpy(cases[f"downsample/{scale}/hr"])
    lr_ref = cases[f"downsample/{scale}/lr"]
    # An image a few pixels larger (same LR size) must be cropped back to exactly `hr`.
    padded = torch.nn.functional.pad(hr[None], (0, 3, 0, 2), mode="replicate")[0]
    s = float(scale)
    for source in (hr, padded):
        hr_crop, lr = liif_downsample(source, s)
        assert torch.equal(hr_crop, hr)
        assert lr.dtype == torch.float32 and lr.shape == lr_ref.shape
        assert np.abs(lr.numpy() - lr_ref).max() <= 1e-6


def test_pil_bicubic_truncates_to_uint8():
    img = torch.full((3, 8, 8), 0.999)  # 254.745 -> 254 by truncation (255 if rounded)
    out = pil_bicubic(img, (4, 4))
    assert out.shape == (3, 4, 4)
    assert torch.equal(out, torch.full_like(out, 254 / 255))


def test_pil_bicubic_single_and_odd_channels_agree_with_rgb():
    img = torch.rand(3, 21, 17, generator=torch.Generator().manual_seed(1))
    rgb = pil_bicubic(img, (8, 6))
    assert torch.equal(pil_bicubic(img[:1], (8, 6)), rgb[:1])
    assert torch.equal(pil_bicubic(torch.cat([img, img[:1]]), (8, 6))[:3], rgb)


# --- real-image check against the published bicubic baseline --------------------------


def _set5_bicubic_y_psnr(scale: int) -> float:
    values = []
    for name in SET5_NAMES:
        hr = modcrop(np.asarray(Image.open(shared_path("data", "benchmark", "Set5", "HR", f"{name}.png")).convert("RGB")), scale)
        lr = imresize_uint8(hr, 1 / scale)
        lr_t = torch.from_numpy(lr.astype(np.float64) / 255).permute(2, 0, 1)
        sr = imresize(lr_t, scale).clamp(0, 1)
        sr = torch.round(sr * 255) / 255  # LIIF quantises its outputs
        hr_t = torch.from_numpy(hr.astype(np.float64) / 255).permute(2, 0, 1)
        assert sr.shape == hr_t.shape
        values.append(calc_psnr(sr[None], hr_t[None], dataset="benchmark", scale=scale).item())
    return float(np.mean(values))


@pytest.mark.parametrize("scale,published", [(2, 33.66), (3, 30.39), (4, 28.42)])
def test_set5_bicubic_psnr_matches_published(scale, published):
    assert abs(_set5_bicubic_y_psnr(scale) - published) <= 0.03
