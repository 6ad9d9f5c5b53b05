"""Edge sharpness against a ground truth: the 10-90 % rise width (`edge_width`) and the
relative steepness (`edge_slope`) of an output across the ground truth's strongest edges,
measured on Y with the protocol's shave, as PSNR is (`liifsr.metrics.fidelity`)."""

from __future__ import annotations

import math

import torch

from liifsr.metrics.fidelity import _shave, rgb_to_y, shave_for

# --- edge sharpness -------------------------------------------------------------------------

# The strongest tenth of the ground truth's edge-centre pixels, at most this many (the
# strongest), so that a large image costs no more than a small one.
EDGE_FRACTION = 0.1
MAX_EDGE_PROFILES = 2000
# A ground-truth gradient below 4 levels of 255 per pixel is shading or noise, not an edge.
MIN_EDGE_GRADIENT = 4 / 255
# A profile that turns back by more than 2 levels of 255 has left its edge: 8-bit
# quantisation (1 level) does not end an edge, the next structure does.
EDGE_TURN_BACK = 2 / 255
PROFILE_STEP = 0.25  # pixels between the samples of a profile
# An edge whose rise in the output is under half its rise in the ground truth is lost:
# it is scored 2 x reach wide (wider than a profile can measure), so that it counts
# against the output in the median instead of dropping out of it.
LOST_EDGE_CONTRAST = 0.5


def edge_reach(scale: float) -> float:
    """How far (HR pixels) a profile extends on each side of its edge pixel: 3 scale
    (an upsampler's blur grows with the scale; x4 bicubic spreads an edge over about
    4-6 HR pixels), at least 8."""
    return max(8.0, 3.0 * float(scale))


def _luma_image(x: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) in [0, 1] -> float64 (H, W): Y for RGB (offset-free), the channel for gray."""
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected one image (1, 1 or 3, H, W), got {tuple(x.shape)}")
    x = x.to(torch.float64)
    return (rgb_to_y(x, offset=False) if x.shape[1] == 3 else x)[0, 0]


def sobel(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(gy, gx) of an (H, W) image at its (H - 2, W - 2) inner pixels, in intensity per
    pixel (Sobel / 8, so a ramp of slope k gives k); gx grows to the right, gy downwards."""
    dx = y[:, 2:] - y[:, :-2]
    dy = y[2:, :] - y[:-2, :]
    gx = (dx[:-2] + 2 * dx[1:-1] + dx[2:]) / 8
    gy = (dy[:, :-2] + 2 * dy[:, 1:-1] + dy[:, 2:]) / 8
    return gy, gx


def edge_centres(gy: torch.Tensor, gx: torch.Tensor, minimum: float = MIN_EDGE_GRADIENT) -> torch.Tensor:
    """Boolean mask of the pixels whose gradient magnitude is at least `minimum` and at
    least that of both neighbours across the edge (Canny's non-maximum suppression, the
    gradient's direction rounded to 0, 45, 90 or 135 degrees)."""
    magnitude = torch.hypot(gy, gx)
    padded = torch.nn.functional.pad(magnitude[None, None], (1, 1, 1, 1))[0, 0]
    height, width = magnitude.shape
    angle = torch.remainder(torch.atan2(gy, gx), math.pi)
    sector = torch.remainder(torch.round(angle / (math.pi / 4)), 4).long()
    # Neighbours (dy, dx) along the gradient for each sector: x, down-right, y, down-left.
    offsets = ((0, 1), (1, 1), (1, 0), (1, -1))
    keep = magnitude >= minimum
    for index, (dy, dx) in enumerate(offsets):
        ahead = padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
        behind = padded[1 - dy : 1 - dy + height, 1 - dx : 1 - dx + width]
        is_max = (magnitude >= ahead) & (magnitude >= behind)
        keep &= (sector != index) | is_max
    return keep


def strongest_edges(gy: torch.Tensor, gx: torch.Tensor) -> torch.Tensor:
    """Indices (n, 2) of the strongest EDGE_FRACTION of `edge_centres`, at most
    MAX_EDGE_PROFILES, strongest first (ties in raster order, so the choice is the same
    on every run)."""
    candidates = edge_centres(gy, gx).nonzero()
    if len(candidates) == 0:
        return candidates
    magnitude = torch.hypot(gy, gx)[candidates[:, 0], candidates[:, 1]]
    count = min(MAX_EDGE_PROFILES, math.ceil(EDGE_FRACTION * len(candidates)))
    order = torch.sort(magnitude, descending=True, stable=True).indices[:count]
    return candidates[order]


def cubic_weights(fraction: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Keys' cubic convolution weights (a = -0.5) of the samples at -1, 0, 1 and 2 for
    positions `fraction` in [0, 1) past sample 0."""
    f = fraction
    return (((-0.5 * f + 1) * f - 0.5) * f, (1.5 * f - 2.5) * f * f + 1, ((-1.5 * f + 2) * f + 0.5) * f,
            (0.5 * f - 0.5) * f * f)


def cubic_samples(images: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """`images` (..., H, W) at real positions by Keys' bicubic interpolation, the border
    extended; returns (..., *ys.shape). Bicubic, not bilinear: linear interpolation
    between pixels widens a one-pixel-sigma edge's 10-90 % rise by 5-11 %, cubic by about 2 %."""
    height, width = images.shape[-2:]
    ys = ys.clamp(0, height - 1)
    xs = xs.clamp(0, width - 1)
    y0, x0 = ys.floor(), xs.floor()
    rows = [(y0 + i).clamp(0, height - 1).long() for i in (-1, 0, 1, 2)]
    columns = [(x0 + j).clamp(0, width - 1).long() for j in (-1, 0, 1, 2)]
    weights_x = cubic_weights(xs - x0)
    values = torch.zeros(images.shape[:-2] + ys.shape, dtype=images.dtype)
    for row, weight_y in zip(rows, cubic_weights(ys - y0)):
        along = sum(weight_x * images[..., row, column] for column, weight_x in zip(columns, weights_x))
        values += weight_y * along
    return values


def edge_profiles(images: torch.Tensor, centres: torch.Tensor, directions: torch.Tensor, reach: float) -> torch.Tensor:
    """(..., n, L) samples of `images` (..., H, W) along each centre's direction (unit
    (dy, dx)), from -reach to +reach every PROFILE_STEP, the centre at index L // 2."""
    steps = round(reach / PROFILE_STEP)
    t = torch.arange(-steps, steps + 1, dtype=torch.float64) * PROFILE_STEP
    ys = centres[:, :1].double() + t * directions[:, :1]
    xs = centres[:, 1:].double() + t * directions[:, 1:]
    return cubic_samples(images, ys, xs)


def rise_extent(profiles: torch.Tensor, turn_back: float = EDGE_TURN_BACK) -> tuple[torch.Tensor, ...]:
    """(low, high, low_index, high_index) of each rising profile's edge: from the centre
    the profile is followed down to the left and up to the right until it turns back by
    more than `turn_back`; low and high are the extreme values reached (Marziliano et al.'s
    edge extent, from the local extrema on either side of the edge)."""
    length = profiles.shape[1]
    centre = length // 2
    index = torch.arange(length)

    def extreme(side: torch.Tensor, sign: float) -> tuple[torch.Tensor, torch.Tensor]:
        running = torch.cummax(sign * side, dim=1).values
        turned = running - sign * side > turn_back
        stop = torch.where(turned.any(1), turned.float().argmax(1), side.shape[1])
        reached = (sign * side).masked_fill(index[None, : side.shape[1]] >= stop[:, None], -math.inf)
        value, at = reached.max(1)  # the first of equal extremes: the one nearest the centre
        return sign * value, at

    high, high_at = extreme(profiles[:, centre:], 1.0)
    low, low_at = extreme(profiles[:, : centre + 1].flip(1), -1.0)
    return low, high, centre - low_at, centre + high_at


def rise_width(profiles: torch.Tensor, low: torch.Tensor, high: torch.Tensor, low_at: torch.Tensor,
               high_at: torch.Tensor) -> torch.Tensor:
    """The 10-90 % rise distance (pixels) of each profile between its `low_at` and
    `high_at` samples: from the last crossing of low + 10 % (high - low) to the first of
    low + 90 %, linearly interpolated between samples. Only meaningful where high > low."""
    index = torch.arange(profiles.shape[1])
    inside = (index >= low_at[:, None]) & (index <= high_at[:, None])
    level_10 = (low + 0.1 * (high - low))[:, None]
    level_90 = (low + 0.9 * (high - low))[:, None]
    last_below = torch.where(inside & (profiles <= level_10), index, -1).max(1).values.clamp(0, profiles.shape[1] - 2)
    first_above = torch.where(inside & (profiles >= level_90), index, profiles.shape[1]).min(1).values.clamp(1, profiles.shape[1] - 1)

    def crossing(before: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        a = profiles.gather(1, before[:, None])
        b = profiles.gather(1, before[:, None] + 1)
        fraction = ((level - a) / torch.where(b > a, b - a, 1.0)).clamp(0, 1)
        return (before[:, None] + fraction)[:, 0]

    return (crossing(first_above - 1, level_90) - crossing(last_below, level_10)) * PROFILE_STEP


def edge_profile_pairs(sr: torch.Tensor, hr: torch.Tensor, scale: float, protocol: str,
                       reach: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The profiles (n, L) of `hr` and of `sr` across `hr`'s strongest edges, each oriented
    so that `hr` rises (steps 1 and 2 of `edge_width`); None when `hr` has no edge."""
    if sr.shape != hr.shape:
        raise ValueError(f"shape mismatch: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    shave = shave_for(protocol, scale)
    output, truth = _shave(_luma_image(sr), shave), _shave(_luma_image(hr), shave)
    if min(truth.shape) < 3:
        raise ValueError(f"image {tuple(truth.shape)} after shaving is too small for edges")
    gy, gx = sobel(truth)
    picked = strongest_edges(gy, gx)
    if len(picked) == 0:
        return None
    gradient = torch.stack([gy[picked[:, 0], picked[:, 1]], gx[picked[:, 0], picked[:, 1]]], dim=1)
    directions = gradient / gradient.norm(dim=1, keepdim=True)
    centres = picked + 1  # Sobel's inner pixels -> the image's
    truth_profiles, profiles = edge_profiles(torch.stack([truth, output]), centres, directions, reach)
    return truth_profiles, profiles


def edge_width(sr: torch.Tensor, hr: torch.Tensor, scale: float = 1, protocol: str = "plain",
               reach: float | None = None) -> float | None:
    """Edge sharpness of `sr` against the ground truth `hr`: the median 10-90 % rise width,
    in HR pixels, of `sr`'s profiles across `hr`'s strongest edges (lower is sharper; a
    Gaussian-blurred step of sigma s measures 2.563 s). None when `hr` has no edge.

    Both images are (1, C, H, W) in [0, 1], taken as Y (RGB) or their channel, with the
    protocol's border shaved (as for PSNR). The edges, the same for every output:

    1. `hr`'s gradient (Sobel / 8); edge centres are the pixels whose gradient magnitude
       is at least 4/255 per pixel and a maximum across the edge (Canny's non-maximum
       suppression); the strongest 10 % of them, at most 2,000, are kept.
    2. At each, a profile of `sr` is sampled (bicubic, every 1/4 pixel) along `hr`'s
       gradient direction, out to `reach` pixels each side (`edge_reach(scale)` by default).
    3. From the centre the profile is followed down on one side and up on the other until
       it turns back by more than 2/255 (the edge's extent, as in Marziliano et al., "A
       no-reference perceptual blur metric", ICIP 2002); its width is the distance between
       the crossings of 10 % and 90 % of that rise (the rise distance of the edge spread
       function, as in ISO 12233's slanted-edge measurement).
    4. An edge whose rise in `sr` is less than half of its rise in `hr` counts as
       2 x reach wide (lost); the image's value is the median over the profiles.
    """
    reach = edge_reach(scale) if reach is None else float(reach)
    pairs = edge_profile_pairs(sr, hr, scale, protocol, reach)
    if pairs is None:
        return None
    truth_profiles, profiles = pairs
    truth_low, truth_high, _, _ = rise_extent(truth_profiles)
    low, high, low_at, high_at = rise_extent(profiles)
    widths = rise_width(profiles, low, high, low_at, high_at)
    kept = (high - low >= LOST_EDGE_CONTRAST * (truth_high - truth_low)) & (high > low) & (widths > 0)
    widths = torch.where(kept, widths, 2 * reach)
    return float(torch.quantile(widths, 0.5))


def slope_window(scale: float) -> float:
    """How far (HR pixels) from `hr`'s edge centre the output's steepest slope is looked for:
    half an LR pixel (an upsampler may place an edge anywhere within the LR pixel that
    holds it), at least 2."""
    return max(2.0, float(scale) / 2)


def edge_slope(sr: torch.Tensor, hr: torch.Tensor, scale: float = 1, protocol: str = "plain") -> float | None:
    """Edge steepness of `sr` against `hr`, for scales where edges are lost to `edge_width`:
    the median, over `hr`'s strongest edges (as in `edge_width`), of the steepest rising
    slope of `sr`'s profile within `slope_window(scale)` pixels of the centre, divided by
    that of `hr`'s profile. 1: as steep as the ground truth; lower is blurrier; above 1,
    steeper (overshoot). A step blurred by a Gaussian of sigma s against one of sigma t
    measures t / s. Unlike the width it has no ceiling, so it still ranks outputs at x30,
    where every output's edges spread wider than `edge_width` can follow. None when `hr`
    has no edge."""
    window = slope_window(scale)
    pairs = edge_profile_pairs(sr, hr, scale, protocol, window + PROFILE_STEP)
    if pairs is None:
        return None
    truth_slope, slope = ((p[:, 1:] - p[:, :-1]).amax(1) / PROFILE_STEP for p in pairs)
    return float(torch.quantile(slope / truth_slope, 0.5))
