"""Synthetic degradations of low-resolution images: blur, noise and JPEG, for training
models on real photographs and for evaluating any model on degraded inputs.

Every stage acts on a float (3, h, w) LR image in [0, 1] and draws its randomness from a
torch.Generator that the caller seeds, so a training sample depends only on (seed,
epoch, index) and an evaluation image only on its name and scale.

Units: blur sigmas are in LR pixels, noise sigmas in 8-bit levels (sigma 10 is 10/255),
JPEG quality as Pillow's (1-95). The LR image of every stage is an 8-bit image, as the
file a camera or a website would give: noise is clamped and the chain's output rounded.

Training (`DegradeConfig`, the YAML's `data.degrade`): the LR patch is made with a
downsampling kernel drawn from `kernels`, then the stages of `order` run, each with its
own probability, and with probability `second_order` the whole chain of stages runs
again with new draws (Real-ESRGAN's second-order model, Wang et al. 2021). Targets stay
clean.

Evaluation (`parse_spec`, `liifsr evaluate --degrade`): a fixed chain such as
`blur:1.2,noise:5,jpeg:85` applied, in the order written, to the protocol's LR input.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from liifsr.resize import resize_lr

STAGES = ("blur", "noise", "jpeg")
KERNELS = ("bicubic", "bilinear", "area")
MAX_BLUR_SIGMA = 5.0  # LR pixels: a 31-tap kernel; beyond it nothing of the image is left to upscale


class DegradeError(ValueError):
    """A degradation setting or spec the user has to fix; the message says how."""


@dataclass
class BlurConfig:
    """Gaussian blur: isotropic, or with probability `anisotropic` two sigmas drawn
    independently and the kernel rotated by an angle drawn from [0, pi)."""

    prob: float = 0.0
    sigma: list[float] = field(default_factory=lambda: [0.2, 1.5])  # LR pixels, uniform
    anisotropic: float = 0.5


@dataclass
class NoiseConfig:
    """Additive Gaussian noise (grey, i.e. the same in all channels, with probability
    `gray`), or with probability `poisson` shot noise instead: Poisson(255 x) / 255,
    its deviation from x multiplied by a scale drawn from `poisson_scale`."""

    prob: float = 0.0
    sigma: list[float] = field(default_factory=lambda: [1.0, 15.0])  # 8-bit levels, uniform
    gray: float = 0.4
    poisson: float = 0.0
    poisson_scale: list[float] = field(default_factory=lambda: [0.05, 1.0])


@dataclass
class JpegConfig:
    prob: float = 0.0
    quality: list[int] = field(default_factory=lambda: [40, 95])  # uniform integer, both ends included


@dataclass
class DegradeConfig:
    """What happens to a training LR patch between the clean HR crop and the model.

    All probabilities 0 and `kernels: [bicubic]` (the default) is LIIF's clean sampler.
    """

    kernels: list[str] = field(default_factory=lambda: ["bicubic"])  # drawn uniformly
    order: list[str] = field(default_factory=lambda: list(STAGES))
    second_order: float = 0.0  # probability of running the stages twice
    blur: BlurConfig = field(default_factory=BlurConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    jpeg: JpegConfig = field(default_factory=JpegConfig)

    @property
    def enabled(self) -> bool:
        return self.kernels != ["bicubic"] or any(p > 0 for p in (self.blur.prob, self.noise.prob, self.jpeg.prob))

    def describe(self) -> str:
        """One line for a model card: what the LR inputs went through in training."""
        if not self.enabled:
            return "clean bicubic LR inputs"
        stages = {
            "blur": f"blur p {self.blur.prob:g} (sigma {self.blur.sigma[0]:g}-{self.blur.sigma[1]:g} LR px, "
                    f"{self.blur.anisotropic:.0%} anisotropic)",
            "noise": f"noise p {self.noise.prob:g} (Gaussian sigma {self.noise.sigma[0]:g}-{self.noise.sigma[1]:g}, "
                     f"{self.noise.gray:.0%} grey; Poisson {self.noise.poisson:.0%})",
            "jpeg": f"JPEG p {self.jpeg.prob:g} (quality {self.jpeg.quality[0]}-{self.jpeg.quality[1]})",
        }
        chain = ", ".join(stages[stage] for stage in self.order)
        return (f"degraded LR inputs: {'/'.join(self.kernels)} downsampling, then {chain}; "
                f"the chain twice with p {self.second_order:g}")


def _check_range(where: str, values: Sequence[float], low: float, high: float) -> None:
    if len(values) != 2 or not (low <= values[0] <= values[1] <= high):
        raise DegradeError(f"{where} must be [min, max] with {low} <= min <= max <= {high}, got {list(values)}")


def _check_prob(where: str, value: float) -> None:
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise DegradeError(f"{where} must be a probability in [0, 1], got {value}")


def check_degrade_config(config: DegradeConfig, where: str = "data.degrade") -> None:
    if not config.kernels or any(k not in KERNELS for k in config.kernels):
        raise DegradeError(f"{where}.kernels must be a non-empty list of {', '.join(KERNELS)}, got {config.kernels}")
    if sorted(config.order) != sorted(set(config.order)) or any(s not in STAGES for s in config.order):
        raise DegradeError(f"{where}.order must list each of {', '.join(STAGES)} at most once, got {config.order}")
    for name, value in [("second_order", config.second_order), ("blur.prob", config.blur.prob),
                        ("blur.anisotropic", config.blur.anisotropic), ("noise.prob", config.noise.prob),
                        ("noise.gray", config.noise.gray), ("noise.poisson", config.noise.poisson),
                        ("jpeg.prob", config.jpeg.prob)]:
        _check_prob(f"{where}.{name}", value)
    _check_range(f"{where}.blur.sigma", config.blur.sigma, 0.0, MAX_BLUR_SIGMA)
    _check_range(f"{where}.noise.sigma", config.noise.sigma, 0.0, 255.0)
    _check_range(f"{where}.noise.poisson_scale", config.noise.poisson_scale, 0.0, 10.0)
    _check_range(f"{where}.jpeg.quality", config.jpeg.quality, 1, 95)


# --- the stages (pure functions of an image and their parameters) --------------------------


def gaussian_kernel(sigma_y: float, sigma_x: float, angle: float = 0.0) -> Tensor:
    """A normalised 2-D Gaussian kernel (k, k), k = 2 ceil(3 max sigma) + 1, with its axes
    rotated by `angle` (radians)."""
    radius = max(1, math.ceil(3 * max(sigma_y, sigma_x)))
    grid = torch.arange(-radius, radius + 1, dtype=torch.float64)
    y, x = torch.meshgrid(grid, grid, indexing="ij")
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = cos * x + sin * y, -sin * x + cos * y  # coordinates along the kernel's own axes
    kernel = torch.exp(-0.5 * ((u / max(sigma_x, 1e-6)) ** 2 + (v / max(sigma_y, 1e-6)) ** 2))
    return (kernel / kernel.sum()).float()


def blur(image: Tensor, kernel: Tensor) -> Tensor:
    """`image` (C, h, w) convolved with `kernel` (k, k), edges replicated (the image size is kept)."""
    radius = kernel.shape[-1] // 2
    padded = F.pad(image.unsqueeze(0), (radius,) * 4, mode="replicate")
    weight = kernel.to(image).expand(image.shape[0], 1, *kernel.shape)
    return F.conv2d(padded, weight, groups=image.shape[0]).squeeze(0)


def gaussian_noise(image: Tensor, sigma: float, gray: bool, generator: torch.Generator) -> Tensor:
    """`image` plus N(0, (sigma / 255)^2) noise, the same in every channel if `gray`, clamped to [0, 1]."""
    shape = (1, *image.shape[1:]) if gray else image.shape
    noise = torch.randn(shape, generator=generator) * (sigma / 255)
    return (image + noise.to(image)).clamp(0, 1)


def poisson_noise(image: Tensor, scale: float, generator: torch.Generator) -> Tensor:
    """Shot noise of a sensor that counts 255 photons at white, its deviation times `scale`."""
    counts = torch.poisson(image.detach().cpu().double() * 255, generator=generator) / 255
    return (image + (counts.to(image) - image) * scale).clamp(0, 1)


def jpeg(image: Tensor, quality: int) -> Tensor:
    """`image` saved as a JPEG of `quality` (Pillow's 4:2:0 default) and read back."""
    pixels = to_uint8(image).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="JPEG", quality=int(quality))
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).float().div(255).to(image.device)


def to_uint8(image: Tensor) -> Tensor:
    """Rounded 8-bit values of a [0, 1] image, on the CPU."""
    return torch.floor(image.detach().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def quantise(image: Tensor) -> Tensor:
    """The image as an 8-bit file holds it."""
    return to_uint8(image).float().div(255).to(image.device)


def downsample(hr: Tensor, size_hw: tuple[int, int], kernel: str, bicubic_method: str) -> Tensor:
    """An 8-bit LR image of a float HR image with one of KERNELS (bicubic: the sampler's own,
    PIL's or MATLAB's; bilinear antialiased; area averaging)."""
    if kernel == "bicubic":
        return resize_lr(hr, size_hw, bicubic_method)
    if kernel == "bilinear":
        lr = F.interpolate(hr.unsqueeze(0), size=size_hw, mode="bilinear", align_corners=False, antialias=True)
    else:
        lr = F.interpolate(hr.unsqueeze(0), size=size_hw, mode="area")
    return quantise(lr.squeeze(0))


# --- training: random chains --------------------------------------------------------------


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _happens(generator: torch.Generator, prob: float) -> bool:
    return float(torch.rand((), generator=generator, dtype=torch.float64)) < prob


def random_stage(image: Tensor, stage: str, config: DegradeConfig, generator: torch.Generator) -> Tensor:
    """One stage with its probability and parameters drawn from `generator` (the parameters
    are drawn whether or not the stage applies)."""
    applies = _happens(generator, getattr(config, stage).prob)
    if stage == "blur":
        cfg = config.blur
        sigma_y, sigma_x = _uniform(generator, *cfg.sigma), _uniform(generator, *cfg.sigma)
        anisotropic, angle = _happens(generator, cfg.anisotropic), _uniform(generator, 0.0, math.pi)
        if not applies:
            return image
        kernel = gaussian_kernel(sigma_y, sigma_x, angle) if anisotropic else gaussian_kernel(sigma_y, sigma_y)
        return blur(image, kernel)
    if stage == "noise":
        cfg_n = config.noise
        sigma, gray = _uniform(generator, *cfg_n.sigma), _happens(generator, cfg_n.gray)
        poisson, scale = _happens(generator, cfg_n.poisson), _uniform(generator, *cfg_n.poisson_scale)
        if not applies:
            return image
        return poisson_noise(image, scale, generator) if poisson else gaussian_noise(image, sigma, gray, generator)
    low, high = config.jpeg.quality
    quality = int(torch.randint(int(low), int(high) + 1, (), generator=generator))
    return jpeg(image, quality) if applies else image


def degrade_patch(hr: Tensor, size_hw: tuple[int, int], config: DegradeConfig, bicubic_method: str,
                  generator: torch.Generator) -> Tensor:
    """A training LR patch of an HR crop: a drawn downsampling kernel, then the chain of
    stages (twice with probability `second_order`), rounded to 8 bits."""
    kernel = config.kernels[int(torch.randint(len(config.kernels), (), generator=generator))]
    lr = downsample(hr, size_hw, kernel, bicubic_method)
    passes = 2 if _happens(generator, config.second_order) else 1
    for _ in range(passes):
        for stage in config.order:
            lr = random_stage(lr, stage, config, generator)
    return quantise(lr)


# --- evaluation: fixed chains -------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One fixed stage of an evaluation chain: blur:SIGMA, noise:SIGMA, gray:SIGMA
    (grey Gaussian noise), poisson:SCALE or jpeg:QUALITY."""

    name: str
    value: float

    def __str__(self) -> str:
        return f"{self.name}:{self.value:g}"


SPEC_STEPS = {"blur": (0.0, MAX_BLUR_SIGMA), "noise": (0.0, 255.0), "gray": (0.0, 255.0),
              "poisson": (0.0, 10.0), "jpeg": (1.0, 95.0)}
SPEC_HELP = ("a comma-separated chain applied to the LR input in order: blur:SIGMA (Gaussian, LR pixels), "
             "noise:SIGMA (colour Gaussian, 8-bit levels), gray:SIGMA, poisson:SCALE, jpeg:QUALITY (1-95); "
             "e.g. jpeg:75 or blur:1.0,noise:5,jpeg:85")


def parse_spec(text: str) -> tuple[Step, ...]:
    """`blur:1.2,noise:5,jpeg:85` as Steps; a DegradeError names a bad part and the form."""
    steps = []
    for part in text.split(","):
        name, sep, value_text = part.strip().partition(":")
        if name not in SPEC_STEPS or not sep:
            raise DegradeError(f"unknown degradation {part.strip()!r} in {text!r} (use {SPEC_HELP})")
        try:
            value = float(value_text)
        except ValueError:
            raise DegradeError(f"degradation {part.strip()!r}: {value_text!r} is not a number") from None
        low, high = SPEC_STEPS[name]
        if not low <= value <= high or (name == "jpeg" and value != int(value)):
            kind = "an integer" if name == "jpeg" else "a number"
            raise DegradeError(f"degradation {part.strip()!r}: {name} takes {kind} in [{low:g}, {high:g}]")
        steps.append(Step(name, value))
    return tuple(steps)


def spec_text(steps: Sequence[Step]) -> str:
    """The canonical text of a chain ('clean' for none), as reports name it."""
    return ",".join(str(step) for step in steps) or "clean"


def image_generator(name: str, scale: float, steps: Sequence[Step]) -> torch.Generator:
    """A generator for one evaluation image: the same noise for every model and run."""
    key = f"{name}|{scale!r}|{spec_text(steps)}".encode()
    state = np.random.SeedSequence([zlib.crc32(key), len(key)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def apply_steps(lr: Tensor, steps: Sequence[Step], generator: torch.Generator) -> Tensor:
    """A fixed chain on an LR image (C, h, w) or (1, C, h, w) in [0, 1], rounded to 8 bits.
    Grey images (C = 1) are degraded as RGB and averaged back."""
    if not steps:
        return lr
    batched = lr.dim() == 4
    image = lr[0] if batched else lr
    channels = image.shape[0]
    image = image.expand(3, -1, -1) if channels == 1 else image
    for step in steps:
        if step.name == "blur":
            image = blur(image, gaussian_kernel(step.value, step.value)) if step.value > 0 else image
        elif step.name in ("noise", "gray"):
            image = gaussian_noise(image, step.value, step.name == "gray", generator)
        elif step.name == "poisson":
            image = poisson_noise(image, step.value, generator)
        else:
            image = jpeg(image, int(step.value))
    image = quantise(image)
    image = image.mean(0, keepdim=True) if channels == 1 else image
    return image.unsqueeze(0) if batched else image
