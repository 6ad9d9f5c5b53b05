"""PSNR and SSIM under the evaluation protocols LIIF's numbers are reported with.

Protocols (``shave`` pixels are dropped from every border before averaging):

* ``'benchmark'`` (Set5, Set14, B100, Urban100): Y channel, ``shave = scale``;
* ``'div2k'`` (DIV2K validation): RGB for PSNR, ``shave = scale + 6``;
* ``'rgb'`` (validation during training): RGB for PSNR, ``shave = scale``;
* ``'plain'``: no shave; RGB for PSNR.

SSIM is always computed on Y (the usual SR convention); only the shave follows the
protocol.

Y uses ITU-R BT.601 as in MATLAB's ``rgb2ycbcr``: for RGB in [0, 1],
``Y = 16/255 + (65.738 R + 129.057 G + 25.064 B) / 256`` (65.738 / 256 = 65.481 / 255,
so these are MATLAB's coefficients, written the way LIIF and EDSR write them).
PSNR works on differences, where the offset cancels, so it never adds it; SSIM adds
it so that Y matches MATLAB's (it moves both means by the same amount, which changes
the luminance term's value slightly, as in the reference implementations). Y is not
rounded to integers.
"""

from __future__ import annotations

import torch

# BT.601 luma coefficients for RGB in [0, 1] -> Y in [0, 1], as in LIIF's calc_psnr.
_Y_COEFFS = (65.738 / 256, 129.057 / 256, 25.064 / 256)
_Y_OFFSET = 16 / 255

PROTOCOLS = ("benchmark", "div2k", "rgb", "plain")

# Wang et al. 2004 constants and window, for images in [0, 255].
_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2
SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5


def rgb_to_y(x: torch.Tensor, offset: bool = True) -> torch.Tensor:
    """BT.601 luma of an (N, 3, H, W) RGB tensor in [0, 1], returned as (N, 1, H, W).

    With ``offset`` Y lies in [16/255, 235/255] like MATLAB's ``rgb2ycbcr``; without
    it the map is linear, which is what PSNR applies to the difference ``sr - hr``.
    """
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W), got {tuple(x.shape)}")
    coeffs = x.new_tensor(_Y_COEFFS).view(1, 3, 1, 1)
    y = (x * coeffs).sum(dim=1, keepdim=True)
    return y + _Y_OFFSET if offset else y


def shave_for(protocol: str, scale: float) -> int:
    """Border width each protocol ignores (LIIF's ``calc_psnr`` rule, plus 'rgb')."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if protocol == "plain":
        return 0
    if scale != int(scale):
        raise ValueError(f"protocol '{protocol}' needs an integer scale, got {scale}")
    return int(scale) + 6 if protocol == "div2k" else int(scale)


def _shave(x: torch.Tensor, shave: int) -> torch.Tensor:
    return x[..., shave:-shave, shave:-shave] if shave > 0 else x


def calc_psnr(
    sr: torch.Tensor,
    hr: torch.Tensor,
    dataset: str | None = None,
    scale: float = 1,
    rgb_range: float = 1,
) -> torch.Tensor:
    """LIIF's ``utils.calc_psnr``, same arguments and arithmetic; returns a 0-d tensor.

    ``sr`` and ``hr`` are (N, C, H, W). ``dataset`` is ``'benchmark'`` (Y channel when
    C = 3, shave = scale), ``'div2k'`` (RGB, shave = scale + 6), ``None`` (RGB, no
    shave) or our ``'rgb'`` (RGB, shave = scale). The MSE is averaged over the whole
    batch, as in LIIF.
    """
    if sr.shape != hr.shape:
        raise ValueError(f"shape mismatch: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    protocol = dataset or "plain"
    diff = (sr - hr) / rgb_range
    shave = shave_for(protocol, scale)
    if protocol == "benchmark" and diff.shape[1] == 3:
        diff = rgb_to_y(diff, offset=False)
    mse = _shave(diff, shave).pow(2).mean()
    return -10 * torch.log10(mse)


def psnr(
    sr: torch.Tensor, hr: torch.Tensor, protocol: str = "plain", scale: float = 1
) -> float:
    """PSNR in dB for images in [0, 1] under a named protocol (see the module docstring)
    as a float; the arithmetic is :func:`calc_psnr`'s."""
    return float(calc_psnr(sr, hr, dataset=None if protocol == "plain" else protocol, scale=scale))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = _SSIM_SIGMA) -> torch.Tensor:
    """Normalised 2-D Gaussian (MATLAB ``fspecial('gaussian', size, sigma)``), float64."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def banded_matrix(taps: torch.Tensor, columns: int) -> torch.Tensor:
    """(columns + k - 1, columns) matrix M with M[j + i, j] = taps[i]: x @ M correlates
    each row of x with the k taps ('valid' filtering)."""
    k = len(taps)
    j = torch.arange(columns, device=taps.device)
    matrix = taps.new_zeros(columns + k - 1, columns)
    for i in range(k):
        matrix[j + i, j] = taps[i]
    return matrix


def filter_valid(t: torch.Tensor, taps: torch.Tensor, block: int = 128) -> torch.Tensor:
    """'Valid' 1-D filtering (correlation) of the last dimension of `t` with `taps`.

    Done as products with a banded matrix, `block` output columns at a time: a float64
    matrix multiply runs several times faster on a CPU than a float64 convolution, which
    PyTorch computes by unfolding."""
    k = len(taps)
    out_width = t.shape[-1] - k + 1
    matrix = banded_matrix(taps, block)
    out = t.new_empty(*t.shape[:-1], out_width)
    for start in range(0, out_width, block):
        width = min(block, out_width - start)
        out[..., start : start + width] = t[..., start : start + width + k - 1] @ matrix[: width + k - 1, :width]
    return out


def gaussian_filter_valid(t: torch.Tensor) -> torch.Tensor:
    """SSIM's 11x11 Gaussian over the last two dimensions, 'valid' part only. The Gaussian
    is separable: a 1-D pass along each dimension equals the 2-D filter."""
    taps = gaussian_window().sum(dim=1).to(t.device)
    return filter_valid(filter_valid(t, taps).transpose(-1, -2), taps).transpose(-1, -2)


def _luma_255(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> float64 (N, 1, H, W) Y (or the single channel) in [0, 255]."""
    x = x.to(torch.float64)
    if x.shape[1] == 3:
        x = rgb_to_y(x, offset=True)
    elif x.shape[1] != 1:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    return x * 255


def ssim(
    sr: torch.Tensor, hr: torch.Tensor, scale: float = 1, protocol: str = "plain"
) -> float:
    """Mean SSIM (Wang et al. 2004) on Y, for (N, C, H, W) images in [0, 1].

    Y is taken in [0, 255] (with MATLAB's 16 offset) in float64; C1 = (0.01 * 255)^2,
    C2 = (0.03 * 255)^2; local statistics come from an 11x11 Gaussian window with
    sigma 1.5 and 'valid' filtering, after shaving the protocol's border. The SSIM map
    is averaged over all images of the batch.
    """
    if sr.shape != hr.shape or sr.dim() != 4:
        raise ValueError(f"expected equal (N, C, H, W) shapes, got {tuple(sr.shape)}, {tuple(hr.shape)}")
    shave = shave_for(protocol, scale)
    x = _shave(_luma_255(sr), shave)
    y = _shave(_luma_255(hr), shave)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"image {tuple(x.shape[-2:])} after shaving is smaller than the SSIM window")

    mu_x, mu_y, xx, yy, xy = gaussian_filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1)).unbind(dim=1)
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + _SSIM_C1) * (2 * cov + _SSIM_C2)) / (
        (mu_x**2 + mu_y**2 + _SSIM_C1) * (var_x + var_y + _SSIM_C2)
    )
    return float(ssim_map.mean())
