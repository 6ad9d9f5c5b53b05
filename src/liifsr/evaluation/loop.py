"""Scoring methods (models and bicubic) on datasets: `evaluate` returns one record per
(method, dataset, scale)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from liifsr.decoding import DecodeOptions, OpenedModel, open_models
from liifsr.degrade import Step, spec_text
from liifsr.evaluation.datasets import (
    PROTOCOL_TEXT,
    EvalSet,
    check_evaluation_scale,
    check_images,
    degrade_lr,
    find_dataset,
    hr_images,
    make_pair,
    parse_degrade,
    resolve_protocol,
    spread_subset,
    to_float,
)
from liifsr.metrics import calc_psnr, edge_slope, edge_width, ssim
from liifsr.progress import progress_bar
from liifsr.resize import BICUBIC, bicubic_upsample
from liifsr.runtime import resolve_device

# The stable record format other tools read: key -> type (CSV's columns). New keys go
# last, so that CSV readers by position keep working. `edge_width` and `edge_slope` are
# null where no image has an edge (metrics.edge_width, metrics.edge_slope); `degrade` is the LR inputs' degradation
# ('clean' for none, else the chain as `liifsr evaluate --degrade` takes it).
RECORD_KEYS: dict[str, type] = {
    "model": str,
    "dataset": str,
    "protocol": str,
    "precision": str,
    "scale": float,
    "psnr": float,
    "ssim": float,
    "images": int,
    "seconds": float,
    "edge_width": float,
    "degrade": str,
    "edge_slope": float,
}
# JSON records hold the per-image scores too (for paired statistics: evaluation/paired.py),
# a list of {IMAGE_KEYS} in the dataset's sorted order.
IMAGE_KEYS: dict[str, type] = {"image": str, "psnr": float, "ssim": float, "edge_width": float, "edge_slope": float}
JSON_KEYS: dict[str, type] = {**RECORD_KEYS, "per_image": list}

# A method maps an LR image (1, 3, h, w) float in [0, 1] and an output (H, W) to the
# prediction (1, 3, H, W) in [0, 1] on the CPU.
Method = Callable[[Tensor, tuple[int, int]], Tensor]



def load_methods(names: list[str], device: torch.device, decoding: DecodeOptions) -> dict[str, Method]:
    """'bicubic' and models (bundled names or files) as Methods, once each in order: every
    model loaded and its precision checked before any work (CheckpointError for unknown ones)."""
    opened = open_models([name for name in names if name != BICUBIC], device, decoding.precision)
    return {name: bicubic_upsample if name == BICUBIC else model_method(opened[name], decoding)
            for name in dict.fromkeys(names)}


def model_method(opened: OpenedModel, decoding: DecodeOptions) -> Method:
    """An opened model as a Method: the tiled upscale, decoded as `decoding` asks."""
    from liifsr.tiling import upscale_tensor

    arguments = {**decoding.tiling_arguments(), "precision": opened.precision}

    def method(lr: Tensor, size: tuple[int, int]) -> Tensor:
        return upscale_tensor(opened.model, lr, size, **arguments)

    return method


class ImageScore(NamedTuple):
    """One method's scores on one image (the edge scores None where the image has no edge)."""

    psnr: float
    ssim: float
    edge_width: float | None
    edge_slope: float | None
    seconds: float


def mean_or_none(values: list[float | None]) -> float | None:
    """The mean of the values that are not None (None if none is)."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


@dataclass
class Tally:
    """The per-image scores of one (model, dataset, scale) record, in image order."""

    images: list[str] = field(default_factory=list)
    scores: list[ImageScore] = field(default_factory=list)

    def add(self, image: str, scores: ImageScore) -> None:
        self.images.append(image)
        self.scores.append(scores)

    def record(self, model: str, dataset: str, protocol: str, scale: float, degrade: str) -> dict[str, Any]:
        n = max(len(self.scores), 1)
        return {
            "model": model,
            "dataset": dataset,
            "protocol": protocol,
            "scale": float(scale),
            "psnr": sum(s.psnr for s in self.scores) / n,
            "ssim": sum(s.ssim for s in self.scores) / n,
            "images": len(self.scores),
            "seconds": round(sum(s.seconds for s in self.scores), 3),
            "edge_width": mean_or_none([s.edge_width for s in self.scores]),
            "degrade": degrade,
            "edge_slope": mean_or_none([s.edge_slope for s in self.scores]),
            "per_image": [{"image": image, "psnr": s.psnr, "ssim": s.ssim, "edge_width": s.edge_width,
                           "edge_slope": s.edge_slope}
                          for image, s in zip(self.images, self.scores)],
        }


def score(method: Method, hr: Tensor, lr: Tensor, protocol: str, scale: float) -> ImageScore:
    """The scores of one method on one pair; hr and lr are uint8 (3, H, W)."""
    start = time.perf_counter()
    target = to_float(hr)
    pred = method(to_float(lr), (hr.shape[-2], hr.shape[-1])).cpu().float()
    psnr = float(calc_psnr(pred, target, dataset=protocol, scale=scale))
    similarity = ssim(pred, target, scale=scale, protocol=protocol)
    width = edge_width(pred, target, scale=scale, protocol=protocol)
    slope = edge_slope(pred, target, scale=scale, protocol=protocol)
    return ImageScore(psnr, similarity, width, slope, time.perf_counter() - start)


def evaluate(
    models: list[str],
    datasets: list[str | Path],
    scales: list[float],
    protocol: str = "auto",
    device: str = "cpu",
    progress: bool = True,
    precision: str = "fp32",
    images: int | None = None,
    chunk_size: int | None = None,
    tile_size: int | None = None,
    degrade: str | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every model on every dataset at every scale; one record per combination.

    `protocol` is 'benchmark', 'div2k' or 'auto' (by folder layout and name; see the
    module's docstring); with `progress` the choice for each dataset is printed to
    stderr before any work. Each pair of images is made once and shared by all models.
    Models run in `precision` ('fp32', or 'bf16' autocast: see the README for its
    measured PSNR difference). Records come ordered by dataset, model, then scale; `seconds` is the time spent
    upscaling and scoring (reading images and making LR inputs excluded). With `images`,
    each dataset is scored on that many images (`spread_subset`), named "SET (N of M)".
    With `degrade` (a chain such as 'jpeg:75' or 'blur:1.0,noise:5,jpeg:85', see
    liifsr.degrade), every LR input, after the protocol made it and before any method
    (bicubic too) sees it, is degraded with noise drawn per image (`degrade_lr`), and
    the records name the chain in `degrade`. Records hold the per-image scores in
    `per_image`, the mean 10-90 % edge width (metrics.edge_width) in `edge_width` and the
    mean edge slope (metrics.edge_slope) in `edge_slope`.
    """
    steps = parse_degrade(degrade)  # a bad chain fails here, before any work
    if not models:
        raise ValueError("give at least one model (a bundled name, a model file, or 'bicubic')")
    if not scales:
        raise ValueError("give at least one scale")
    for scale in scales:
        check_evaluation_scale(scale)
    sets = [find_dataset(d) for d in datasets]  # validate every dataset before any work
    names = [d.name for d in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"datasets must have distinct folder names (records are named by folder), got {names}")
    every = {d: hr_images(d) for d in sets}
    files = {d: spread_subset(every[d], images) for d in sets}
    labels = {d: d.name if len(files[d]) == len(every[d]) else f"{d.name} ({len(files[d])} of {len(every[d])})" for d in sets}
    protocols = {d: resolve_protocol(protocol, d) for d in sets}
    decoding = DecodeOptions(chunk_size, tile_size, precision, progress=None if progress else False)
    methods = load_methods(models, resolve_device(device), decoding)
    if progress:
        for dataset, (chosen, why) in protocols.items():
            print(f"liifsr evaluate: {dataset.name}: {PROTOCOL_TEXT[chosen]} ({why})", file=sys.stderr)
    for dataset in sets:
        check_images(dataset, files[dataset], scales, protocols[dataset][0], progress)

    records = []
    for dataset in sets:
        chosen = protocols[dataset][0]
        for scale in scales:
            tallies = _evaluate_one(dataset, files[dataset], scale, chosen, methods, progress, steps)
            records += [tallies[name].record(name, labels[dataset], chosen, scale, spec_text(steps)) for name in methods]
    for record in records:
        record["precision"] = "-" if record["model"] == BICUBIC else precision
    order = {name: i for i, name in enumerate(methods)}
    position = {labels[d]: i for i, d in enumerate(sets)}
    return sorted(records, key=lambda r: (position[r["dataset"]], order[r["model"]], r["scale"]))


def _evaluate_one(
    dataset: EvalSet,
    files: list[Path],
    scale: float,
    protocol: str,
    methods: dict[str, Method],
    progress: bool,
    steps: tuple[Step, ...] = (),
) -> dict[str, Tally]:
    tallies = {name: Tally() for name in methods}
    bar = progress_bar(files, desc=f"{dataset.name} x{scale:g}", unit="img", enabled=None if progress else False)
    with torch.no_grad(), bar:
        for hr_path in bar:
            hr, lr = make_pair(dataset, hr_path, scale)
            # Keyed by the folder's name, not the record's label: a subset (--images)
            # gets each image's own degradation, the one the full set gets.
            lr = degrade_lr(lr, steps, f"{dataset.name}/{hr_path.name}", scale)
            for name, method in methods.items():
                tallies[name].add(hr_path.name, score(method, hr, lr, protocol, scale))
            if len(tallies) == 1:  # one method: show its running mean
                (only,) = tallies.values()
                bar.set_postfix(psnr=f"{sum(s.psnr for s in only.scores) / len(only.scores):.2f}")
    return tallies
