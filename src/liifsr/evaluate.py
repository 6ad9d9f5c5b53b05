"""`liifsr evaluate`: PSNR / SSIM of models on benchmark or DIV2K folders, as LIIF measures them.

A dataset is a folder with `HR/` and optionally `LR_bicubic/X{s}/` (EDSR's layout:
`HR/0801.png` pairs with `LR_bicubic/X2/0801x2.png`), or DIV2K as downloaded: the
`DIV2K` folder (its validation split, `DIV2K_valid_HR/` with `DIV2K_valid_LR_bicubic/X{s}/`)
or a `*_HR` folder with its `*_LR_bicubic` sibling. Test pairs are made as LIIF makes them:

* scales up to 4 (in-domain): the LR file when the `X{s}` folder exists, else MATLAB
  bicubic `imresize` of the modcropped HR rounded to uint8 (which is how those files
  were made); the HR is cropped to s times the LR size (LIIF's paired-folder rule);
* scales above 4 (out-of-domain): LIIF's on-the-fly downsampler (`liif_downsample`).

Grayscale HR images are read as RGB (channel replicated), as LIIF's loader does.
Models are scored on their clamped float output, as LIIF's test script does; the
built-in `bicubic` method upsamples with MATLAB `imresize` and rounds to uint8, as
the standard bicubic tables do. PSNR follows LIIF's `calc_psnr` protocols
('benchmark': Y, shave = scale; 'div2k': RGB, shave = scale + 6) and SSIM is on Y
with the same shave. Per-image values are averaged over the dataset.

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

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from liifsr.imageio import IMAGE_EXTENSIONS, atomic_write, read_image
from liifsr.inference import resolve_device
from liifsr.metrics import calc_psnr, ssim
from liifsr.resize import imresize_uint8, liif_downsample, modcrop

BICUBIC = "bicubic"
PROTOCOLS = ("auto", "benchmark", "div2k")
DEFAULT_SCALES = "2,3,4,6,8"
# LIIF's models are trained on x1-x4; larger scales are "out-of-domain" in its tables.
IN_DOMAIN_MAX_SCALE = 4
REPORT_FORMATS = (".md", ".csv", ".json")
# The stable record format other tools read: key -> type.
RECORD_KEYS: dict[str, type] = {
    "model": str,
    "dataset": str,
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


def resolve_protocol(protocol: str, dataset: Path) -> str:
    """'auto' means 'div2k' for folders named like DIV2K, else 'benchmark'."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} (choose one of: {', '.join(PROTOCOLS)})")
    if protocol != "auto":
        return protocol
    return "div2k" if "div2k" in dataset.name.lower() else "benchmark"


def dataset_folders(dataset: Path) -> tuple[Path, Path]:
    """(HR folder, folder holding the `X{s}/` LR folders) in EDSR's layout or DIV2K's."""
    if not (dataset / "HR").is_dir():
        if dataset.name.endswith("_HR"):  # DIV2K_valid_HR -> DIV2K_valid_LR_bicubic
            return dataset, dataset.with_name(dataset.name[: -len("_HR")] + "_LR_bicubic")
        if (dataset / "DIV2K_valid_HR").is_dir():
            return dataset / "DIV2K_valid_HR", dataset / "DIV2K_valid_LR_bicubic"
    return dataset / "HR", dataset / "LR_bicubic"


def hr_images(dataset: Path) -> list[Path]:
    """The dataset's HR image files, sorted; ValueError when the folder is not a dataset."""
    if not dataset.exists():
        raise ValueError(f"dataset folder {str(dataset)!r} does not exist")
    if not dataset.is_dir():
        raise ValueError(f"dataset {str(dataset)!r} is not a folder (expected a folder holding HR/)")
    hr_dir = dataset_folders(dataset)[0]
    if not hr_dir.is_dir():
        hint = " (give its parent folder)" if dataset.name == "HR" else ""
        raise ValueError(f"dataset folder {str(dataset)!r} has no HR/ subfolder (nor DIV2K_valid_HR/){hint}")
    files = sorted(p for p in hr_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise ValueError(f"dataset folder {str(hr_dir)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def lr_file(dataset: Path, hr_path: Path, scale: float) -> Path | None:
    """The pre-made LR image for `hr_path` when the dataset's `X{s}/` LR folder exists (in-domain scales only).

    EDSR naming: `0801.png` -> `X2/0801x2.png`. When the folder exists the file must too:
    silently mixing pre-made and regenerated LR images would make results incomparable.
    """
    if scale > IN_DOMAIN_MAX_SCALE:
        return None
    folder = dataset_folders(dataset)[1] / f"X{int(scale)}"
    if not folder.is_dir():
        return None
    stem = f"{hr_path.stem}x{int(scale)}"
    candidates = [folder / f"{stem}{hr_path.suffix}"] + [folder / f"{stem}{ext}" for ext in IMAGE_EXTENSIONS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ValueError(f"{str(folder)!r} has no LR image for {hr_path.name} (expected {stem}{hr_path.suffix})")


def read_uint8(path: Path) -> Tensor:
    """An image as a uint8 (3, H, W) tensor; gray is replicated to RGB, like LIIF's loader."""
    rgb = read_image(path).rgb  # float32 in [0, 1]; 16-bit files are rounded to 8 bits here
    levels = np.rint(rgb * 255).astype(np.uint8)
    return torch.from_numpy(levels).permute(2, 0, 1).contiguous()


def to_float(image: Tensor) -> Tensor:
    """uint8 (3, H, W) -> float32 (1, 3, H, W) in [0, 1], as torchvision's ToTensor computes it."""
    return image.float().div(255).unsqueeze(0)


def make_pair(dataset: Path, hr_path: Path, scale: float) -> tuple[Tensor, Tensor]:
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
            f"LR image {str(path)!r} ({lr.shape[-1]}x{lr.shape[-2]}) is too large for "
            f"{hr_path.name} ({hr.shape[-1]}x{hr.shape[-2]}) at x{s}"
        )
    return hr[:, :h, :w], lr  # LIIF crops the HR to s times the LR size


# --- methods ----------------------------------------------------------------------


def bicubic_method(lr: Tensor, size: tuple[int, int]) -> Tensor:
    """MATLAB bicubic upsampling rounded to uint8 levels, like the standard bicubic tables."""
    levels = torch.round(lr[0] * 255).to(torch.uint8)
    return to_float(imresize_uint8(levels, size=size))


def load_method(name: str, device: torch.device, progress: bool = False) -> Method:
    """'bicubic' or a model (bundled name or file) as a Method; CheckpointError for unknown models."""
    if name == BICUBIC:
        return bicubic_method
    from liifsr.checkpoint import load_model
    from liifsr.inference import upscale_tensor

    model = load_model(name, device=device)

    def method(lr: Tensor, size: tuple[int, int]) -> Tensor:
        return upscale_tensor(model, lr, size, progress=progress)

    return method


# --- evaluation -------------------------------------------------------------------


@dataclass
class Tally:
    """Running sums for one (model, dataset, scale) record."""

    psnr: float = 0.0
    ssim: float = 0.0
    images: int = 0
    seconds: float = 0.0

    def record(self, model: str, dataset: str, scale: float) -> dict[str, Any]:
        n = max(self.images, 1)
        return {
            "model": model,
            "dataset": dataset,
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
    datasets: list[Path],
    scales: list[float],
    protocol: str = "auto",
    device: str = "cpu",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate every model on every dataset at every scale; one record per combination.

    Each pair of images is made once and shared by all models. Records come ordered by
    dataset, model, then scale; `seconds` is the time spent upscaling and scoring
    (reading images and making LR inputs excluded).
    """
    if not models:
        raise ValueError("give at least one model (a bundled name, a model file, or 'bicubic')")
    if not scales:
        raise ValueError("give at least one scale")
    for scale in scales:
        check_scale(scale)
    datasets = [Path(d) for d in datasets]
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ValueError(f"datasets must have distinct folder names (records are named by folder), got {names}")
    files = {d: hr_images(d) for d in datasets}  # validate every dataset before any work
    protocols = {d: resolve_protocol(protocol, d) for d in datasets}
    torch_device = resolve_device(device)
    methods = {name: load_method(name, torch_device, progress) for name in dict.fromkeys(models)}

    records = []
    for dataset in datasets:
        for scale in scales:
            tallies = _evaluate_one(dataset, files[dataset], scale, protocols[dataset], methods, progress)
            records += [tallies[name].record(name, dataset.name, scale) for name in methods]
    order = {name: i for i, name in enumerate(methods)}
    position = {d.name: i for i, d in enumerate(datasets)}
    return sorted(records, key=lambda r: (position[r["dataset"]], order[r["model"]], r["scale"]))


def _evaluate_one(
    dataset: Path,
    files: list[Path],
    scale: float,
    protocol: str,
    methods: dict[str, Method],
    progress: bool,
) -> dict[str, Tally]:
    tallies = {name: Tally() for name in methods}
    bar = tqdm(files, desc=f"{dataset.name} x{scale:g}", unit="img", disable=not progress, file=sys.stderr)
    with torch.no_grad():
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
        lines += [f"{title}, benchmark protocol (Y channel, `scale` border pixels shaved).", ""]
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
            lines += [f"{title} on {dataset}, div2k protocol (RGB, `scale + 6` border pixels shaved; SSIM on Y).", ""]
            lines += _table(["Method"], rows, scales, key) + [""]
    return lines


def format_markdown(records: list[dict[str, Any]], protocol: str = "auto") -> str:
    """Markdown tables of `records`: Table 3's layout for benchmark-protocol datasets, Table 4's for div2k.

    `protocol` says which datasets were evaluated with which protocol, as `evaluate`'s
    argument does ('auto': by dataset name).
    """
    if not records:
        return "No results.\n"
    kind = {r["dataset"]: resolve_protocol(protocol, Path(r["dataset"])) for r in records}
    benchmark = [r for r in records if kind[r["dataset"]] == "benchmark"]
    div2k = [r for r in records if kind[r["dataset"]] == "div2k"]
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


def check_output_path(path: str | os.PathLike[str], suffixes: tuple[str, ...], what: str) -> Path:
    """Check an output file's extension and that its folder exists and is writable."""
    dest = Path(path)
    if dest.suffix.lower() not in suffixes:
        raise ValueError(f"cannot write {what} {str(dest)!r}: unsupported extension (use {', '.join(suffixes)})")
    if dest.is_dir():
        raise ValueError(f"cannot write {what} {str(dest)!r}: it is a directory (give a file name)")
    parent = dest.parent
    if not parent.is_dir():
        raise ValueError(f"cannot write {what} {str(dest)!r}: directory {str(parent)!r} does not exist (create it first)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {what} {str(dest)!r}: permission denied for directory {str(parent)!r}")
    return dest


def write_report(records: list[dict[str, Any]], path: str | os.PathLike[str], protocol: str = "auto") -> None:
    """Write `records` as .json, .csv or .md (by extension), atomically."""
    dest = check_report_path(path)
    formatters = {".json": format_json, ".csv": format_csv, ".md": lambda r: format_markdown(r, protocol)}
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
        help="folder with HR/ and optionally LR_bicubic/X{s}/, or DIV2K's folder (repeatable)",
    )
    parser.add_argument("--scales", default=DEFAULT_SCALES, help=f"comma-separated whole scales (default {DEFAULT_SCALES})")
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, default="auto",
        help="benchmark: Y, shave scale; div2k: RGB, shave scale+6; auto: div2k for folders named *div2k*",
    )
    parser.add_argument("--out", type=Path, help="write the report to FILE.md, .csv or .json (Markdown is always printed)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    scales = parse_scales(args.scales)
    if args.out is not None:
        check_report_path(args.out)  # before hours of evaluation, not after
    records = evaluate(args.models, args.datasets, scales, args.protocol, args.device, progress=not args.quiet)
    if args.out is not None:
        write_report(records, args.out, args.protocol)
    print(format_markdown(records, args.protocol), end="")
    return 0
