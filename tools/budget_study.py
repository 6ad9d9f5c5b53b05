"""The budget study's table and plot (docs/results.md): SIREN-30 minus ReLU against iterations.

    python tools/budget_study.py EVAL_DIR [-o docs/results/budget.png]

Reads the `liifsr evaluate` JSON reports in EVAL_DIR named `i<ITERATIONS>-seed<N>-*.json`
(records of edsrless-liif-relu and edsrless-liif-siren30 models: any model name holding
"relu" or "siren30"), and prints in Markdown SIREN-30 minus ReLU per dataset and scale at
every budget (the mean over seeds, and half the spread between the highest and lowest
seed where there are several) and both models' mean PSNR. The plot has two panels against
iterations on a log axis: the lead, with the seed spread as error bars, and both models'
PSNR; the paper's 600,000-iteration numbers (its Table 3) are drawn beside them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling tool, run as a script or loaded by path

from results_tables import PAPER_SCALES_3, PAPER_TABLE_3  # noqa: E402

from liifsr.files import atomic_write  # noqa: E402

PAPER_ITERATIONS = 600_000
REPORT_NAME = re.compile(r"i(\d+)-seed(\d+)-.*\.json")
FAMILIES = ("relu", "siren30")


def family(model: str) -> str | None:
    name = Path(model).name
    return next((f for f in reversed(FAMILIES) if f in name), None)


def read_scores(eval_dir: Path) -> dict[tuple[int, str, float], dict[str, dict[int, float]]]:
    """(iterations, dataset, scale) -> family -> seed -> PSNR."""
    scores: dict = defaultdict(lambda: defaultdict(dict))
    for path in sorted(eval_dir.glob("*.json")):
        match = REPORT_NAME.fullmatch(path.name)
        if not match:
            continue
        iterations, seed = int(match.group(1)), int(match.group(2))
        for record in json.loads(path.read_text()):
            kind = family(record["model"])
            if kind is not None:
                scores[(iterations, record["dataset"], record["scale"])][kind][seed] = record["psnr"]
    return scores


def lead(by_family: dict[str, dict[int, float]]) -> tuple[float, float] | None:
    """SIREN-30 minus ReLU: the mean over the seeds both have, and half their spread (0 for one seed)."""
    seeds = sorted(by_family.get("relu", {}).keys() & by_family.get("siren30", {}).keys())
    if not seeds:
        return None
    leads = [by_family["siren30"][s] - by_family["relu"][s] for s in seeds]
    return mean(leads), (max(leads) - min(leads)) / 2


def paper_lead(dataset: str, scale: float) -> float | None:
    if dataset not in PAPER_TABLE_3 or scale not in PAPER_SCALES_3:
        return None
    k = PAPER_SCALES_3.index(scale)
    return PAPER_TABLE_3[dataset]["edsrless-liif-siren30"][k] - PAPER_TABLE_3[dataset]["edsrless-liif-relu"][k]


def format_table(scores: dict) -> str:
    cells = sorted({(d, s) for _, d, s in scores})
    budgets = sorted({i for i, _, _ in scores})
    header = "| Iterations | " + " | ".join(f"{d} x{s:g}" for d, s in cells) + " |"
    lines = [header, "|---:|" + "---:|" * len(cells)]
    for iterations in budgets:
        row = []
        for d, s in cells:
            value = lead(scores.get((iterations, d, s), {}))
            row.append("" if value is None else f"{value[0]:+.2f}" + (f" ± {value[1]:.2f}" if value[1] else ""))
        lines.append(f"| {iterations:,} | " + " | ".join(row) + " |")
    paper = [paper_lead(d, s) for d, s in cells]
    lines.append(f"| {PAPER_ITERATIONS:,} (the paper) | " + " | ".join("" if p is None else f"{p:+.2f}" for p in paper) + " |")
    return "\n".join(lines) + "\n"


def plot(scores: dict, output: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2))
    lead_axes, psnr_axes = figure.subplots(1, 2)
    cells = sorted({(d, s) for _, d, s in scores})
    for index, (dataset, scale) in enumerate(cells):
        budgets = sorted(i for i, d, s in scores if (d, s) == (dataset, scale) and lead(scores[(i, d, s)]))
        values = [lead(scores[(i, dataset, scale)]) for i in budgets]
        color = f"C{index}"
        label = f"{dataset} x{scale:g}"
        lead_axes.errorbar(budgets, [v[0] for v in values], yerr=[v[1] for v in values], marker="o", capsize=3,
                           color=color, label=label)
        paper = paper_lead(dataset, scale)
        if paper is not None:
            lead_axes.plot([PAPER_ITERATIONS], [paper], marker="*", markersize=9, color=color, linestyle="none")
        for kind, style in zip(FAMILIES, ("--", "-")):
            means = [mean(scores[(i, dataset, scale)][kind].values()) for i in budgets]
            psnr_axes.plot(budgets, means, marker="o", linestyle=style, color=color,
                           label=f"{label} {'ReLU' if kind == 'relu' else 'SIREN-30'}")
            if dataset in PAPER_TABLE_3 and scale in PAPER_SCALES_3:
                paper_psnr = PAPER_TABLE_3[dataset][f"edsrless-liif-{kind}"][PAPER_SCALES_3.index(scale)]
                psnr_axes.plot([PAPER_ITERATIONS], [paper_psnr], marker="*", markersize=9, color=color, linestyle="none")
    lead_axes.axhline(0, color="0.5", linewidth=0.8)
    for axes, title in ((lead_axes, "SIREN-30 minus ReLU (dB); stars: the paper"), (psnr_axes, "PSNR (dB); stars: the paper")):
        axes.set_xscale("log")
        axes.set_xlabel("training iterations (batch 16)")
        axes.set_title(title, fontsize=10)
    lead_axes.legend(fontsize=7)
    psnr_axes.legend(fontsize=6, ncol=2)
    figure.tight_layout()
    FigureCanvasAgg(figure)
    with atomic_write(output) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/results/budget.png"))
    args = parser.parse_args()
    scores = read_scores(args.eval_dir)
    if not scores:
        raise SystemExit(f"budget_study: no i<ITERATIONS>-seed<N>-*.json reports in {args.eval_dir}")
    print(format_table(scores), end="")
    print(plot(scores, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
