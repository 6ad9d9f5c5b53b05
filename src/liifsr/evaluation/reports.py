"""Evaluation reports: JSON records, CSV, and Markdown laid out like the paper's Tables 3 and 4."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from liifsr.evaluation.datasets import IN_DOMAIN_MAX_SCALE, PROTOCOL_TEXT
from liifsr.evaluation.loop import JSON_KEYS, RECORD_KEYS
from liifsr.files import atomic_write, check_output_path

REPORT_FORMATS = (".md", ".csv", ".json")
# Markdown's tables, one per score; the edge table only where the records have edge widths
# (reports written before it existed have none).
TABLE_TITLES = (
    ("psnr", "PSNR (dB)"),
    ("ssim", "SSIM"),
    ("edge_width", "Edge width (HR pixels: 10-90 % rise across the ground truth's strongest edges; lower is sharper)"),
    ("edge_slope", "Edge slope (the output's steepest slope across the ground truth's strongest edges over the "
                   "ground truth's; 1 is as steep, lower is blurrier)"),
)

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


def markdown_row(cells: Iterable[str]) -> str:
    """One line of a Markdown table."""
    return "| " + " | ".join(cells) + " |"


def _table(lead: list[str], rows: list[tuple[list[str], dict[float, dict[str, Any]]]], scales: list[float], key: str) -> list[str]:
    """A Markdown table: `lead` label columns, then one column per scale."""
    digits = 4 if key == "ssim" else 2
    blank = [""] * len(lead)
    lines = [
        markdown_row(lead + _scale_header(scales)),
        markdown_row(["---"] * len(lead) + ["---:"] * len(scales)),
        markdown_row(blank + [f"x{s:g}" for s in scales]),
    ]
    for labels, by_scale in rows:
        values = [f"{by_scale[s][key]:.{digits}f}" if by_scale.get(s, {}).get(key) is not None else "" for s in scales]
        lines.append(markdown_row(labels + values))
    return lines


def _index(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[float, dict[str, Any]]]:
    table: dict[tuple[str, str], dict[float, dict[str, Any]]] = {}
    for record in records:
        table.setdefault((record["dataset"], record["model"]), {})[float(record["scale"])] = record
    return table


def _titles(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(key, title) of the tables the records fill."""
    return [(key, title) for key, title in TABLE_TITLES if any(r.get(key) is not None for r in records)]


def _inputs_text(degrade: str) -> str:
    """How a table's title names its LR inputs: nothing for clean ones (the protocol's own)."""
    return "" if degrade == "clean" else f", LR inputs degraded by {degrade}"


def _benchmark_tables(records: list[dict[str, Any]], inputs: str = "") -> list[str]:
    """Table 3's shape: one row per (dataset, model), the dataset named on its first row only."""
    scales = sorted(_unique(float(r["scale"]) for r in records))
    index = _index(records)
    datasets, models = _unique(r["dataset"] for r in records), _unique(r["model"] for r in records)
    lines = []
    for key, title in _titles(records):
        rows = []
        for dataset in datasets:
            present = [m for m in models if (dataset, m) in index]
            rows += [([dataset if i == 0 else "", m], index[(dataset, m)]) for i, m in enumerate(present)]
        lines += [f"{title}, {PROTOCOL_TEXT['benchmark']}{inputs}.", ""]
        lines += _table(["Dataset", "Method"], rows, scales, key) + [""]
    return lines


def _div2k_tables(records: list[dict[str, Any]], inputs: str = "") -> list[str]:
    """Table 4's shape: one table per dataset, model rows, scale columns."""
    index = _index(records)
    lines = []
    for dataset in _unique(r["dataset"] for r in records):
        subset = [r for r in records if r["dataset"] == dataset]
        scales = sorted(_unique(float(r["scale"]) for r in subset))
        rows = [([m], index[(dataset, m)]) for m in _unique(r["model"] for r in subset)]
        for key, title in _titles(subset):
            lines += [f"{title} on {dataset}, {PROTOCOL_TEXT['div2k']}{inputs}.", ""]
            lines += _table(["Method"], rows, scales, key) + [""]
    return lines


def format_markdown(records: list[dict[str, Any]]) -> str:
    """Markdown tables of `records`: Table 3's layout for the records scored with the
    benchmark protocol, Table 4's for those scored with the div2k protocol; tables of
    degraded inputs (`degrade`) apart, their titles naming the degradation."""
    if not records:
        return "No results.\n"
    lines: list[str] = []
    for degrade in _unique(r.get("degrade", "clean") for r in records):
        group = [r for r in records if r.get("degrade", "clean") == degrade]
        benchmark = [r for r in group if r["protocol"] == "benchmark"]
        div2k = [r for r in group if r["protocol"] == "div2k"]
        inputs = _inputs_text(degrade)
        lines += (_benchmark_tables(benchmark, inputs) if benchmark else []) + (_div2k_tables(div2k, inputs) if div2k else [])
    return "\n".join(lines).rstrip() + "\n"


def format_csv(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(RECORD_KEYS), lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: record[key] for key in RECORD_KEYS} for record in records)
    return buffer.getvalue()


def _json_value(value: Any) -> Any:
    """A value JSON can hold: a non-finite float (the PSNR of an exact reconstruction, at
    `--scales 1`, is +infinity) becomes null, as `Infinity` and `NaN` are not JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    return value


def format_json(records: list[dict[str, Any]]) -> str:
    """The records as a JSON list; a non-finite number (an infinite PSNR) is written null."""
    rows = [{key: _json_value(record[key]) for key in JSON_KEYS} for record in records]
    return json.dumps(rows, indent=2, allow_nan=False) + "\n"


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
