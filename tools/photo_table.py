"""The photo table: PSNR of each model on clean and degraded inputs, from `liifsr evaluate`
JSON reports (tools/photo_report.sh writes them).

    python tools/photo_table.py REPORT.json ...

One row per dataset and model (grouped by dataset), one column per degradation and
scale, each in the order the reports first name them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from liifsr.evaluation.reports import markdown_row


def read_records(paths: list[Path]) -> list[dict[str, Any]]:
    return [record for path in paths for record in json.loads(path.read_text())]


def photo_table(records: list[dict[str, Any]]) -> str:
    """Markdown: rows (dataset, model), columns (degradation, scale), cells PSNR in dB."""
    specs = list(dict.fromkeys(r["degrade"] for r in records))
    scales = sorted({r["scale"] for r in records})
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    models = list(dict.fromkeys(r["model"] for r in records))
    rows = sorted(dict.fromkeys((r["dataset"], r["model"]) for r in records),
                  key=lambda row: (datasets.index(row[0]), models.index(row[1])))
    cells = {(r["dataset"], r["model"], r["degrade"], r["scale"]): r["psnr"] for r in records}
    columns = [(spec, scale) for spec in specs for scale in scales]
    lines = [markdown_row(["dataset", "model"] + [f"{spec} x{scale:g}" for spec, scale in columns]),
             markdown_row(["---", "---"] + ["---:"] * len(columns))]
    for dataset, model in rows:
        values = [cells.get((dataset, model, spec, scale)) for spec, scale in columns]
        lines.append(markdown_row([dataset, f"`{model}`" if model != "bicubic" else model]
                                  + ["" if v is None else f"{v:.2f}" for v in values]))
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    print(photo_table(read_records([Path(p) for p in argv])), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
