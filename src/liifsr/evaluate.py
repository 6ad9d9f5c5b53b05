"""`liifsr evaluate`: PSNR / SSIM of models on benchmark or DIV2K folders, as LIIF measures them.

Two folder layouts are read as they are downloaded:

* EDSR's benchmark layout (`liifsr data download benchmark`): a set folder with `HR/`
  and optionally `LR_bicubic/X{s}/` (`HR/baby.png` pairs with `LR_bicubic/X2/babyx2.png`);
* DIV2K's layout (`liifsr data download div2k`): the `DIV2K` folder, holding
  `DIV2K_valid_HR/` and optionally `DIV2K_valid_LR_bicubic/X{s}/` (`0801.png` pairs with
  `X2/0801x2.png`), or the `DIV2K_valid_HR` folder itself.

Test pairs are made as LIIF makes them:

* scales up to 4 (in-domain): the LR file when the `X{s}` folder exists, else MATLAB
  bicubic `imresize` of the modcropped HR rounded to uint8 (which is how those files
  were made); the HR is cropped to s times the LR size (LIIF's paired-folder rule);
* scales above 4 (out-of-domain): LIIF's on-the-fly downsampler (`liif_downsample`).

Protocols (LIIF's `calc_psnr`): 'benchmark' is Y channel, shave = scale; 'div2k' is RGB,
shave = scale + 6; SSIM is on Y with the same shave. `--protocol auto` picks 'div2k'
for the DIV2K layout and for folders named like DIV2K, 'benchmark' otherwise; the
choice is printed for every dataset and stored in every record.

Every HR image (and pre-made LR image) is read once before any model runs: a corrupt
file, or an image too small for a scale and its shave, stops the evaluation at the
start with one line naming the file, never after hours and never with a partial
report (published averages over a subset would not be comparable). Where a full set is
too slow, `--images N` scores N images spread evenly over its sorted list, and the
records name the set with the count (e.g. "Urban100 (20 of 100)").

Grayscale HR images are read as RGB (channel replicated), as LIIF's loader does.
Models are scored on their clamped float output, as LIIF's test script does; the
built-in `bicubic` method upsamples with MATLAB `imresize` and rounds to uint8, as
the standard bicubic tables do. Per-image values are averaged over the dataset.

Reports: JSON (a list of records, see `RECORD_KEYS`), CSV (the same columns) or
Markdown laid out like the paper's Table 3 (benchmark protocol: dataset and model
rows) or Table 4 (div2k protocol: model rows), with scales above 4 grouped as
out-of-domain.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from liifsr.data import spread_indices
from liifsr.files import atomic_write, check_output_path
from liifsr.imageio import IMAGE_EXTENSIONS, read_uint8
from liifsr.metrics import SSIM_WINDOW, calc_psnr, shave_for, ssim
from liifsr.progress import progress_bar
from liifsr.resize import BICUBIC, bicubic_upsample, imresize_uint8, liif_downsample, modcrop
from liifsr.runtime import add_runtime_options, autocast, resolve_device, check_precision

PROTOCOLS = ("auto", "benchmark", "div2k")
PROTOCOL_TEXT = {
    "benchmark": "benchmark protocol (Y channel, `scale` border pixels shaved)",
    "div2k": "div2k protocol (RGB, `scale + 6` border pixels shaved; SSIM on Y)",
}
DEFAULT_SCALES = "2,3,4,6,8"
# LIIF's models are trained on x1-x4; larger scales are "out-of-domain" in its tables.
IN_DOMAIN_MAX_SCALE = 4
REPORT_FORMATS = (".md", ".csv", ".json")
# The stable record format other tools read: key -> type.
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
}

# A method maps an LR image (1, 3, h, w) float in [0, 1] and an output (H, W) to the
# prediction (1, 3, H, W) in [0, 1] on the CPU.
Method = Callable[[Tensor, tuple[int, int]], Tensor]


# --- inputs -----------------------------------------------------------------------


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
        check_scale(value)
        if value not in scales:
            scales.append(value)
    return scales


def check_scale(scale: float) -> None:
    if not math.isfinite(scale) or scale < 1 or scale != int(scale):
        raise ValueError(
            f"bad scale {scale:g}: evaluation scales must be whole numbers >= 1 "
            "(the PSNR protocols shave `scale` border pixels)"
        )


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
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} (choose one of: {', '.join(PROTOCOLS)})")
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
            hr_hw = tuple(read_uint8(hr_path).shape[-2:])
            for scale in scales:
                path = lr_file(dataset, hr_path, scale)
                lr_hw = tuple(read_uint8(path).shape[-2:]) if path is not None else None
                size, shave = scored_size(hr_hw, lr_hw, scale), shave_for(protocol, scale)
                if min(size) - 2 * shave < SSIM_WINDOW:
                    raise ValueError(
                        f"HR image {str(hr_path)!r} ({hr_hw[0]}x{hr_hw[1]}, HEIGHTxWIDTH) is too small for x{scale:g}: "
                        f"the {protocol} protocol scores a {size[0]}x{size[1]} crop, shaves {shave} pixels per border "
                        f"and SSIM needs {SSIM_WINDOW}x{SSIM_WINDOW} left (remove the image or the scale)"
                    )


# --- methods ----------------------------------------------------------------------


def load_method(name: str, device: torch.device, progress: bool = False, precision: str = "fp32") -> Method:
    """'bicubic' or a model (bundled name or file) as a Method; CheckpointError for unknown models."""
    if name == BICUBIC:
        return bicubic_upsample
    from liifsr.checkpoint import load_model
    from liifsr.inference import upscale_tensor

    model = load_model(name, device=device)

    def method(lr: Tensor, size: tuple[int, int]) -> Tensor:
        return upscale_tensor(model, lr, size, progress=None if progress else False, precision=precision)

    return method


# --- evaluation -------------------------------------------------------------------


@dataclass
class Tally:
    """Running sums for one (model, dataset, scale) record."""

    psnr: float = 0.0
    ssim: float = 0.0
    images: int = 0
    seconds: float = 0.0

    def record(self, model: str, dataset: str, protocol: str, scale: float) -> dict[str, Any]:
        n = max(self.images, 1)
        return {
            "model": model,
            "dataset": dataset,
            "protocol": protocol,
            "scale": float(scale),
            "psnr": self.psnr / n,
            "ssim": self.ssim / n,
            "images": self.images,
            "seconds": round(self.seconds, 3),
        }


def score(method: Method, hr: Tensor, lr: Tensor, protocol: str, scale: float) -> tuple[float, float, float]:
    """(psnr, ssim, seconds) of one method on one pair; hr and lr are uint8 (3, H, W)."""
    start = time.perf_counter()
    target = to_float(hr)
    pred = method(to_float(lr), (hr.shape[-2], hr.shape[-1])).cpu().float()
    psnr = float(calc_psnr(pred, target, dataset=protocol, scale=scale))
    similarity = ssim(pred, target, scale=scale, protocol=protocol)
    return psnr, similarity, time.perf_counter() - start


def evaluate(
    models: list[str],
    datasets: list[str | Path],
    scales: list[float],
    protocol: str = "auto",
    device: str = "cpu",
    progress: bool = True,
    precision: str = "fp32",
    images: int | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every model on every dataset at every scale; one record per combination.

    `protocol` is 'benchmark', 'div2k' or 'auto' (by folder layout and name; see the
    module's docstring); with `progress` the choice for each dataset is printed to
    stderr before any work. Each pair of images is made once and shared by all models.
    Models run in `precision` ('fp32', or 'bf16' autocast: see the README for its
    measured PSNR difference). Records come ordered by dataset, model, then scale; `seconds` is the time spent
    upscaling and scoring (reading images and making LR inputs excluded). With `images`,
    each dataset is scored on that many images (`spread_subset`), named "SET (N of M)".
    """
    if not models:
        raise ValueError("give at least one model (a bundled name, a model file, or 'bicubic')")
    if not scales:
        raise ValueError("give at least one scale")
    for scale in scales:
        check_scale(scale)
    sets = [find_dataset(d) for d in datasets]  # validate every dataset before any work
    names = [d.name for d in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"datasets must have distinct folder names (records are named by folder), got {names}")
    every = {d: hr_images(d) for d in sets}
    files = {d: spread_subset(every[d], images) for d in sets}
    labels = {d: d.name if len(files[d]) == len(every[d]) else f"{d.name} ({len(files[d])} of {len(every[d])})" for d in sets}
    protocols = {d: resolve_protocol(protocol, d) for d in sets}
    torch_device = resolve_device(device)
    autocast(torch_device, precision)  # an unknown precision fails here, before any work
    check_precision(torch_device, precision)
    methods = {name: load_method(name, torch_device, progress, precision) for name in dict.fromkeys(models)}
    if progress:
        for dataset, (chosen, why) in protocols.items():
            print(f"liifsr evaluate: {dataset.name}: {PROTOCOL_TEXT[chosen]} ({why})", file=sys.stderr)
    for dataset in sets:
        check_images(dataset, files[dataset], scales, protocols[dataset][0], progress)

    records = []
    for dataset in sets:
        chosen = protocols[dataset][0]
        for scale in scales:
            tallies = _evaluate_one(dataset, files[dataset], scale, chosen, methods, progress)
            records += [tallies[name].record(name, labels[dataset], chosen, scale) for name in methods]
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
) -> dict[str, Tally]:
    tallies = {name: Tally() for name in methods}
    bar = progress_bar(files, desc=f"{dataset.name} x{scale:g}", unit="img", enabled=None if progress else False)
    with torch.no_grad(), bar:
        for hr_path in bar:
            hr, lr = make_pair(dataset, hr_path, scale)
            for name, method in methods.items():
                psnr, similarity, seconds = score(method, hr, lr, protocol, scale)
                tally = tallies[name]
                tally.psnr += psnr
                tally.ssim += similarity
                tally.images += 1
                tally.seconds += seconds
            if len(tallies) == 1:  # one method: show its running mean
                (only,) = tallies.values()
                bar.set_postfix(psnr=f"{only.psnr / only.images:.2f}")
    return tallies


# --- reports ----------------------------------------------------------------------


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _scale_header(scales: list[float]) -> list[str]:
    """Two header rows, as in the paper: 'In-domain' / 'Out-of-domain' over the scale columns."""
    groups, previous = [], None
    for scale in scales:
        group = "In-domain" if scale <= IN_DOMAIN_MAX_SCALE else "Out-of-domain"
        groups.append(group if group != previous else "")
        previous = group
    return groups


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(lead: list[str], rows: list[tuple[list[str], dict[float, dict[str, Any]]]], scales: list[float], key: str) -> list[str]:
    """A Markdown table: `lead` label columns, then one column per scale."""
    digits = 2 if key == "psnr" else 4
    blank = [""] * len(lead)
    lines = [
        _row(lead + _scale_header(scales)),
        _row(["---"] * len(lead) + ["---:"] * len(scales)),
        _row(blank + [f"x{s:g}" for s in scales]),
    ]
    for labels, by_scale in rows:
        values = [f"{by_scale[s][key]:.{digits}f}" if s in by_scale else "" for s in scales]
        lines.append(_row(labels + values))
    return lines


def _index(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[float, dict[str, Any]]]:
    table: dict[tuple[str, str], dict[float, dict[str, Any]]] = {}
    for record in records:
        table.setdefault((record["dataset"], record["model"]), {})[float(record["scale"])] = record
    return table


def _benchmark_tables(records: list[dict[str, Any]]) -> list[str]:
    """Table 3's shape: one row per (dataset, model), the dataset named on its first row only."""
    scales = sorted(_unique(float(r["scale"]) for r in records))
    index = _index(records)
    datasets, models = _unique(r["dataset"] for r in records), _unique(r["model"] for r in records)
    lines = []
    for key, title in (("psnr", "PSNR (dB)"), ("ssim", "SSIM")):
        rows = []
        for dataset in datasets:
            present = [m for m in models if (dataset, m) in index]
            rows += [([dataset if i == 0 else "", m], index[(dataset, m)]) for i, m in enumerate(present)]
        lines += [f"{title}, {PROTOCOL_TEXT['benchmark']}.", ""]
        lines += _table(["Dataset", "Method"], rows, scales, key) + [""]
    return lines


def _div2k_tables(records: list[dict[str, Any]]) -> list[str]:
    """Table 4's shape: one table per dataset, model rows, scale columns."""
    index = _index(records)
    lines = []
    for dataset in _unique(r["dataset"] for r in records):
        subset = [r for r in records if r["dataset"] == dataset]
        scales = sorted(_unique(float(r["scale"]) for r in subset))
        rows = [([m], index[(dataset, m)]) for m in _unique(r["model"] for r in subset)]
        for key, title in (("psnr", "PSNR (dB)"), ("ssim", "SSIM")):
            lines += [f"{title} on {dataset}, {PROTOCOL_TEXT['div2k']}.", ""]
            lines += _table(["Method"], rows, scales, key) + [""]
    return lines


def format_markdown(records: list[dict[str, Any]]) -> str:
    """Markdown tables of `records`: Table 3's layout for the records scored with the
    benchmark protocol, Table 4's for those scored with the div2k protocol."""
    if not records:
        return "No results.\n"
    benchmark = [r for r in records if r["protocol"] == "benchmark"]
    div2k = [r for r in records if r["protocol"] == "div2k"]
    lines = (_benchmark_tables(benchmark) if benchmark else []) + (_div2k_tables(div2k) if div2k else [])
    return "\n".join(lines).rstrip() + "\n"


def format_csv(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(RECORD_KEYS), lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: record[key] for key in RECORD_KEYS} for record in records)
    return buffer.getvalue()


def format_json(records: list[dict[str, Any]]) -> str:
    return json.dumps([{key: record[key] for key in RECORD_KEYS} for record in records], indent=2) + "\n"


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """Fail before evaluating when the report could not be written (format, folder, permissions)."""
    return check_output_path(path, REPORT_FORMATS, "report")


def write_report(records: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Write `records` as .json, .csv or .md (by extension), atomically."""
    dest = check_report_path(path)
    formatters = {".json": format_json, ".csv": format_csv, ".md": format_markdown}
    text = formatters[dest.suffix.lower()](records)
    with atomic_write(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --- command line -----------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", dest="models", action="extend", nargs="+", required=True, metavar="M",
        help="bundled model name, .safetensors/.pth file, or 'bicubic' (repeatable)",
    )
    parser.add_argument(
        "--dataset", dest="datasets", action="extend", nargs="+", required=True, type=Path, metavar="DIR",
        help="a benchmark set (HR/, optionally LR_bicubic/X{s}/) or DIV2K (DIV2K_valid_HR/, "
        "optionally DIV2K_valid_LR_bicubic/X{s}/), as `liifsr data download` lays them out (repeatable)",
    )
    parser.add_argument("--scales", default=DEFAULT_SCALES, help=f"comma-separated whole scales (default {DEFAULT_SCALES})")
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, default="auto",
        help="benchmark: Y, shave scale; div2k: RGB, shave scale+6; auto (default): div2k for DIV2K's "
        "layout and folders named *div2k*, else benchmark (printed for every dataset)",
    )
    parser.add_argument("--out", type=Path, help="write the report to FILE.md, .csv or .json (Markdown is always printed)")
    add_runtime_options(parser)
    parser.add_argument("--images", type=int, metavar="N",
                        help="score N images of each dataset, spread evenly over its sorted list (default: all)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars nor protocol lines on stderr")


def run(args: argparse.Namespace) -> int:
    scales = parse_scales(args.scales)
    if args.images is not None and args.images < 1:
        raise ValueError(f"bad --images {args.images}: give a number of images >= 1")
    if args.out is not None:
        check_report_path(args.out)  # before hours of evaluation, not after
    records = evaluate(args.models, args.datasets, scales, args.protocol, args.device, progress=not args.quiet,
                       precision=args.precision, images=args.images)
    if args.out is not None:
        write_report(records, args.out)
    print(format_markdown(records), end="")
    return 0
