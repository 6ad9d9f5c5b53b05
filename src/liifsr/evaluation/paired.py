"""Paired differences between two models from `liifsr evaluate` JSON reports: per dataset,
protocol, input degradation and scale, the mean difference B - A of a score over the same
images, with a 95 % bootstrap interval.

    python tools/paired_stats.py REPORT.json [...] [--a MODEL [...]] [--b MODEL [...]]
        [--metric psnr|ssim|edge_width|edge_slope] [--precision P] [--resamples 10000] [--seed 0]

A model is named as in the records' `model` field, or by its file's name or stem
(`runs/models/relu-seed0.safetensors` is also `relu-seed0`); several names on one side
are that model's seeds (independently trained runs). Without --a and --b the reports
must hold exactly two models: A is the first, B the second.

For one cell (dataset, protocol, inputs, scale) with A's seeds' scores a[s, i] and B's
b[s, i] on images i = 1..n:

* the estimate is mean_i (mean_s b[s, i] - mean_s a[s, i]), the mean paired difference;
* the interval is the 2.5 and 97.5 percentiles of that statistic over `resamples`
  bootstrap resamples (Efron and Tibshirani, "An Introduction to the Bootstrap", 1993,
  the percentile interval): each resample draws A's seeds and B's seeds with replacement,
  then n images with replacement (the same images for both sides: the pairing is kept),
  so the interval covers both the test images' sampling and, where there are several
  seeds, the training runs'. With one seed per side it covers the images only.

Every cell draws from its own generator, seeded by `--seed` and the cell's name, so a
cell's interval does not depend on which other cells the reports hold, and the same
reports always give the same table. Images with no value (an edge width where the ground
truth has no edge) are left out of their cell for both sides.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

METRICS = {"psnr": ("PSNR (dB)", 2, 3), "ssim": ("SSIM", 4, 4), "edge_width": ("edge width (HR pixels)", 2, 3),
           "edge_slope": ("edge slope (output / ground truth)", 3, 4)}
DEFAULT_RESAMPLES = 10_000
CHUNK = 1000  # resamples drawn at once
LEVEL = 0.95


@dataclass(frozen=True)
class Cell:
    """What a difference is taken over: one dataset, protocol, input degradation and scale."""

    dataset: str
    protocol: str
    degrade: str
    scale: float

    def __str__(self) -> str:
        return f"{self.dataset} x{self.scale:g} ({self.protocol} protocol, {self.degrade} inputs)"


# image name -> score (None where the score is undefined)
Scores = dict[str, float | None]


@dataclass(frozen=True)
class Paired:
    """The scores of both sides on one cell's common images: (seeds, images) arrays."""

    cell: Cell
    images: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray


@dataclass(frozen=True)
class Difference:
    cell: Cell
    images: int
    seeds_a: int
    seeds_b: int
    mean_a: float
    mean_b: float
    estimate: float
    low: float
    high: float


# --- reading reports --------------------------------------------------------------------


def read_reports(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The records of `liifsr evaluate` JSON reports, in order; ValueError for a file that
    is not one, or a record without per-image scores."""
    records = []
    for path in paths:
        try:
            loaded = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not a JSON report ({error})") from None
        if not isinstance(loaded, list) or not all(isinstance(r, dict) for r in loaded):
            raise ValueError(f"{path} is not a `liifsr evaluate` JSON report (a list of records)")
        for record in loaded:
            if "per_image" not in record:
                raise ValueError(
                    f"{path}: the record of {record.get('model')} on {record.get('dataset')} has no per-image scores "
                    "(written before `liifsr evaluate` kept them): evaluate again"
                )
        records += loaded
    return records


def cell_of(record: dict[str, Any]) -> Cell:
    return Cell(record["dataset"], record["protocol"], record.get("degrade", "clean"), float(record["scale"]))


def model_names(records: list[dict[str, Any]]) -> list[str]:
    """The distinct `model` fields, in the order the reports give them."""
    return list(dict.fromkeys(r["model"] for r in records))


def resolve_model(records: list[dict[str, Any]], name: str) -> str:
    """The records' model that `name` names: the field itself, or its file's name or stem."""
    models = model_names(records)
    if name in models:
        return name
    matches = [m for m in models if name in (Path(m).name, Path(m).stem)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ValueError(f"no model {name!r} in the reports (they hold: {', '.join(models)})")
    raise ValueError(f"{name!r} names several models of the reports ({', '.join(matches)}): give the full name")


def model_scores(records: list[dict[str, Any]], model: str, metric: str) -> dict[Cell, Scores]:
    """One model's per-image `metric` in each cell; ValueError where a cell has two records."""
    table: dict[Cell, Scores] = {}
    for record in records:
        if record["model"] != model:
            continue
        cell = cell_of(record)
        if cell in table:
            raise ValueError(
                f"{model} has two records for {cell} (e.g. two precisions, or one report given twice): "
                "give each once, or choose one with --precision"
            )
        table[cell] = {entry["image"]: entry.get(metric) for entry in record["per_image"]}
    return table


def pair_cells(side_a: list[dict[Cell, Scores]], side_b: list[dict[Cell, Scores]]) -> tuple[list[Paired], list[Cell]]:
    """(the cells every seed of both sides has, as arrays over their common images; the
    cells some seed lacks). ValueError where seeds scored different images of a cell."""
    seeds = side_a + side_b
    everywhere = [cell for cell in seeds[0] if all(cell in s for s in seeds)]
    partial = [cell for cell in dict.fromkeys(c for s in seeds for c in s) if cell not in everywhere]
    paired = []
    for cell in everywhere:
        image_sets = {tuple(sorted(s[cell])) for s in seeds}
        if len(image_sets) > 1:
            raise ValueError(f"{cell}: the reports scored different images (e.g. another --images): pair like with like")
        images = tuple(name for name in seeds[0][cell] if all(s[cell][name] is not None for s in seeds))
        if not images:
            continue
        a = np.array([[s[cell][name] for name in images] for s in side_a], dtype=np.float64)
        b = np.array([[s[cell][name] for name in images] for s in side_b], dtype=np.float64)
        paired.append(Paired(cell, images, a, b))
    return paired, partial


# --- the statistics ---------------------------------------------------------------------


def paired_difference(a: np.ndarray, b: np.ndarray) -> float:
    """mean_i (mean_s b[s, i] - mean_s a[s, i]) of (seeds, images) arrays."""
    return float(np.mean(b.mean(axis=0) - a.mean(axis=0)))


def bootstrap_differences(a: np.ndarray, b: np.ndarray, resamples: int, generator: np.random.Generator) -> np.ndarray:
    """`resamples` values of `paired_difference` over resampled seeds (A's and B's, with
    replacement), then resampled images (with replacement, the same for both sides).
    Drawn CHUNK resamples at a time (A's seeds, B's seeds, then images), which bounds the
    memory and fixes the order of the draws."""
    draws = []
    for start in range(0, resamples, CHUNK):
        count = min(CHUNK, resamples - start)
        seeds_a = generator.integers(0, a.shape[0], size=(count, a.shape[0]))
        seeds_b = generator.integers(0, b.shape[0], size=(count, b.shape[0]))
        images = generator.integers(0, a.shape[1], size=(count, a.shape[1]))
        # The mean over the drawn seeds as (how often each was drawn) @ scores.
        per_image = seed_counts(seeds_b, b.shape[0]) @ b / b.shape[0] - seed_counts(seeds_a, a.shape[0]) @ a / a.shape[0]
        draws.append(np.take_along_axis(per_image, images, axis=1).mean(axis=1))
    return np.concatenate(draws)


def seed_counts(draws: np.ndarray, seeds: int) -> np.ndarray:
    """(resamples, seeds) counts of each seed among each resample's draws."""
    return (draws[:, :, None] == np.arange(seeds)).sum(axis=1).astype(np.float64)


def cell_generator(seed: int, cell: Cell) -> np.random.Generator:
    """A generator of its own for each cell, so a cell's interval is the same whatever
    other cells are computed."""
    return np.random.default_rng([seed, zlib.crc32(str(cell).encode())])


def difference(paired: Paired, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = LEVEL) -> Difference:
    """The cell's mean paired difference B - A with its percentile bootstrap interval."""
    draws = bootstrap_differences(paired.a, paired.b, resamples, cell_generator(seed, paired.cell))
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return Difference(paired.cell, len(paired.images), paired.a.shape[0], paired.b.shape[0], float(paired.a.mean()),
                      float(paired.b.mean()), paired_difference(paired.a, paired.b), float(low), float(high))


# --- the table --------------------------------------------------------------------------


def markdown_row(cells: Sequence[str]) -> str:
    """One line of a Markdown table (as reports.markdown_row, whose module imports torch:
    this tool reads JSON and needs numpy only)."""
    return "| " + " | ".join(cells) + " |"



def sign_text(d: Difference) -> str:
    """Where the interval lies: wholly above 0 (B's score higher), wholly below, or across it."""
    if d.low > 0:
        return "above 0"
    if d.high < 0:
        return "below 0"
    return "includes 0"


def format_table(differences: list[Difference], metric: str, a_names: list[str], b_names: list[str],
                 resamples: int, seed: int) -> str:
    title, digits, diff_digits = METRICS[metric]
    lines = [
        f"Paired differences of {title}, B - A by image: A = {', '.join(a_names)}; B = {', '.join(b_names)}. "
        f"{LEVEL * 100:g} % interval: percentile bootstrap over seeds, then images, {resamples} resamples, seed {seed}.",
        "",
        markdown_row(["Dataset", "Protocol", "Inputs", "Scale", "Images", "Seeds A / B", "A", "B", "B - A",
                      f"{LEVEL * 100:g} % interval", "Interval vs 0"]),
        markdown_row(["---", "---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---", "---"]),
    ]
    for d in differences:
        lines.append(markdown_row([
            d.cell.dataset, d.cell.protocol, d.cell.degrade, f"x{d.cell.scale:g}", str(d.images),
            f"{d.seeds_a} / {d.seeds_b}", f"{d.mean_a:.{digits}f}", f"{d.mean_b:.{digits}f}",
            f"{d.estimate:+.{diff_digits}f}", f"[{d.low:+.{diff_digits}f}, {d.high:+.{diff_digits}f}]", sign_text(d),
        ]))
    return "\n".join(lines) + "\n"


def paired_stats(records: list[dict[str, Any]], a_names: list[str] | None, b_names: list[str] | None,
                 metric: str = "psnr", resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 precision: str | None = None) -> tuple[str, list[Difference], list[Cell]]:
    """(the Markdown table, its rows, the cells left out because a seed lacks them)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (choose one of: {', '.join(METRICS)})")
    if resamples < 1:
        raise ValueError(f"bad --resamples {resamples}: give a number >= 1")
    if precision is not None:
        records = [r for r in records if r["precision"] in (precision, "-")]  # bicubic's is '-'
    if a_names is None and b_names is None:
        models = model_names(records)
        if len(models) != 2:
            raise ValueError(f"the reports hold {len(models)} models ({', '.join(models)}): name A's and B's with --a and --b")
        a_names, b_names = [models[0]], [models[1]]
    if not a_names or not b_names:
        raise ValueError("name the models of both sides: --a MODEL [MODEL ...] --b MODEL [MODEL ...]")
    a_models = [resolve_model(records, name) for name in a_names]
    b_models = [resolve_model(records, name) for name in b_names]
    for side in (a_models, b_models):
        if len(set(side)) != len(side):
            raise ValueError(f"a model is named twice on one side: {', '.join(side)}")
    if set(a_models) & set(b_models):
        raise ValueError(f"{', '.join(sorted(set(a_models) & set(b_models)))} is on both sides")
    paired, partial = pair_cells([model_scores(records, m, metric) for m in a_models],
                                 [model_scores(records, m, metric) for m in b_models])
    if not paired:
        raise ValueError("no dataset and scale has scores of every model named: nothing to pair")
    differences = [difference(p, resamples, seed) for p in paired]
    return format_table(differences, metric, a_names, b_names, resamples, seed), differences, partial


# --- command line -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paired_stats",
        description="Mean paired difference B - A per dataset and scale, with a 95 %% bootstrap interval "
        "(over seeds, then images), from `liifsr evaluate --out X.json` reports.",
    )
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT", help="`liifsr evaluate` JSON reports")
    parser.add_argument("--a", nargs="+", metavar="MODEL", help="model A (several: its seeds), as the records name it "
                        "or by file name or stem; default: the reports' first model of two")
    parser.add_argument("--b", nargs="+", metavar="MODEL", help="model B (several: its seeds); default: the second")
    parser.add_argument("--metric", choices=sorted(METRICS), default="psnr", help="the per-image score (default psnr)")
    parser.add_argument("--precision", help="use only the records of this precision (bf16, fp32; bicubic's always)")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        table, _, partial = paired_stats(read_reports(args.reports), args.a, args.b, args.metric, args.resamples,
                                         args.seed, args.precision)
    except (ValueError, OSError) as error:
        print(f"paired_stats: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    for cell in partial:
        print(f"paired_stats: {cell} left out: not every model named has it", file=sys.stderr)
    print(table, end="")
    return 0


__all__ = ["Cell", "Difference", "bootstrap_differences", "difference", "main", "paired_difference", "paired_stats",
           "read_reports"]
