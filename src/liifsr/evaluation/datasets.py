"""Evaluation inputs: dataset folders and their layouts, protocols, scales, and the LR/HR
pairs LIIF's test script makes; every image is checked before any model runs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from liifsr.checks import check_scale
from liifsr.data import spread_indices
from liifsr.degrade import Step, apply_steps, image_generator, parse_spec, to_uint8
from liifsr.imageio import IMAGE_EXTENSIONS, read_uint8
from liifsr.metrics import SSIM_WINDOW, shave_for
from liifsr.progress import progress_bar
from liifsr.resize import imresize_uint8, liif_downsample, modcrop

PROTOCOL_CHOICES = ("auto", "benchmark", "div2k")  # --protocol; the metrics' own: `metrics.PROTOCOLS`
PROTOCOL_TEXT = {
    "benchmark": "benchmark protocol (Y channel, `scale` border pixels shaved)",
    "div2k": "div2k protocol (RGB, `scale + 6` border pixels shaved; SSIM on Y)",
}
DEFAULT_SCALES = "2,3,4,6,8"
# LIIF's models are trained on x1-x4; larger scales are "out-of-domain" in its tables.
IN_DOMAIN_MAX_SCALE = 4

def parse_scales(text: str) -> list[float]:
    """'2,3,4' -> [2.0, 3.0, 4.0]; whole numbers >= 1 only, since PSNR shaves `scale` pixels."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise ValueError(f"bad scale list {text!r}: give comma-separated whole numbers, e.g. 2,3,4,6,8")
    scales: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"bad scale {part!r} in {text!r}: give comma-separated whole numbers, e.g. 2,3,4") from None
        check_evaluation_scale(value)
        if value not in scales:
            scales.append(value)
    return scales


def check_evaluation_scale(scale: float) -> float:
    """A whole scale >= 1: the PSNR protocols shave `scale` border pixels."""
    return check_scale(scale, at_least=1, whole=True, why=" (the PSNR protocols shave `scale` border pixels)")


@dataclass(frozen=True)
class EvalSet:
    """An evaluation dataset as found on disk: its name, HR folder and LR folder (of X{s}/)."""

    name: str
    hr_dir: Path
    lr_dir: Path
    div2k_layout: bool


def find_dataset(folder: str | Path) -> EvalSet:
    """Read a dataset folder in EDSR's benchmark layout or in DIV2K's; ValueError otherwise."""
    folder = Path(folder)
    if not folder.exists():
        raise ValueError(f"dataset folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ValueError(f"dataset {str(folder)!r} is not a folder (expected a folder holding HR/ or DIV2K_valid_HR/)")
    if (folder / "HR").is_dir():
        return EvalSet(folder.name, folder / "HR", folder / "LR_bicubic", div2k_layout=False)
    if (folder / "DIV2K_valid_HR").is_dir():
        return EvalSet(folder.name, folder / "DIV2K_valid_HR", folder / "DIV2K_valid_LR_bicubic", div2k_layout=True)
    if folder.name == "DIV2K_valid_HR":
        return EvalSet(folder.name, folder, folder.parent / "DIV2K_valid_LR_bicubic", div2k_layout=True)
    hint = ""
    if folder.name == "HR":
        hint = " (give its parent folder)"
    elif (folder / "DIV2K").is_dir():
        hint = f" (give {str(folder / 'DIV2K')!r})"
    elif (folder / "benchmark").is_dir():
        hint = f" (give one set in it, e.g. {str(folder / 'benchmark' / 'Set5')!r})"
    raise ValueError(
        f"dataset folder {str(folder)!r} has no HR/ subfolder (benchmark layout) nor DIV2K_valid_HR/ "
        f"(the layout of `liifsr data download div2k`){hint}"
    )


def resolve_protocol(protocol: str, dataset: EvalSet) -> tuple[str, str]:
    """(protocol, why): 'auto' means 'div2k' for DIV2K's layout or a folder named like
    DIV2K, else 'benchmark'."""
    if protocol not in PROTOCOL_CHOICES:
        raise ValueError(f"unknown protocol {protocol!r} (choose one of: {', '.join(PROTOCOL_CHOICES)})")
    if protocol != "auto":
        return protocol, "as --protocol asks"
    if dataset.div2k_layout:
        return "div2k", "DIV2K folder layout"
    if "div2k" in dataset.name.lower():
        return "div2k", "folder named like DIV2K"
    return "benchmark", "HR/ layout of a benchmark set; --protocol div2k for DIV2K-like images"


def hr_images(dataset: EvalSet) -> list[Path]:
    """The dataset's HR image files, sorted; ValueError when there are none."""
    files = sorted(p for p in dataset.hr_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise ValueError(f"dataset folder {str(dataset.hr_dir)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def spread_subset(files: list[Path], count: int | None) -> list[Path]:
    """`count` of `files` spread evenly over the list, first file included (all for None)."""
    if count is None or count >= len(files):
        return files
    if count < 1:
        raise ValueError(f"bad image count {count}: give a number of images >= 1")
    return [files[i] for i in spread_indices(count, len(files))]


def lr_file(dataset: EvalSet, hr_path: Path, scale: float) -> Path | None:
    """The pre-made LR image for `hr_path` when the `X{s}/` folder exists (in-domain scales only).

    EDSR naming: `0801.png` -> `X2/0801x2.png`. When the folder exists the file must too:
    silently mixing pre-made and regenerated LR images would make results incomparable.
    """
    if scale > IN_DOMAIN_MAX_SCALE:
        return None
    folder = dataset.lr_dir / f"X{int(scale)}"
    if not folder.is_dir():
        return None
    stem = f"{hr_path.stem}x{int(scale)}"
    candidates = [folder / f"{stem}{hr_path.suffix}"] + [folder / f"{stem}{ext}" for ext in IMAGE_EXTENSIONS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ValueError(f"{str(folder)!r} has no LR image for {hr_path.name} (expected {stem}{hr_path.suffix})")


def to_float(image: Tensor) -> Tensor:
    """uint8 (3, H, W) -> float32 (1, 3, H, W) in [0, 1], as torchvision's ToTensor computes it."""
    return image.float().div(255).unsqueeze(0)


def make_pair(dataset: EvalSet, hr_path: Path, scale: float) -> tuple[Tensor, Tensor]:
    """(hr, lr) uint8 (3, H, W) tensors for one image at one scale, by LIIF's rules."""
    hr = read_uint8(hr_path)
    s = int(scale)
    if scale > IN_DOMAIN_MAX_SCALE:
        hr_crop, lr = liif_downsample(hr.float().div(255), scale)
        return (hr_crop * 255).round().to(torch.uint8), (lr * 255).round().to(torch.uint8)
    path = lr_file(dataset, hr_path, scale)
    if path is None:
        hr = modcrop(hr, s)
        return hr, imresize_uint8(hr, scale=1 / s)
    lr = read_uint8(path)
    h, w = lr.shape[-2] * s, lr.shape[-1] * s
    if h > hr.shape[-2] or w > hr.shape[-1]:
        raise ValueError(
            f"LR image {str(path)!r} ({lr.shape[-2]}x{lr.shape[-1]}, HEIGHTxWIDTH) is too large for "
            f"{hr_path.name} ({hr.shape[-2]}x{hr.shape[-1]}) at x{s}"
        )
    return hr[:, :h, :w], lr  # LIIF crops the HR to s times the LR size


def parse_degrade(text: str | None) -> tuple[Step, ...]:
    """`--degrade`'s chain ('clean', empty or None: no degradation, as reports name it);
    a DegradeError (a ValueError) names a bad part."""
    if text is None or text.strip() in ("", "clean"):
        return ()
    return parse_spec(text)


def degrade_lr(lr: Tensor, steps: tuple[Step, ...], image_key: str, scale: float) -> Tensor:
    """A uint8 (3, h, w) LR image with the chain applied, its noise drawn from the
    image's own generator (by `image_key` and scale), so every model and every run gets
    the same degraded input. The scale is keyed as a float: 2 and 2.0 are one scale."""
    if not steps:
        return lr
    degraded = apply_steps(lr.float().div(255), steps, image_generator(image_key, float(scale), steps))
    return to_uint8(degraded)  # exact: apply_steps rounds to 8 bits


def scored_size(hr_hw: tuple[int, int], lr_hw: tuple[int, int] | None, scale: float) -> tuple[int, int]:
    """The size of the HR crop `make_pair` scores: s times the LR file's size, a modcrop
    (in-domain), or LIIF's crop to round(floor(n / s) s) (out-of-domain)."""
    if lr_hw is not None:
        return lr_hw[0] * int(scale), lr_hw[1] * int(scale)
    if scale > IN_DOMAIN_MAX_SCALE:
        return tuple(round(math.floor(n / scale + 1e-9) * scale) for n in hr_hw)  # type: ignore[return-value]
    return tuple(n - n % int(scale) for n in hr_hw)  # type: ignore[return-value]


def check_images(dataset: EvalSet, files: list[Path], scales: list[float], protocol: str, progress: bool) -> None:
    """Read every HR and pre-made LR image once, before any model runs; ValueError (naming
    the file) for an unreadable one, or one too small for a scale once its borders are shaved."""
    with progress_bar(files, desc=f"{dataset.name}: reading", unit="img", enabled=None if progress else False) as bar:
        for hr_path in bar:
            hr_shape = read_uint8(hr_path).shape
            hr_hw = (hr_shape[-2], hr_shape[-1])
            for scale in scales:
                path = lr_file(dataset, hr_path, scale)
                lr_shape = read_uint8(path).shape if path is not None else None
                lr_hw = (lr_shape[-2], lr_shape[-1]) if lr_shape is not None else None
                size, shave = scored_size(hr_hw, lr_hw, scale), shave_for(protocol, scale)
                if min(size) - 2 * shave < SSIM_WINDOW:
                    raise ValueError(
                        f"HR image {str(hr_path)!r} ({hr_hw[0]}x{hr_hw[1]}, HEIGHTxWIDTH) is too small for x{scale:g}: "
                        f"the {protocol} protocol scores a {size[0]}x{size[1]} crop, shaves {shave} pixels per border "
                        f"and SSIM needs {SSIM_WINDOW}x{SSIM_WINDOW} left (remove the image or the scale)"
                    )
