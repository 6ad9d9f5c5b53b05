"""The experiment's tables (docs/results.md) from `liifsr evaluate` JSON reports.

    python tools/results_tables.py EVAL_DIR [--runs RUNS_DIR] [-o docs/results/tables.md]
                                   [--into docs/results.md]

Reads every `*.json` report in EVAL_DIR (records of `liifsr evaluate --out X.json`; model
files named `<preset>-seed<N>.safetensors`, as `tools/experiment_report.sh` names them)
and writes, in Markdown:
- with --runs, the training runs: epochs, iterations, time, last loss and validation;
- Table 3 (benchmark protocol) and the Table 4 analogue (div2k protocol), PSNR and SSIM,
  bicubic first, then the paper's five models in the paper's order and the decoders beyond
  the paper (`NAMES`), second seeds last;
- the paper's Tables 3 and 4 beside ours ("ours / paper");
- the differences behind the paper's claims: SIREN minus ReLU under each encoder, EDSR
  minus EDSR-LESS, and the seed spread (seed 1 minus seed 0), ours and the paper's.
With --into, the first table of each section also replaces the text between
`<!-- NAME -->` and `<!-- /NAME -->` in that document (NAME: one of `INTO_SECTIONS`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any

from liifsr.evaluation.reports import format_markdown, markdown_row
from liifsr.files import atomic_write
from liifsr.training.runlog import read_run

# The paper's names, in its tables' order.
PAPER_NAMES = {
    "edsr-liif-relu": "EDSR-LIIF-ReLU",
    "edsr-liif-siren30": "EDSR-LIIF-SIREN-30",
    "edsr-liif-siren15": "EDSR-LIIF-SIREN-15",
    "edsrless-liif-relu": "EDSR-LESS-LIIF-ReLU",
    "edsrless-liif-siren30": "EDSR-LESS-LIIF-SIREN-30",
}
# The decoders beyond the paper and their control, shown after the paper's models.
NAMES = {**PAPER_NAMES, "edsr-liif-relu-skip": "EDSR-LIIF-ReLU + skip", "edsr-lte": "EDSR-LTE",
         "edsr-thermal": "EDSR-heat field"}
# The paper's Table 3 (benchmark protocol) and Table 4 (DIV2K validation), PSNR in dB.
PAPER_SCALES_3 = (2, 3, 4, 6, 8)
PAPER_TABLE_3 = {
    "Set5": {
        "edsr-liif-relu": (37.96, 34.40, 32.11, 28.85, 26.95),
        "edsr-liif-siren30": (37.96, 34.33, 32.11, 28.88, 26.94),
        "edsr-liif-siren15": (37.96, 34.36, 32.13, 28.85, 26.93),
        "edsrless-liif-relu": (37.79, 34.17, 32.03, 28.72, 26.79),
        "edsrless-liif-siren30": (37.76, 34.15, 31.99, 28.66, 26.66),
    },
    "Set14": {
        "edsr-liif-relu": (33.60, 30.32, 28.59, 26.45, 24.93),
        "edsr-liif-siren30": (33.62, 30.31, 28.56, 26.41, 24.91),
        "edsr-liif-siren15": (33.61, 30.32, 28.59, 26.44, 24.90),
        "edsrless-liif-relu": (33.42, 30.19, 28.44, 26.29, 24.80),
        "edsrless-liif-siren30": (33.38, 30.14, 28.43, 26.27, 24.77),
    },
    "B100": {
        "edsr-liif-relu": (32.14, 29.09, 27.59, 25.84, 24.78),
        "edsr-liif-siren30": (32.15, 29.08, 27.57, 25.83, 24.78),
        "edsr-liif-siren15": (32.15, 29.09, 27.58, 25.83, 24.78),
        "edsrless-liif-relu": (32.04, 28.98, 27.48, 25.74, 24.71),
        "edsrless-liif-siren30": (32.03, 28.96, 27.46, 25.73, 24.69),
    },
    "Urban100": {
        "edsr-liif-relu": (32.02, 28.15, 26.08, 23.76, 22.43),
        "edsr-liif-siren30": (32.04, 28.13, 26.04, 23.71, 22.41),
        "edsr-liif-siren15": (32.01, 28.15, 26.07, 23.74, 22.43),
        "edsrless-liif-relu": (31.57, 27.78, 25.76, 23.49, 22.23),
        "edsrless-liif-siren30": (31.52, 27.72, 25.72, 23.47, 22.19),
    },
}
PAPER_SCALES_4 = (2, 3, 4, 6, 12, 18, 24)
PAPER_TABLE_4 = {
    "edsr-liif-relu": (34.62, 30.93, 28.98, 26.74, 23.70, 22.17, 21.18),
    "edsr-liif-siren30": (34.60, 30.90, 28.94, 26.70, 23.67, 22.15, 21.16),
    "edsr-liif-siren15": (34.61, 30.92, 28.96, 26.71, 23.69, 22.16, 21.18),
    "edsrless-liif-relu": (34.39, 30.72, 28.80, 26.57, 23.58, 22.07, 21.09),
    "edsrless-liif-siren30": (34.37, 30.69, 28.77, 26.54, 23.55, 22.04, 21.08),
}
# (label, minuend, subtrahend): the differences the paper's claims rest on.
CLAIM_DIFFERENCES = (
    ("SIREN-30 - ReLU, EDSR", "edsr-liif-siren30", "edsr-liif-relu"),
    ("SIREN-15 - ReLU, EDSR", "edsr-liif-siren15", "edsr-liif-relu"),
    ("SIREN-15 - SIREN-30, EDSR", "edsr-liif-siren15", "edsr-liif-siren30"),
    ("SIREN-30 - ReLU, EDSR-LESS", "edsrless-liif-siren30", "edsrless-liif-relu"),
    ("EDSR - EDSR-LESS, ReLU", "edsr-liif-relu", "edsrless-liif-relu"),
    ("EDSR - EDSR-LESS, SIREN-30", "edsr-liif-siren30", "edsrless-liif-siren30"),
)
SEEDS = (("seed spread, EDSR-LIIF-ReLU (seed 1 - seed 0)", "edsr-liif-relu"),
         ("seed spread, EDSR-LIIF-SIREN-15 (seed 1 - seed 0)", "edsr-liif-siren15"))
DATASETS = ("Set5", "Set14", "B100", "Urban100")
# Marker name in a document -> the heading of the section whose first table goes there.
INTO_SECTIONS = {
    "runs": "## The training runs",
    "table3": "## Table 3: benchmark sets",
    "table4": "## Table 4 analogue",
    "claims3": "## The claims' differences: ours (the paper's)",
    "claims4": "## The claims' differences: ours on Urban100",
    "bf16": "## bf16 against fp32",
}
RUN_NAME = re.compile(r"(?P<preset>[a-z0-9-]+)-seed(?P<seed>\d+)$")


def run_of(model: str) -> tuple[str, int] | None:
    """(preset, seed) of a model file named `<preset>-seed<N>.safetensors`; None otherwise."""
    match = RUN_NAME.match(Path(model).stem)
    return (match["preset"], int(match["seed"])) if match else None


def base_name(dataset: str) -> str:
    """'Urban100 (20 of 100)' -> 'Urban100'."""
    return dataset.split(" (")[0]


def label(model: str) -> str:
    run = run_of(model)
    if run is None:
        return model
    return f"{NAMES.get(run[0], run[0])}, seed {run[1]}"


def dataset_rank(dataset: str) -> int:
    """The paper's dataset order (`DATASETS`), other datasets after them."""
    name = base_name(dataset)
    return DATASETS.index(name) if name in DATASETS else len(DATASETS)


def order(record: dict[str, Any]) -> tuple[int, ...]:
    """The paper's dataset order; bicubic, then seed 0 of the paper's models in its order,
    then other seeds; scales ascending."""
    rank = dataset_rank(record["dataset"])
    run, presets = run_of(record["model"]), list(NAMES)
    model = (0, 0, 0) if run is None else (1, run[1], presets.index(run[0]) if run[0] in presets else len(presets))
    return (rank, *model, float(record["scale"]))


def read_records(folder: Path) -> list[dict[str, Any]]:
    records, seen = [], set()
    for path in sorted(folder.glob("*.json")):
        for record in json.loads(path.read_text()):
            key = (record["model"], record["dataset"], record["protocol"], record["scale"], record["precision"])
            if key in seen:
                raise SystemExit(f"results_tables: {path} repeats {key}")
            seen.add(key)
            records.append(record)
    return records


def split_precision_check(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[tuple[dict, dict]]]:
    """(the tables' records, (bf16, fp32) pairs): where a model was scored in both
    precisions, the tables show bf16 (as every other result) and the pair checks it."""
    def key(record: dict[str, Any]) -> tuple:
        return record["model"], record["dataset"], record["protocol"], record["scale"]

    fp32 = {key(r): r for r in records if r["precision"] == "fp32"}
    pairs = [(r, fp32[key(r)]) for r in records if r["precision"] == "bf16" and key(r) in fp32]
    checked = {id(f) for _, f in pairs}
    return [r for r in records if id(r) not in checked], pairs


def table_head(labels: list[str], values: list[str]) -> list[str]:
    """A Markdown table's two header lines: left-aligned label columns, right-aligned value columns."""
    return [markdown_row([*labels, *values]), "|" + "---|" * len(labels) + "---:|" * len(values)]


def precision_check(pairs: list[tuple[dict, dict]]) -> list[str]:
    """bf16 minus fp32 PSNR per model and scale, and the largest difference."""
    scales = sorted({float(b["scale"]) for b, _ in pairs})
    cells: dict[tuple[str, str], dict[float, float]] = {}
    for bf16, fp32 in pairs:
        cells.setdefault((bf16["dataset"], label(bf16["model"])), {})[float(bf16["scale"])] = bf16["psnr"] - fp32["psnr"]
    lines = table_head(["Dataset", "Model"], [f"x{s:g}" for s in scales])
    for (dataset, model), by_scale in cells.items():
        lines.append(markdown_row([dataset, model, *(f"{by_scale[s]:+.4f}" if s in by_scale else "" for s in scales)]))
    worst = max(abs(b["psnr"] - f["psnr"]) for b, f in pairs)
    return lines + ["", f"Largest difference: {worst:.4f} dB."]


def psnr_of(records: list[dict[str, Any]]) -> dict[tuple[str, int, str, float], float]:
    """(preset, seed, dataset, scale) -> PSNR, for the runs' records of one protocol."""
    table = {}
    for record in records:
        run = run_of(record["model"])
        if run is not None:
            table[(*run, record["dataset"], float(record["scale"]))] = record["psnr"]
    return table


def side_by_side(records: list[dict[str, Any]], paper: dict[str, dict[str, tuple[float, ...]]],
                 paper_scales: tuple[int, ...]) -> list[str]:
    """Ours / the paper's PSNR, seed 0, at the paper's scales."""
    ours = psnr_of(records)
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    lines = table_head(["Dataset", "Model"], [f"x{s}" for s in paper_scales])
    for dataset in datasets:
        rows = paper.get(base_name(dataset), {})
        for preset, values in rows.items():
            if not any((preset, 0, dataset, float(s)) in ours for s in paper_scales):
                continue  # a model these reports did not score
            cells = [f"{ours[(preset, 0, dataset, float(s))]:.2f} / {v:.2f}" if (preset, 0, dataset, float(s)) in ours
                     else f"- / {v:.2f}" for s, v in zip(paper_scales, values)]
            lines.append(markdown_row([dataset, PAPER_NAMES[preset], *cells]))
    return lines


def differences(records: list[dict[str, Any]], paper: dict[str, dict[str, tuple[float, ...]]],
                paper_scales: tuple[int, ...]) -> list[str]:
    """Ours (paper's) PSNR differences for each claim, per dataset and scale, in dB."""
    ours = psnr_of(records)
    scales = sorted({float(r["scale"]) for r in records})
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    lines = table_head(["Dataset", "Difference"], [f"x{s:g}" for s in scales])
    rows = [(text, (a, 0), (b, 0)) for text, a, b in CLAIM_DIFFERENCES]
    rows += [(text, (preset, 1), (preset, 0)) for text, preset in SEEDS]
    for dataset in datasets:
        for text, first, second in rows:
            cells, measured = [], False
            for scale in scales:
                a, b = ours.get((*first, dataset, scale)), ours.get((*second, dataset, scale))
                measured |= a is not None and b is not None
                cell = f"{a - b:+.2f}" if a is not None and b is not None else "-"
                table = paper.get(base_name(dataset), {})
                if first[1] == second[1] == 0 and int(scale) in paper_scales and first[0] in table:
                    i = paper_scales.index(int(scale))
                    cell += f" ({table[first[0]][i] - table[second[0]][i]:+.2f})"
                cells.append(cell)
            if measured:
                lines.append(markdown_row([dataset, text, *cells]))
    return lines


def runs_table(runs: Path) -> list[str]:
    """One row per run folder with a log.csv: how far it got, how long it took, where it ended."""
    lines = ["| Run | Epochs | Iterations | Minutes of epochs | Median s per epoch | Last training loss "
             "| Held-out PSNR x2 / x4 (dB) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    logs = sorted(runs.glob("*/log.csv"), key=lambda p: order({"model": p.parent.name, "dataset": "", "scale": 0}))
    for log in logs:
        record = read_run(log.parent)
        rows = record.rows
        if not rows:
            continue
        validated = [row for row in rows if row.get("val_psnr")]
        val = "-"
        if validated:
            last = validated[-1]
            val = f"{float(last['val_psnr_x2']):.2f} / {float(last['val_psnr_x4']):.2f} (epoch {last['epoch']})"
        lines.append(f"| {label(log.parent.name)} | {rows[-1]['epoch']} of {record.config.epochs} "
                     f"| {int(rows[-1]['epoch']) * record.iterations_per_epoch:,} | {record.minutes:.0f} "
                     f"| {record.median_epoch_seconds:.0f} "
                     f"| {float(rows[-1]['train_loss']):.4f} | {val} |")
    return lines


def render(records: list[dict[str, Any]], runs: Path | None = None) -> str:
    records, pairs = split_precision_check(records)
    records = sorted(records, key=order)
    shown = [{**r, "model": label(r["model"])} for r in records]
    benchmark = [r for r in records if r["protocol"] == "benchmark"]
    div2k = [r for r in records if r["protocol"] == "div2k"]
    out = ["<!-- Written by tools/results_tables.py from `liifsr evaluate` reports; do not edit. -->", ""]
    if runs is not None:
        out += ["## The training runs", ""] + runs_table(runs) + [""]
    if benchmark:
        out += ["## Table 3: benchmark sets", "", format_markdown([r for r in shown if r["protocol"] == "benchmark"]), ""]
    if div2k:
        out += ["## Table 4 analogue: the div2k protocol on Urban100", "",
                format_markdown([r for r in shown if r["protocol"] == "div2k"]), ""]
    paper4 = {base_name(r["dataset"]): PAPER_TABLE_4 for r in div2k}
    sections = [("## Ours / the paper's Table 3 (PSNR, dB, seed 0)", side_by_side(benchmark, PAPER_TABLE_3, PAPER_SCALES_3)),
                ("## Ours (Urban100) / the paper's Table 4 (DIV2K) (PSNR, dB, seed 0)",
                 side_by_side(div2k, paper4, PAPER_SCALES_4)),
                ("## The claims' differences: ours (the paper's), PSNR dB, benchmark protocol",
                 differences(benchmark, PAPER_TABLE_3, PAPER_SCALES_3)),
                ("## The claims' differences: ours on Urban100 (the paper's on DIV2K), div2k protocol",
                 differences(div2k, paper4, PAPER_SCALES_4))]
    for title, lines in sections:
        if len(lines) > 2:  # a header and at least one row measured
            out += [title, ""] + lines + [""]
    if pairs:
        out += ["## bf16 against fp32 (PSNR difference, dB)", ""] + precision_check(sorted(pairs, key=lambda p: order(p[0])))
    return "\n".join(out).rstrip() + "\n"


def first_table(text: str, heading: str) -> str | None:
    """The first Markdown table after `heading` in `text` (None without that heading)."""
    if heading not in text:
        return None
    after = text.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(after) if line.startswith("|"))
    return "\n".join(itertools.takewhile(lambda line: line.startswith("|"), after[start:]))


def fill_block(document: str, name: str, table: str) -> str:
    """`document` with the block between `<!-- name -->` and `<!-- /name -->` replaced by
    `table` (unchanged where it has no such block)."""
    pattern = re.compile(rf"(<!-- {name} -->\n)(?:.*?\n)?(<!-- /{name} -->)", re.S)
    return pattern.sub(lambda match: match.group(1) + table.rstrip("\n") + "\n" + match.group(2), document)


def fill(document: str, tables: str) -> str:
    """`document` with each marked block replaced by its section's first table."""
    for name, heading in INTO_SECTIONS.items():
        table = first_table(tables, heading)
        if table is not None:
            document = fill_block(document, name, table)
    return document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path, help="folder of `liifsr evaluate` JSON reports")
    parser.add_argument("--runs", type=Path, help="the runs folder of tools/train_experiment.sh (adds the runs table)")
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/results/tables.md"))
    parser.add_argument("--into", type=Path, help="a document with <!-- NAME --> blocks to update (docs/results.md)")
    args = parser.parse_args()
    records = read_records(args.eval_dir)
    if not records:
        raise SystemExit(f"results_tables: no records in {args.eval_dir}/*.json")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tables = render(records, args.runs)
    with atomic_write(args.out) as tmp:
        tmp.write_text(tables, encoding="utf-8")
    print(f"results_tables: {len(records)} records -> {args.out}")
    if args.into is not None:
        with atomic_write(args.into) as tmp:
            tmp.write_text(fill(args.into.read_text(), tables), encoding="utf-8")
        print(f"results_tables: tables -> {args.into}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
