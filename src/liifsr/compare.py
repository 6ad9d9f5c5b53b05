"""`liifsr compare`: side-by-side crops of several models, like the paper's Figures 5 and 6.

Two modes:

* default (Figure 6): the image is the HR; it is downsampled with LIIF's protocol
  (`liif_downsample`) and every method upscales it back. The box is in HR pixels; the
  panels are the LR input (whole, with the box marked), bicubic, each model and the HR
  crop, each captioned with its PSNR on the box (RGB, no border shaved).
* `--lr-crop` (Figure 5): the box region of the image itself is the LR input, as in the
  paper's Figure 5; there is no ground truth, so no PSNR. The first panel shows the
  whole image with the box marked, the second the LR crop, the others the crop
  upscaled by `scale`.

With `--degrade SPEC` (e.g. `jpeg:75`, see liifsr.degrade) the LR input of either mode is
degraded before any method (bicubic too) sees it, its noise drawn from the image's file
name and the scale, so that the same command gives the same figure; the LR panel and the
footnote name the degradation.

Models decode only the output pixels inside the box (the encoder runs on the LR
window those pixels read, plus its receptive margin), so a x30 figure of a large image
costs no more than its crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from liifsr.checks import check_scale, output_size
from liifsr.decoding import DecodeOptions, open_models
from liifsr.degrade import Step, apply_steps, image_generator, spec_text
from liifsr.evaluation.datasets import parse_degrade
from liifsr.files import atomic_write, check_distinct_outputs, check_output_path
from liifsr.imageio import read_image
from liifsr.metrics import psnr
from liifsr.resize import BICUBIC, bicubic_upsample, liif_downsample
from liifsr.runtime import AUTO
from liifsr.tiling import Span, upscale_tensor

if TYPE_CHECKING:
    from liifsr.models import ImplicitModel
    from liifsr.onnx_runtime import OnnxModel

FIGURE_FORMATS = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
DEFAULT_SCALE = 30.0  # the paper's figures
# Display geometry, in pixels at DPI: panels share one height, clamped to this range.
DPI = 100
MIN_PANEL_HEIGHT, MAX_PANEL_HEIGHT = 240, 480
MIN_SLOT_WIDTH = 170  # room for a caption under narrow panels
PAD, CAPTION_HEIGHT, FOOTNOTE_HEIGHT = 10, 46, 26
BOX_COLOR = "red"


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    def crop(self, image: Tensor) -> Tensor:
        return image[..., self.y : self.y + self.h, self.x : self.x + self.w]


@dataclass
class Panel:
    image: np.ndarray  # (H, W, 3) float in [0, 1]
    caption: str
    # Rectangle to draw, in this image's pixel units (x, y, w, h); None for none.
    mark: tuple[float, float, float, float] | None = None


# --- inputs -----------------------------------------------------------------------


def check_box(box: Box, height: int, width: int, what: str) -> None:
    if box.x + box.w > width or box.y + box.h > height:
        raise ValueError(
            f"box {box.x},{box.y},{box.w},{box.h} does not fit in the {width}x{height} {what} (x + w <= {width}, y + h <= {height})"
        )


def degraded_input(lr: Tensor, steps: tuple[Step, ...], image_name: str, scale: float) -> Tensor:
    """The LR input (1, 3, h, w) with the chain applied (unchanged for none), the noise
    drawn from the image's name and the scale (as a float: 4 and 4.0 are one scale): the
    same figure on every run."""
    return apply_steps(lr, steps, image_generator(image_name, float(scale), steps)) if steps else lr


def input_caption(lr: Tensor, steps: tuple[Step, ...]) -> str:
    """'LR input (WxH)', with the degradation on a second line where there is one."""
    size = f"LR input ({lr.shape[-1]}x{lr.shape[-2]})"
    return f"{size}\n{spec_text(steps)}" if steps else size


def display_name(name: str) -> str:
    """Model files are captioned by file stem; bundled names as they are."""
    return Path(name).stem if Path(name).suffix in (".safetensors", ".pth", ".pt") else name


# --- decoding ---------------------------------------------------------------------


@torch.no_grad()
def decode_box(model: ImplicitModel | OnnxModel, lr: Tensor, out_hw: tuple[int, int], box: Box,
               decoding: DecodeOptions = DecodeOptions()) -> Tensor:
    """The pixels inside `box` of `model`'s (H, W) = `out_hw` output for `lr` (1, 3, h, w) in [0, 1].

    Equal to cropping `upscale_tensor(model, lr, out_hw)` up to float rounding (the encoder
    runs over the window the box reads), without decoding the rest.
    """
    region = (Span(box.y, box.y + box.h), Span(box.x, box.x + box.w))
    return upscale_tensor(model, lr, out_hw, region=region, **decoding.tiling_arguments())


# --- the two modes ----------------------------------------------------------------


def to_array(image: Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) tensor -> (H, W, 3) float array for display."""
    return image.reshape(-1, *image.shape[-2:]).permute(1, 2, 0).cpu().numpy()


def downsampled_panels(image: Tensor, names: list[str], models: dict[str, ImplicitModel | OnnxModel], scale: float, box: Box,
                       steps: tuple[Step, ...] = (), image_name: str = "",
                       decoding: DecodeOptions = DecodeOptions()) -> list[Panel]:
    """Figure 6: LR by LIIF's protocol (then degraded by `steps`), every method upscales
    it back, PSNR on the box."""
    hr, lr = liif_downsample(image, scale)
    check_box(box, hr.shape[-2], hr.shape[-1], f"HR image (cropped to a multiple of x{scale:g})")
    out_hw = (hr.shape[-2], hr.shape[-1])
    lr = degraded_input(lr.unsqueeze(0), steps, image_name, scale)
    target = box.crop(hr).unsqueeze(0)
    sy, sx = out_hw[0] / lr.shape[-2], out_hw[1] / lr.shape[-1]
    panels = [
        Panel(
            to_array(lr),
            input_caption(lr, steps),
            (box.x / sx, box.y / sy, box.w / sx, box.h / sy),
        )
    ]
    for name in [BICUBIC] + [n for n in names if n != BICUBIC]:
        if name == BICUBIC:
            # MATLAB bicubic of the whole image (cheap), rounded to uint8 as in `evaluate`.
            pred = box.crop(bicubic_upsample(lr, out_hw))
        else:
            pred = decode_box(models[name], lr, out_hw, box, decoding)
        panels.append(Panel(to_array(pred), f"{display_name(name)}\n{psnr(pred, target):.2f} dB"))
    panels.append(Panel(to_array(target), "HR\n(ground truth)"))
    return panels


def lr_crop_panels(image: Tensor, names: list[str], models: dict[str, ImplicitModel | OnnxModel], scale: float, box: Box,
                   steps: tuple[Step, ...] = (), image_name: str = "",
                   decoding: DecodeOptions = DecodeOptions()) -> list[Panel]:
    """Figure 5: the box of the image itself (degraded by `steps`) is the LR input; no
    ground truth, no PSNR."""
    check_box(box, image.shape[-2], image.shape[-1], "image")
    lr = degraded_input(box.crop(image).unsqueeze(0), steps, image_name, scale)
    out_hw = output_size((box.h, box.w), scale, None)
    panels = [
        Panel(
            to_array(image),
            f"image ({image.shape[-1]}x{image.shape[-2]}),\nboxed {box.w}x{box.h} = LR input",
            (box.x, box.y, box.w, box.h),
        ),
        Panel(to_array(lr), input_caption(lr, steps)),
    ]
    for name in [BICUBIC] + [n for n in names if n != BICUBIC]:
        if name == BICUBIC:
            pred = bicubic_upsample(lr, out_hw)
        else:
            pred = upscale_tensor(models[name], lr, out_hw, **decoding.tiling_arguments())
        panels.append(Panel(to_array(pred), f"{display_name(name)}\n({out_hw[1]}x{out_hw[0]})"))
    return panels


# --- layout -----------------------------------------------------------------------


def render(panels: list[Panel], footnote: str, path: Path) -> None:
    """Panels side by side at one height, captions below, written atomically to `path`."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    crop_height = panels[-1].image.shape[0]
    height = min(max(crop_height, MIN_PANEL_HEIGHT), MAX_PANEL_HEIGHT)
    widths = [height * p.image.shape[1] / p.image.shape[0] for p in panels]
    slots = [max(w, MIN_SLOT_WIDTH) for w in widths]
    fig_w = sum(slots) + PAD * (len(panels) + 1)
    fig_h = PAD + height + CAPTION_HEIGHT + FOOTNOTE_HEIGHT
    # A bare Figure (no pyplot) keeps no global state and needs no display.
    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI, facecolor="white")
    bottom = FOOTNOTE_HEIGHT + CAPTION_HEIGHT
    left = PAD
    for panel, width, slot in zip(panels, widths, slots):
        x0 = left + (slot - width) / 2
        ax = fig.add_axes((x0 / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
        # Show pixels as pixels when enlarged; smooth only when shrinking a large image.
        interpolation = "nearest" if height >= panel.image.shape[0] else "antialiased"
        ax.imshow(np.clip(panel.image, 0, 1), interpolation=interpolation)
        ax.set_xticks([])
        ax.set_yticks([])
        if panel.mark is not None:
            x, y, w, h = panel.mark
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor=BOX_COLOR, linewidth=2))
        fig.text((left + slot / 2) / fig_w, (bottom - 6) / fig_h, panel.caption, ha="center", va="top", fontsize=11)
        left += slot + PAD
    fig.text(PAD / fig_w, 6 / fig_h, footnote, ha="left", va="bottom", fontsize=9, color="dimgray")
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lower().lstrip(".").replace("jpg", "jpeg"), dpi=DPI)


def compare(
    image_path: str | Path,
    models: list[str],
    scale: float,
    box: Box,
    out: str | Path,
    lr_crop: bool = False,
    device: str = "cpu",
    precision: str = AUTO,
    chunk_size: int | None = None,
    tile_size: int | None = None,
    degrade: str | None = None,
) -> Path:
    """Build and write the comparison figure; returns its path. `degrade`: a chain
    (liifsr.degrade's spec, e.g. 'jpeg:75') applied to the LR input."""
    check_scale(scale, at_least=1)
    decoding = DecodeOptions(chunk_size, tile_size, precision, progress=None)  # 'auto' resolves per model as it runs
    steps = parse_degrade(degrade)
    dest = check_output_path(out, FIGURE_FORMATS, "figure")
    check_distinct_outputs([(image_path, dest)])
    loaded = torch.from_numpy(read_image(image_path).rgb).permute(2, 0, 1).contiguous()
    opened = open_models([name for name in models if name != BICUBIC], device, precision)  # a bad one fails before any work
    loaded_models = {name: model.model for name, model in opened.items()}
    image_name = Path(image_path).name
    inputs = f", then degraded by {spec_text(steps)}" if steps else ""
    if lr_crop:
        panels = lr_crop_panels(loaded, models, loaded_models, scale, box, steps=steps, image_name=image_name, decoding=decoding)
        footnote = (f"x{scale:g}: the boxed region of the image is the LR input{inputs} "
                    "(no downsampling, no ground truth).")
    else:
        panels = downsampled_panels(loaded, models, loaded_models, scale, box, steps=steps, image_name=image_name, decoding=decoding)
        footnote = (
            f"x{scale:g}: LR made by LIIF's bicubic downsampling{inputs}; PSNR on the boxed region, RGB, no border shaved."
        )
    render(panels, footnote, dest)
    return dest
