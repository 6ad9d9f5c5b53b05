#!/usr/bin/env python3
"""The claims' paired differences as compact tables (docs/results.md, "The claims").

    python tools/claims_table.py REPORT.json [...] --pair LABEL A B [--pair ...]
        [--edge-pair LABEL A B ...] [--edge-scales 4,30] [--precision bf16]
        [--resamples 10000] [--seed 0] [-o claims.md] [--into docs/results.md]

A or B may name several models, comma-separated: one model's seeds.

For each --pair, the mean paired PSNR difference B - A of every dataset and scale with its
95 % bootstrap interval, computed as tools/paired_stats.py computes it (the same function,
seed and resamples: the same numbers), laid out one row per dataset and pair, one column
per scale, "estimate [low, high]"; one table per protocol. For each --edge-pair, at the
--edge-scales: the mean edge width (metrics.edge_width) of bicubic (where the reports
score it), A and B; how many images score the lost-edge width (2 x metrics.edge_reach:
the median profile lost its edge, so the value measures no width); the mean edge slope
(metrics.edge_slope, where the reports have it) of the three; B - A of the edge width, the
edge slope and PSNR, each with its interval.

--into fills the document's blocks between `<!-- claims-intervals-PROTOCOL -->` and
`<!-- /claims-intervals-PROTOCOL -->` (PROTOCOL: benchmark, div2k) and
`<!-- claims-edge -->` ... `<!-- /claims-edge -->` with those tables.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling tool, run as a script or loaded by path

from results_tables import base_name, dataset_rank, fill_block

from liifsr.evaluation.paired import (
    DEFAULT_RESAMPLES,
    Cell,
    Difference,
    cell_of,
    paired_stats,
    read_reports,
)
from liifsr.evaluation.reports import markdown_row
from liifsr.files import atomic_write
from liifsr.metrics import edge_reach

PROTOCOL_TITLES = {
    "benchmark": "benchmark protocol (Y, shave = scale)",
    "div2k": "div2k protocol (RGB, shave = scale + 6)",
}
# (label, A, B): the difference is B - A; a side may name several models, comma-separated: its seeds
Pair = tuple[str, str, str]


def side_models(side: str) -> list[str]:
    """The models one side of a pair names: one, or its seeds (comma-separated)."""
    return [name.strip() for name in side.split(",") if name.strip()]


def cell_order(cell: Cell) -> tuple:
    """Benchmark protocol first, then the paper's dataset order, then the scale."""
    return (cell.protocol != "benchmark", cell.protocol, cell.degrade, dataset_rank(cell.dataset), cell.dataset,
            cell.scale)


def interval_text(d: Difference, digits: int = 2) -> str:
    return f"{d.estimate:+.{digits}f} [{d.low:+.{digits}f}, {d.high:+.{digits}f}]"


def differences_by_cell(records: list[dict[str, Any]], pair: Pair, metric: str, resamples: int, seed: int,
                        precision: str | None) -> dict[Cell, Difference]:
    _, a, b = pair
    _, rows, _ = paired_stats(records, side_models(a), side_models(b), metric, resamples, seed, precision)
    return {d.cell: d for d in rows}


def group_title(protocol: str, degrade: str) -> str:
    title = PROTOCOL_TITLES.get(protocol, f"{protocol} protocol")
    return title if degrade == "clean" else f"{title}, {degrade} inputs"


def grid_tables(by_pair: dict[str, dict[Cell, Difference]]) -> dict[tuple[str, str], str]:
    """(protocol, degrade) -> a Markdown table: one row per dataset and pair, one column per
    scale, each cell "B - A [95 % interval]"."""
    cells = sorted({c for differences in by_pair.values() for c in differences}, key=cell_order)
    tables = {}
    for group in dict.fromkeys((c.protocol, c.degrade) for c in cells):
        in_group = [c for c in cells if (c.protocol, c.degrade) == group]
        scales = sorted({c.scale for c in in_group})
        datasets = list(dict.fromkeys(c.dataset for c in in_group))
        lines = [markdown_row(["Dataset", "Difference"] + [f"x{s:g}" for s in scales]),
                 markdown_row(["---", "---"] + ["---:"] * len(scales))]
        for dataset in datasets:
            for label, differences in by_pair.items():
                row = [differences.get(Cell(dataset, group[0], group[1], s)) for s in scales]
                if any(row):
                    lines.append(markdown_row([dataset, label] + [interval_text(d) if d else "" for d in row]))
        tables[group] = "\n".join(lines) + "\n"
    return tables


def cell_scores(records: list[dict[str, Any]], model: str, cell: Cell, precision: str | None,
                metric: str) -> list[float]:
    """`model`'s per-image `metric` in `cell`, images without it left out ([]: not scored)."""
    for record in records:
        if record["model"] == model and cell_of(record) == cell and (precision is None
                                                                     or record["precision"] in (precision, "-")):
            return [e[metric] for e in record["per_image"] if e.get(metric) is not None]
    return []


def means_text(bicubic: Sequence[float], d: Difference, digits: int) -> str:
    """"bicubic / A / B": the three mean scores (bicubic's from its per-image scores, "-" where not scored)."""
    return ((f"{sum(bicubic) / len(bicubic):.{digits}f}" if bicubic else "-")
            + f" / {d.mean_a:.{digits}f} / {d.mean_b:.{digits}f}")


def lost_images(widths: Sequence[float], scale: float) -> int:
    """How many images score the lost-edge width (2 x edge_reach: the median profile's rise
    in the output is under half the ground truth's), a value that measures no width."""
    return sum(w >= 2 * edge_reach(scale) for w in widths)


def lost_text_of(records: list[dict[str, Any]], models: list[str], cell: Cell, precision: str | None) -> str:
    """How many images score the lost-edge width: "n", or "(n1, n2)" for a side's seeds."""
    counts = [str(lost_images(cell_scores(records, m, cell, precision, "edge_width"), cell.scale)) for m in models]
    return counts[0] if len(counts) == 1 else f"({', '.join(counts)})"


EdgeRows = list[tuple[Pair, dict[str, dict[Cell, Difference]]]]  # (pair, metric -> its differences by cell)


def edge_table(records: list[dict[str, Any]], edge: EdgeRows, scales: Sequence[float], precision: str | None) -> str:
    """One row per cell at `scales` and edge pair: the mean edge widths (bicubic / A / B), how
    many images score the lost-edge width, B - A of the edge width; the mean edge slopes and
    B - A of the slope; B - A of PSNR; each difference with its interval."""
    lines = [markdown_row(["Dataset", "Scale", "Difference", "Edge width: bicubic / A / B",
                           "Images with the edge lost: bicubic / A / B", "B - A, edge width",
                           "Edge slope: bicubic / A / B", "B - A, edge slope", "B - A, PSNR (dB)"]),
             markdown_row(["---", "---:", "---", "---:", "---:", "---:", "---:", "---:", "---:"])]
    cells = sorted({c for _, by_metric in edge for c in by_metric["edge_width"] if c.scale in scales}, key=cell_order)
    for cell in cells:
        dataset = cell.dataset if cell.protocol == "benchmark" else f"{cell.dataset}, {cell.protocol} protocol"
        if cell.degrade != "clean":
            dataset += f", {cell.degrade} inputs"
        bicubic = cell_scores(records, "bicubic", cell, precision, "edge_width")
        for (label, a, b), by_metric in edge:
            if cell not in by_metric["edge_width"]:
                continue
            d = by_metric["edge_width"][cell]
            lost = [lost_text_of(records, side_models(side), cell, precision) for side in (a, b)]
            lost_text = (str(lost_images(bicubic, cell.scale)) if bicubic else "-") + f" / {' / '.join(lost)} of {d.images}"
            slope = by_metric["edge_slope"].get(cell)
            bicubic_slopes = cell_scores(records, "bicubic", cell, precision, "edge_slope")
            slope_cells = [means_text(bicubic_slopes, slope, 4), interval_text(slope, 4)] if slope else ["", ""]
            psnr = by_metric["psnr"].get(cell)
            lines.append(markdown_row([dataset, f"x{cell.scale:g}", label,
                                       means_text(bicubic, d, 2), lost_text,
                                       interval_text(d), *slope_cells, interval_text(psnr) if psnr else ""]))
    return "\n".join(lines) + "\n"


def claims_tables(records: list[dict[str, Any]], pairs: Sequence[Pair], edge_pairs: Sequence[Pair],
                  edge_scales: Sequence[float], resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                  precision: str | None = None) -> dict[str, str]:
    """Block name -> table: `claims-intervals-<protocol>` (with a `-<degrade>` suffix for
    degraded inputs) for the PSNR pairs, `claims-edge` for the edge pairs."""
    if not pairs and not edge_pairs:
        raise ValueError("no pairs: give --pair LABEL A B (or --edge-pair)")
    labels = [p[0] for p in pairs]
    if len(set(labels)) != len(labels) or len({p[0] for p in edge_pairs}) != len(edge_pairs):
        raise ValueError("two pairs have the same label: give each its own")
    tables = {}
    if pairs:
        by_pair = {p[0]: differences_by_cell(records, p, "psnr", resamples, seed, precision) for p in pairs}
        for (protocol, degrade), table in grid_tables(by_pair).items():
            name = f"claims-intervals-{protocol}" + ("" if degrade == "clean" else f"-{degrade}")
            tables[name] = table
    if edge_pairs:
        edge = [(p, {metric: differences_by_cell(records, p, metric, resamples, seed, precision)
                     for metric in ("edge_width", "edge_slope", "psnr")}) for p in edge_pairs]
        tables["claims-edge"] = edge_table(records, edge, edge_scales, precision)
    return tables


def document(tables: dict[str, str], records: list[dict[str, Any]], resamples: int, seed: int) -> str:
    """The tables with their headings and how the intervals were made."""
    models = sorted({r["model"] for r in records})
    datasets = sorted({base_name(r["dataset"]) for r in records}, key=lambda d: (dataset_rank(d), d))
    out = ["# The claims' paired differences, B - A, with 95 % intervals",
           "",
           (f"From the reports of {', '.join(models)} on {', '.join(datasets)}. Each cell: the mean over images of "
            f"B's score minus A's on the same image, and the 2.5 and 97.5 percentiles of that mean over {resamples:,} "
            f"bootstrap resamples of the images (seed {seed}); with one trained model per side the interval covers "
            "the test images' sampling only, not the training runs'; a side that names several models "
            "(comma-separated: its seeds) is their mean per image, and the resamples draw its seeds too."),
           ""]
    for name, table in tables.items():
        if name == "claims-edge":
            heading = ("## Edge width (HR pixels, 10-90 % rise across the ground truth's strongest edges; "
                       "lower is sharper) and edge slope (the output's steepest slope across them over the "
                       "ground truth's; higher is sharper) beside PSNR")
        else:
            protocol = name.removeprefix("claims-intervals-")
            heading = f"## PSNR (dB), {PROTOCOL_TITLES.get(protocol, protocol)}"
        out += [heading, "", table]
    return "\n".join(out)


def parse_scales(text: str) -> list[float]:
    try:
        scales = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"bad --edge-scales {text!r}: give comma-separated numbers, e.g. 4,30") from None
    if not scales:
        raise ValueError("empty --edge-scales: give comma-separated numbers, e.g. 4,30")
    return scales


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claims_table", description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT", help="`liifsr evaluate` JSON reports")
    parser.add_argument("--pair", nargs=3, action="append", default=[], metavar=("LABEL", "A", "B"),
                        help="a PSNR difference B - A, named LABEL (repeatable)")
    parser.add_argument("--edge-pair", nargs=3, action="append", default=[], metavar=("LABEL", "A", "B"),
                        help="an edge-width and PSNR difference B - A at --edge-scales (repeatable)")
    parser.add_argument("--edge-scales", default="4,30", help="the edge table's scales (default 4,30)")
    parser.add_argument("--precision", help="use only the records of this precision (bf16, fp32; bicubic's always)")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES,
                        help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default 0)")
    parser.add_argument("-o", "--out", type=Path, help="also write the tables to this Markdown file")
    parser.add_argument("--into", type=Path, help="a document whose marked blocks get the tables (docs/results.md)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.into is not None and not args.into.is_file():
            raise ValueError(f"no document {args.into} to fill: give an existing file")
        records = read_reports(args.reports)
        tables = claims_tables(records, [tuple(p) for p in args.pair], [tuple(p) for p in args.edge_pair],
                               parse_scales(args.edge_scales), args.resamples, args.seed, args.precision)
    except (ValueError, OSError) as error:
        print(f"claims_table: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    text = document(tables, records, args.resamples, args.seed)
    print(text, end="")
    if args.out is not None:
        with atomic_write(args.out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    if args.into is not None:
        filled = args.into.read_text(encoding="utf-8")
        for name, table in tables.items():
            filled = fill_block(filled, name, table)
        with atomic_write(args.into) as tmp:
            tmp.write_text(filled, encoding="utf-8")
        print(f"claims_table: tables -> {args.into}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
