"""Models by name: the bundled weights, their cards, and `load_model` for any model source.

A bundled model is a safetensors file in `liifsr/weights/` whose metadata describes it;
`ModelCard` gathers that description (architecture and the preset it is an instance of,
parameters, training recipe and data, metrics per dataset, scale and protocol,
precisions, licence), and `liifsr models` and `liifsr.list_models()` read it. Bundled
models and presets share one namespace: a bundled model named as a preset is that
preset trained, and the others name theirs in BUNDLED_PRESETS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from liifsr.checkpoint import AUTO_PRECISIONS_KEY, CheckpointError, load_model_file, read_auto_precisions, read_metadata, read_model_config
from liifsr.models import ImplicitModel, build_model
from liifsr.runtime import PRECISIONS, resolve_device

if TYPE_CHECKING:
    from liifsr.onnx_runtime import OnnxModel

DEFAULT_MODEL = "edsr-liif-relu-skip-shared"
PHOTO_MODEL = "edsr-thermal-photo"
# Short names of the two models users pick between: clean inputs, or real photographs
# (JPEG, sensor noise, blur; README, "Which model for which input").
ALIASES = {"default": DEFAULT_MODEL, "photo": PHOTO_MODEL}
LICENCE = "MIT (the weights, as the code)"
# The preset of each bundled model not named as its preset: the default, and the heat-field
# models trained by the default's recipe on clean and on degraded inputs.
BUNDLED_PRESETS = {"edsr-liif-relu-skip-shared": "edsr-liif-relu-skip", "edsr-thermal-clean": "edsr-thermal",
                   "edsr-thermal-refined": "edsr-thermal", "edsr-thermal-photo": "edsr-thermal"}


@dataclass
class Metric:
    """One measured number of a model: PSNR in dB on `dataset` at `scale` under `protocol`."""

    dataset: str
    scale: str
    protocol: str
    psnr: float


@dataclass
class ModelCard:
    name: str
    architecture: str
    parameters: int
    recipe: str  # how it was trained (config, iterations, precision, machine)
    data: str  # what it was trained on
    metrics: list[Metric] = field(default_factory=list)
    # PyTorch runs every model in fp32 and bf16 (autocast), and in fp16 on CUDA.
    precisions: tuple[str, ...] = PRECISIONS
    # What `--precision auto` may pick: fp32 alone for a model whose PSNR bf16 moves by more
    # than 0.01 dB (the file's `auto_precisions` metadata; README, "Which precision").
    auto_precisions: tuple[str, ...] = PRECISIONS
    licence: str = LICENCE
    path: Path | None = None
    preset: str | None = None  # the preset it is an instance of (`liifsr train`'s `model:`)

    def lines(self) -> list[str]:
        """The card as `liifsr models` prints it."""
        lines = [f"architecture: {self.architecture}"] + ([f"preset: {self.preset}"] if self.preset else [])
        lines += [f"parameters: {self.parameters:,}", f"trained on: {self.data}", f"training: {self.recipe}"]
        lines += [f"{m.dataset} {m.scale}: {m.psnr:.2f} dB ({m.protocol})" for m in self.metrics]
        auto = "" if self.auto_precisions == self.precisions else f" (auto picks {', '.join(self.auto_precisions)})"
        lines += [f"precisions: {', '.join(self.precisions)}{auto}", f"licence: {self.licence}"]
        return lines


def card_from_metadata(name: str, meta: dict[str, str], path: Path | None = None, preset: str | None = None) -> ModelCard:
    """A model file's card from its metadata: `metrics` (a JSON list of Metric fields), or
    the older `set5_x4_psnr`, `val_psnr` and `val_detail` keys."""
    config = read_model_config(meta, path or Path(name))
    with torch.device("meta"):
        parameters = build_model(config).num_parameters()
    if "metrics" in meta:
        metrics = [Metric(**entry) for entry in json.loads(meta["metrics"])]
    else:
        metrics = []
        if "set5_x4_psnr" in meta:
            metrics.append(Metric("Set5", "x4", "Y channel, shave = scale", float(meta["set5_x4_psnr"])))
        if "val_psnr" in meta:
            metrics.append(Metric("held-out validation", "x2 and x4", meta.get("val_detail", "mean RGB PSNR"), float(meta["val_psnr"])))
    auto = read_auto_precisions(meta, path or Path(name)) if AUTO_PRECISIONS_KEY in meta else PRECISIONS
    return ModelCard(name, config.describe(), parameters, meta.get("training", "unknown"), meta.get("trained_on", "unknown"),
                     metrics, auto_precisions=auto, licence=meta.get("licence", LICENCE), path=path, preset=preset)


def bundled_models() -> dict[str, Path]:
    """Names and paths of the models shipped inside the package."""
    folder = resources.files("liifsr") / "weights"
    if not folder.is_dir():
        return {}
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".safetensors")}


def bundled_preset(name: str) -> str:
    """The preset that the bundled model `name` is an instance of."""
    return BUNDLED_PRESETS.get(name, name)


def model_hint(name: str) -> str:
    """One line on which inputs the model `name` (a bundled name, an alias or a file) is
    for, naming the other choice; '' for a model that is neither of the two."""
    name = ALIASES.get(name, name)
    if name == PHOTO_MODEL:
        return "for JPEG, noisy or blurred photographs; for clean images use --model default"
    if name == DEFAULT_MODEL:
        return "for clean images; for JPEG, noisy or blurred photographs use --model photo"
    return ""


def list_models() -> list[ModelCard]:
    """The cards of the bundled models, by name."""
    return [card_from_metadata(name, read_metadata(path), path, bundled_preset(name))
            for name, path in sorted(bundled_models().items())]


def load_model(name_or_path: str | Path | None = None, device: str | torch.device = "cpu") -> ImplicitModel | OnnxModel:
    """A bundled model name, one of our `.safetensors` files or a LIIF `.pth`, in eval mode
    on `device` (or an `.onnx` file from `liifsr export`, as a `liifsr.onnx_runtime.OnnxModel`
    on the CPU). With no argument, the default bundled model."""
    device = resolve_device(device)
    source = DEFAULT_MODEL if name_or_path is None else name_or_path
    source = ALIASES.get(source, source) if isinstance(source, str) else source
    bundled = bundled_models()
    if isinstance(source, str) and source in bundled:
        path = bundled[source]
    else:
        path = Path(source)
        if not path.exists():
            names = ", ".join(sorted(bundled) + sorted(ALIASES)) or "none"
            raise CheckpointError(f"unknown model {str(source)!r}: not a bundled model ({names}) nor an existing file")
        if path.is_dir():
            raise CheckpointError(f"model path {str(path)!r} is a directory (give a .safetensors or .pth file)")
    if path.suffix == ".onnx":  # `liifsr export` output, run by onnxruntime on the CPU
        from liifsr.onnx_runtime import load_onnx_model

        return load_onnx_model(path)
    return load_model_file(path).to(device)
