"""What `--precision auto` changes: each model's PSNR in bf16 minus fp32, from two sets of
`liifsr evaluate` JSON reports of the same models, datasets and scales.

    liifsr evaluate --model M ... --dataset ../shared/data/benchmark/Set5 \
        ../shared/data/benchmark/Set14 --scales 2,3,4,6,8 --precision fp32 --out fp32.json
    (the same with --precision bf16 --out bf16.json)
    python tools/precision_change.py fp32.json bf16.json

One row per model: the change on each dataset and scale (dB, bf16 - fp32) and the largest
magnitude; models above the 0.01 dB line are named on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from liifsr.evaluation.reports import markdown_row

LINE_DB = 0.01  # the change that auto may make; a model above it should keep fp32


def psnr_cells(records: list[dict[str, Any]]) -> dict[tuple[str, str, float], float]:
    return {(r["model"], r["dataset"], r["scale"]): r["psnr"] for r in records}


def change_table(fp32: list[dict[str, Any]], bf16: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """Markdown of bf16 - fp32 per (model; dataset, scale), and the models above LINE_DB."""
    before, after = psnr_cells(fp32), psnr_cells(bf16)
    missing = sorted(set(before) ^ set(after))
    if missing:
        raise SystemExit(f"precision_change: the two reports differ in {missing[0]} (and {len(missing) - 1} more): "
                         "evaluate the same models, datasets and scales twice")
    models = list(dict.fromkeys(key[0] for key in before))
    columns = list(dict.fromkeys((key[1], key[2]) for key in before))
    lines = [markdown_row(["model"] + [f"{d} x{s:g}" for d, s in columns] + ["largest magnitude"]),
             markdown_row(["---"] + ["---:"] * (len(columns) + 1))]
    above = []
    for model in models:
        changes = [after[(model, d, s)] - before[(model, d, s)] for d, s in columns]
        largest = max(abs(c) for c in changes)
        if largest > LINE_DB:
            above.append(model)
        lines.append(markdown_row([f"`{model}`"] + [f"{c:+.4f}" for c in changes] + [f"{largest:.4f}"]))
    return "\n".join(lines) + "\n", above


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    fp32, bf16 = (json.loads(Path(p).read_text()) for p in argv)
    table, above = change_table([r for r in fp32 if r["model"] != "bicubic"],
                                [r for r in bf16 if r["model"] != "bicubic"])
    print(table, end="")
    if above:
        print(f"above {LINE_DB} dB: {', '.join(above)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
