"""Image resizing that reproduces the reference tools SR papers are measured with.

Two different bicubic resizers matter for LIIF-style super-resolution, and they do
*not* give the same pixels:

* :func:`imresize` reproduces MATLAB's ``imresize(..., 'bicubic')``. The standard
  benchmark LR images (Set5, Set14, B100, Urban100, DIV2K's ``X2``/``X3``/``X4``) were
  made with it, so the published bicubic baselines (e.g. 33.66 dB on Set5 x2) only
  come out with this exact kernel, border rule and output-size rule.
* :func:`pil_bicubic` / :func:`liif_downsample` reproduce LIIF's on-the-fly
  downsampler (torchvision ``Resize`` on a PIL image), which LIIF uses for training
  and for testing at scales with no pre-made LR set (x6, x8, ... and non-integer
  scales). Matching LIIF's numbers at those scales needs this path, uint8 truncation
  included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import overload

import numpy as np
import torch
from PIL import Image

Scale = float | Sequence[float]
Size = Sequence[int]

# MATLAB's bicubic kernel is non-zero on (-2, 2): 4 taps when not widened.
_CUBIC_WIDTH = 4.0


# ---------------------------------------------------------------------------
# MATLAB-compatible imresize
# ---------------------------------------------------------------------------


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5, exactly as MATLAB's ``cubic``.

    Written with the same polynomial form and the same interval boundaries
    (``|x| <= 1`` and ``1 < |x| <= 2``) as MATLAB so that the weights agree to the
    last bits, not just mathematically.
    """
    absx = x.abs()
    absx2 = absx * absx
    absx3 = absx2 * absx
    inner = (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1).to(x.dtype)
    outer = (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((absx > 1) & (absx <= 2)).to(
        x.dtype
    )
    return inner + outer


def contributions(
    in_len: int, out_len: int, scale: float, antialias: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and 0-based source indices for resizing one axis, as MATLAB computes them.

    Returns ``(weights, indices)``, both shaped ``(out_len, P)`` (float64 and int64, on
    the CPU: they are tiny and computing them in double everywhere keeps results
    device-independent). Output pixel ``i`` is ``sum_k weights[i, k] * x[indices[i, k]]``.

    Mirrors MATLAB's ``contributions``:

    * output pixel centres map back to ``u = x / scale + 0.5 * (1 - 1 / scale)``
      (1-based ``x``), i.e. pixel-centre alignment;
    * when downscaling with antialiasing the kernel is stretched by ``1 / scale`` and
      its height multiplied by ``scale`` (a low-pass filter matched to the new
      sampling rate);
    * each row of weights is divided by its sum (so constant images stay constant
      even where the kernel is truncated or widened);
    * out-of-range taps are mirrored symmetrically (``aux = [1..in, in..1]``, index
      taken modulo ``2 * in``), i.e. the edge pixel is repeated;
    * tap columns that are zero for every output pixel are dropped.
    """
    if in_len < 1 or out_len < 1:
        raise ValueError(f"lengths must be positive, got in={in_len}, out={out_len}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")

    widen = antialias and scale < 1
    kernel_width = _CUBIC_WIDTH / scale if widen else _CUBIC_WIDTH

    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]

    distance = u[:, None] - indices
    weights = scale * cubic(scale * distance) if widen else cubic(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)

    # Symmetric padding: 1-based index i -> aux[(i - 1) mod (2 * in)].
    aux = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    indices = aux[torch.remainder(indices.long() - 1, 2 * in_len)]

    keep = (weights != 0).any(dim=0)
    return weights[:, keep], indices[:, keep]


def _resize_axis(
    x: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool
) -> torch.Tensor:
    """Resize one axis of ``x`` by a gather and a weighted sum over the taps.

    The gather + sum (rather than a weight-matrix matmul) keeps the arithmetic in
    ``x``'s dtype with no TF32 or reduced-precision matmul paths on any device.
    """
    weights, indices = contributions(x.shape[dim], out_len, scale, antialias)
    weights = weights.to(device=x.device, dtype=x.dtype)
    indices = indices.to(device=x.device)

    moved = x.movedim(dim, -1)
    gathered = moved[..., indices]  # (..., out_len, P)
    out = (gathered * weights).sum(dim=-1)
    return out.movedim(-1, dim)


def _pair(value: Scale) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return float(value), float(value)
    h, w = value
    return float(h), float(w)


def _matlab_output_size(
    in_hw: tuple[int, int], scale: Scale | None = None, size: Size | None = None
) -> tuple[tuple[int, int], tuple[float, float]]:
    """MATLAB's rule for the output size and the per-axis scale actually used.

    With ``scale``: size is ``ceil(in * scale)`` and the kernel uses ``scale`` itself.
    With ``size`` (which wins when both are given): the kernel uses ``out / in``.
    """
    if size is not None:
        out_h, out_w = (int(s) for s in size)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"size must be positive, got {tuple(size)}")
        return (out_h, out_w), (out_h / in_hw[0], out_w / in_hw[1])
    if scale is None:
        raise ValueError("give scale or size")
    sh, sw = _pair(scale)
    if sh <= 0 or sw <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return (math.ceil(in_hw[0] * sh), math.ceil(in_hw[1] * sw)), (sh, sw)


def imresize(
    x: torch.Tensor,
    scale: Scale | None = None,
    size: Size | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """MATLAB-compatible bicubic ``imresize`` for float tensors.

    ``x`` is (H, W), (C, H, W) or (N, C, H, W) of any float dtype on any device; the
    result has the same layout, dtype and device. ``scale`` is a number or an
    ``(h, w)`` pair; ``size=(h, w)`` overrides it. The result is neither rounded nor
    clamped (bicubic overshoots; callers decide what to do with that).

    The two separable passes run in MATLAB's order: the axis with the smaller scale
    (the stronger reduction) first, height first on ties, which matters for the last
    bits and, with clamping callers, slightly more.
    """
    if not torch.is_floating_point(x):
        raise TypeError(f"imresize needs a float tensor, got {x.dtype}")
    if x.dim() not in (2, 3, 4):
        raise ValueError(f"expected (H, W), (C, H, W) or (N, C, H, W), got {tuple(x.shape)}")

    in_hw = (x.shape[-2], x.shape[-1])
    (out_h, out_w), (sh, sw) = _matlab_output_size(in_hw, scale, size)
    passes = [(-2, out_h, sh), (-1, out_w, sw)]
    if sw < sh:
        passes.reverse()
    for dim, out_len, s in passes:
        x = _resize_axis(x, dim, out_len, s, antialias)
    return x


@overload
def imresize_uint8(img: np.ndarray, scale: Scale | None = None, size: tuple[int, int] | None = None) -> np.ndarray: ...
@overload
def imresize_uint8(img: torch.Tensor, scale: Scale | None = None, size: tuple[int, int] | None = None) -> torch.Tensor: ...
def imresize_uint8(
    img: np.ndarray | torch.Tensor, scale: Scale | None = None, size: tuple[int, int] | None = None
) -> np.ndarray | torch.Tensor:
    """``imresize`` on a uint8 image the way MATLAB treats uint8 input.

    MATLAB computes in double and converts back with saturation and rounding half
    away from zero; we do the same (``floor(v + 0.5)`` after clipping to [0, 255]).
    A numpy array is read as (H, W) or (H, W, C), as Pillow gives it, and a numpy
    array comes back; a tensor uses imresize's layouts and a uint8 tensor comes back.
    """
    is_numpy = isinstance(img, np.ndarray)
    if img.dtype not in (np.uint8, torch.uint8):
        raise TypeError(f"expected uint8 input, got {img.dtype}")
    if isinstance(img, np.ndarray):
        t = torch.from_numpy(np.array(img, dtype=np.float64))
        channels_last = t.dim() == 3
        if channels_last:
            t = t.permute(2, 0, 1)
    else:
        t = img.to(torch.float64)
        channels_last = False

    out = imresize(t, scale=scale, size=size)
    out = torch.floor(out.clamp(0, 255) + 0.5).to(torch.uint8)

    if is_numpy:
        if channels_last:
            out = out.permute(1, 2, 0)
        return out.contiguous().numpy()
    return out


#: The bicubic baseline's name wherever methods are listed (`liifsr evaluate`, `liifsr compare`).
BICUBIC = "bicubic"


def bicubic_upsample(lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The bicubic baseline of SR tables: (1, C, h, w) in [0, 1] rounded to uint8 levels,
    MATLAB-upsampled to ``size`` with :func:`imresize_uint8`, as (1, C, H, W) in [0, 1]."""
    levels = torch.round(lr[0] * 255).to(torch.uint8)
    return imresize_uint8(levels, size=size).float().div(255).unsqueeze(0)


def bicubic_taps(in_len: int, out_len: int, start: int = 0, stop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's bicubic (`F.interpolate(mode="bicubic", align_corners=False)`) along one
    axis, for output pixels [start, stop): weights (n, 4) float32 and source indices (n, 4).

    Keys' kernel with a = -0.75, source position scale * (i + 0.5) - 0.5 (not clamped),
    indices clamped to the edge, no antialiasing: ATen's `upsample_bicubic2d`. Computing
    any range of rows lets a large output be resized band by band.
    """
    stop = out_len if stop is None else stop
    a = -0.75
    src = (in_len / out_len) * (torch.arange(start, stop, dtype=torch.float64) + 0.5) - 0.5
    base = torch.floor(src)
    t = src - base
    near = lambda x: ((a + 2) * x - (a + 3)) * x * x + 1  # noqa: E731 - |x| <= 1
    far = lambda x: ((a * x - 5 * a) * x + 8 * a) * x - 4 * a  # noqa: E731 - 1 < |x| < 2
    weights = torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], dim=1)
    indices = (base.long()[:, None] + torch.arange(-1, 3)).clamp_(0, in_len - 1)
    return weights.float(), indices


# ---------------------------------------------------------------------------
# LIIF's PIL-based downsampler
# ---------------------------------------------------------------------------


def _to_pil_uint8(img: torch.Tensor) -> np.ndarray:
    """torchvision ``ToPILImage`` on a float tensor: ``mul(255).byte()``, i.e. truncation.

    The multiplication stays in the tensor's own dtype, as torchvision does, so the
    truncated bytes are the same ones LIIF gets. The clamp only guards values outside
    [0, 1], where ``.byte()`` would wrap; it changes nothing for valid images.
    """
    return img.detach().cpu().mul(255).clamp(0, 255).to(torch.uint8).numpy()


def pil_bicubic(img: torch.Tensor, size_hw: Sequence[int]) -> torch.Tensor:
    """LIIF's ``resize_fn``: float (C, H, W) in [0, 1] -> uint8 -> PIL bicubic -> float32.

    Equivalent to ``ToTensor()(Resize(size, BICUBIC)(ToPILImage()(img)))`` without
    torchvision: bytes are truncated (not rounded), PIL's bicubic antialiases when
    downscaling, and the result is float32 ``/ 255`` on ``img``'s device. Images with
    3 channels go through PIL as RGB and 1-channel ones as L, as ToPILImage would;
    other channel counts are resized channel by channel as L (PIL resamples 8-bit
    channels independently, so this is the same arithmetic).
    """
    if img.dim() != 3:
        raise ValueError(f"expected (C, H, W), got {tuple(img.shape)}")
    out_h, out_w = (int(s) for s in size_hw)
    data = _to_pil_uint8(img)  # (C, H, W) uint8

    if data.shape[0] == 3:
        pil = Image.fromarray(np.ascontiguousarray(data.transpose(1, 2, 0)), mode="RGB")
        resized = np.asarray(pil.resize((out_w, out_h), Image.Resampling.BICUBIC)).transpose(2, 0, 1)
    else:
        resized = np.stack(
            [
                np.asarray(Image.fromarray(channel, mode="L").resize((out_w, out_h), Image.Resampling.BICUBIC))
                for channel in data
            ]
        )
    # np.array copies: np.asarray of a PIL image is read-only, and PyTorch warns of tensors of it.
    out = torch.from_numpy(np.array(resized)).to(torch.float32).div(255)
    return out.to(img.device)


def liif_downsample(hr: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """LIIF's test-time downsampling (``SRImplicitDownsampled`` with no ``inp_size``).

    The LR size is ``floor(H / s + 1e-9)`` (the epsilon keeps exact multiples from
    losing a pixel to floating-point error), the HR is cropped top-left to
    ``round(h_lr * s) x round(w_lr * s)`` and the LR is :func:`pil_bicubic` of that
    crop. Returns ``(hr_crop, lr)``.
    """
    if hr.dim() != 3:
        raise ValueError(f"expected (C, H, W), got {tuple(hr.shape)}")
    h_lr = math.floor(hr.shape[-2] / scale + 1e-9)
    w_lr = math.floor(hr.shape[-1] / scale + 1e-9)
    if h_lr < 1 or w_lr < 1:
        raise ValueError(f"image {tuple(hr.shape[-2:])} too small for scale {scale}")
    hr_crop = hr[:, : round(h_lr * scale), : round(w_lr * scale)]
    return hr_crop, pil_bicubic(hr_crop, (h_lr, w_lr))


@overload
def modcrop(img: np.ndarray, scale: int) -> np.ndarray: ...
@overload
def modcrop(img: torch.Tensor, scale: int) -> torch.Tensor: ...
def modcrop(img: np.ndarray | torch.Tensor, scale: int) -> np.ndarray | torch.Tensor:
    """Crop height and width down to multiples of ``scale`` (bottom/right removed).

    The benchmark convention: HR images are cropped so that HR = scale x LR exactly.
    A tensor is read as (..., H, W); a numpy array as (H, W) or (H, W, C), as Pillow
    gives it.
    """
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    if isinstance(img, np.ndarray):
        h, w = img.shape[0], img.shape[1]
        return img[: h - h % scale, : w - w % scale, ...]
    h, w = img.shape[-2], img.shape[-1]
    return img[..., : h - h % scale, : w - w % scale]


def resize_lr(hr: torch.Tensor, size_hw: tuple[int, int], method: str) -> torch.Tensor:
    """Bicubic LR image (3, h, w) of a float HR image in [0, 1], 8-bit like an LR file.

    'pil' is LIIF's resize_fn (uint8 truncation, PIL bicubic); 'matlab' is MATLAB's
    antialiased imresize, rounded to 8 bits as the benchmark LR files are.
    """
    if method == "pil":
        return pil_bicubic(hr, size_hw)
    lr = imresize(hr, size=size_hw)
    return torch.floor(lr.clamp(0, 1) * 255 + 0.5) / 255
