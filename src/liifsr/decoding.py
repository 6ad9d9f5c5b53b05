"""The set-up every decoding run shares, written once for `upscale`, `evaluate`, `compare`
and `serve`: how it decodes (`DecodeOptions`: chunk, tile, precision, progress) and the
model it decodes with (`open_model`: the device resolved, the model loaded, the
precision resolved for that model and checked, and a slow one warned about)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from liifsr.checks import check_model_precision, check_tuning
from liifsr.runtime import resolve_device, resolve_precision, warn_precision

if TYPE_CHECKING:
    from liifsr.models import ImplicitModel
    from liifsr.onnx_runtime import OnnxModel


@dataclass(frozen=True)
class DecodeOptions:
    """How a model decodes: `chunk` queries at once and LR tiles of side `tile` (None: the
    defaults of `liifsr.tiling`), in `precision` ('auto' resolved per model as it runs),
    with a progress bar where `progress` (True: always, None: on a terminal only)."""

    chunk: int | None = None
    tile: int | None = None
    precision: str = "fp32"  # the engine's own default (`tiling.upscale_tensor`)
    progress: bool | None = False

    def __post_init__(self) -> None:
        check_tuning(self.chunk, self.tile)

    def tiling_arguments(self) -> dict[str, Any]:
        """These options as the keyword arguments of `tiling.upscale_tensor` and `upscale_bands`."""
        return {"chunk_size": self.chunk, "tile_size": self.tile, "precision": self.precision, "progress": self.progress}


@dataclass(frozen=True)
class OpenedModel:
    """A model ready to decode: where it runs and the precision it runs in ('auto' resolved)."""

    model: ImplicitModel | OnnxModel
    device: torch.device
    precision: str


def open_model(name: str | Path | None, device: str | torch.device, precision: str, warn: bool = True) -> OpenedModel:
    """Load model `name` (a bundled name, a model file, None for the default) on `device`
    ('auto', 'cpu', 'cuda[:N]' or a torch.device) and check that it runs `precision` there
    ('auto': bf16 where the device and the model run it natively, else fp32). Errors name
    the problem in one line; with `warn`, a precision that runs emulated (bf16 on a CPU
    without bf16 instructions) is one warning line on stderr."""
    from liifsr.zoo import load_model  # the models' registry and weights: only once a model is wanted

    torch_device = resolve_device(device)
    model = load_model(name, device=torch_device)
    resolved = resolve_precision(precision, torch_device, model.precisions, model.auto_precisions)
    check_model_precision(model, torch_device, resolved)
    opened = OpenedModel(model, torch_device, resolved)
    if warn:
        warn_if_slow([opened])
    return opened


def open_models(names: Iterable[str], device: str | torch.device, precision: str) -> dict[str, OpenedModel]:
    """`open_model` for each name (once each, in order), every one loaded and checked before
    any work; a precision that runs emulated is warned about once, not once per model."""
    opened = {name: open_model(name, device, precision, warn=False) for name in dict.fromkeys(names)}
    warn_if_slow(opened.values())
    return opened


def warn_if_slow(opened: Iterable[OpenedModel]) -> None:
    """`runtime.warn_precision` once for each (device, precision) these models run in."""
    for device, precision in dict.fromkeys((item.device, item.precision) for item in opened):
        warn_precision(device, precision)
