"""The budget study's table and plot (docs/results.md): SIREN-30 minus ReLU against iterations.

    python tools/budget_study.py EVAL_DIR [-o docs/results/budget.png] [--into docs/results.md]

Reads the `liifsr evaluate` JSON reports in EVAL_DIR named `i<ITERATIONS>-seed<N>-*.json`
(records of edsrless-liif-relu and edsrless-liif-siren30 models: any model name holding
"relu" or "siren30"), and prints two Markdown tables, one row per dataset and budget and
one column per scale: SIREN-30 minus ReLU (the mean over seeds, and half the spread
between the highest and lowest seed where there are several) with the paper's below it,
then bicubic's and both models' PSNR (the mean over seeds) with the paper's; bicubic's
comes from any report in EVAL_DIR that scored it. The plot has, per dataset, two panels
against iterations on a log axis: the lead, with the seed spread as error bars, and both
models' PSNR; the paper's 600,000-iteration numbers (its Table 3) are drawn beside them.

With three budgets or more it also fits, per dataset and scale, the lead as a straight line
in log3(iterations) (weighted by the number of seeds at each budget) and prints its slope
(dB per tripling of the budget, over the budgets measured) with one standard deviation from
the seed noise: the per-run standard deviation of the lead between seeds, pooled over the
budgets with several seeds. That deviation covers the seeds' noise only, not whether the
lead really follows a line: a second row gives the line's largest miss of a budget's lead
beside the per-run seed deviation, and a miss well above that deviation says the lead bends.
The table does not carry the line to the paper's 600,000 iterations: a value there, with a
deviation that covers only the seed noise, would read as a prediction the line cannot make.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, variance

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling tool, run as a script or loaded by path

from results_tables import PAPER_SCALES_3, PAPER_TABLE_3, base_name, dataset_rank, fill_block, table_head  # noqa: E402

from liifsr.evaluation.reports import markdown_row  # noqa: E402
from liifsr.files import atomic_write  # noqa: E402

PAPER_ITERATIONS = 600_000
REPORT_NAME = re.compile(r"i(\d+)-seed(\d+)-.*\.json")
FAMILIES = ("relu", "siren30")
LABELS = {"relu": "ReLU", "siren30": "SIREN-30"}


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


def read_bicubic(eval_dir: Path) -> dict[tuple[str, float], float]:
    """(dataset, scale) -> bicubic's PSNR, from any report in eval_dir that has it."""
    return {(record["dataset"], record["scale"]): record["psnr"] for path in sorted(eval_dir.glob("*.json"))
            for record in json.loads(path.read_text()) if record["model"] == "bicubic"}


def datasets_of(scores: dict) -> list[str]:
    """The datasets of `scores` in the paper's order."""
    return sorted({d for _, d, _ in scores}, key=lambda d: (dataset_rank(d), d))


def scales_of(scores: dict) -> list[float]:
    return sorted({s for _, _, s in scores})


def all_budgets(scores: dict) -> list[int]:
    """Every budget in `scores` (budgets_of: those at which one cell has both families)."""
    return sorted({i for i, _, _ in scores})


def cells_of(scores: dict) -> list[tuple[str, float]]:
    """The (dataset, scale) cells of `scores`, datasets in the paper's order."""
    return sorted({(d, s) for _, d, s in scores}, key=lambda cell: (dataset_rank(cell[0]), cell[0], cell[1]))


def seed_leads(by_family: dict[str, dict[int, float]]) -> list[float]:
    """SIREN-30 minus ReLU for each seed both have, in seed order."""
    seeds = sorted(by_family.get("relu", {}).keys() & by_family.get("siren30", {}).keys())
    return [by_family["siren30"][s] - by_family["relu"][s] for s in seeds]


def lead(by_family: dict[str, dict[int, float]]) -> tuple[float, float] | None:
    """SIREN-30 minus ReLU: the mean over the seeds both have, and half their spread (0 for one seed)."""
    leads = seed_leads(by_family)
    if not leads:
        return None
    return mean(leads), (max(leads) - min(leads)) / 2


def budgets_of(scores: dict, dataset: str, scale: float) -> list[int]:
    """The budgets at which both families scored the cell with a seed in common."""
    return sorted(i for i, d, s in scores if (d, s) == (dataset, scale) and seed_leads(scores[(i, d, s)]))


def seed_noise(by_budget: list[dict[str, dict[int, float]]]) -> float | None:
    """The per-run standard deviation of the lead between seeds, pooled over the budgets
    that have several seeds; None if none has."""
    pooled, dof = 0.0, 0
    for by_family in by_budget:
        leads = seed_leads(by_family)
        if len(leads) > 1:
            pooled += variance(leads) * (len(leads) - 1)
            dof += len(leads) - 1
    return math.sqrt(pooled / dof) if dof else None


@dataclass(frozen=True)
class TriplingFit:
    """lead = intercept + slope * log3(iterations), weighted least squares (weight: the
    number of seeds averaged at a budget), with `noise` the per-run standard deviation."""

    slope: float  # dB per tripling of the budget
    intercept: float
    noise: float
    sxx: float  # the weighted sum of squares of log3(iterations) about their weighted mean
    largest_miss: float  # the largest distance, in dB, between the line and a budget's mean lead

    def at(self, iterations: float) -> float:
        return self.intercept + self.slope * math.log(iterations, 3)

    @property
    def slope_sd(self) -> float:
        return self.noise / math.sqrt(self.sxx)


def tripling_fit(points: list[tuple[int, float, int]], noise: float) -> TriplingFit:
    """The line through (iterations, mean lead, seeds) points in log3(iterations)."""
    if len({iterations for iterations, _, _ in points}) < 2:
        raise ValueError("a line needs at least two budgets")
    xs = [math.log(iterations, 3) for iterations, _, _ in points]
    ys = [value for _, value, _ in points]
    ws = [float(seeds) for _, _, seeds in points]
    weight = sum(ws)
    x_mean = sum(w * x for w, x in zip(ws, xs)) / weight
    y_mean = sum(w * y for w, y in zip(ws, ys)) / weight
    sxx = sum(w * (x - x_mean) ** 2 for w, x in zip(ws, xs))
    slope = sum(w * (x - x_mean) * (y - y_mean) for w, x, y in zip(ws, xs, ys)) / sxx
    intercept = y_mean - slope * x_mean
    largest_miss = max(abs(y - intercept - slope * x) for x, y in zip(xs, ys))
    return TriplingFit(slope, intercept, noise, sxx, largest_miss)


def fits(scores: dict) -> dict[tuple[str, float], TriplingFit]:
    """The tripling fit of each (dataset, scale) with three budgets or more and a seed noise."""
    out = {}
    for dataset, scale in cells_of(scores):
        budgets = budgets_of(scores, dataset, scale)
        noise = seed_noise([scores[(i, dataset, scale)] for i in budgets])
        if len(budgets) < 3 or noise is None:
            continue
        leads = [seed_leads(scores[(i, dataset, scale)]) for i in budgets]
        out[(dataset, scale)] = tripling_fit([(i, mean(lead), len(lead)) for i, lead in zip(budgets, leads)], noise)
    return out


def paper_psnr(dataset: str, scale: float, kind: str) -> float | None:
    """The paper's Table 3 PSNR of EDSR-LESS-LIIF-<kind> (None where it has no such cell)."""
    dataset = base_name(dataset)
    if dataset not in PAPER_TABLE_3 or scale not in PAPER_SCALES_3:
        return None
    return PAPER_TABLE_3[dataset][f"edsrless-liif-{kind}"][PAPER_SCALES_3.index(scale)]


def paper_lead(dataset: str, scale: float) -> float | None:
    relu, siren = (paper_psnr(dataset, scale, kind) for kind in FAMILIES)
    return None if relu is None else siren - relu


def mean_psnr(by_family: dict[str, dict[int, float]], kind: str) -> float | None:
    """A family's PSNR, the mean over its seeds (None where it has none)."""
    seeds = by_family.get(kind)
    return mean(seeds.values()) if seeds else None


def format_lead(value: tuple[float, float] | None) -> str:
    if value is None:
        return ""
    return f"{value[0]:+.2f}" + (f" ± {value[1]:.2f}" if value[1] else "")


def pair_text(values: list[float | None]) -> str:
    """'ReLU / SIREN-30' PSNR, '-' for a missing one, empty when both are."""
    if all(v is None for v in values):
        return ""
    return " / ".join("-" if v is None else f"{v:.2f}" for v in values)


def format_table(scores: dict) -> str:
    """Per dataset, one row per budget with the lead at each scale, then (where a scale has
    three budgets) the line's dB per tripling and how far it passes from the budgets' leads
    beside the seed noise, then the paper's lead."""
    scales, found = scales_of(scores), fits(scores)
    lines = table_head(["Dataset", "Iterations"], [f"x{s:g}" for s in scales])
    for dataset in datasets_of(scores):
        rows = []
        for iterations in all_budgets(scores):
            values = [lead(scores.get((iterations, dataset, s), {})) for s in scales]
            if any(values):
                rows.append([f"{iterations:,}", *map(format_lead, values)])
        line = [found.get((dataset, s)) for s in scales]
        if any(line):
            rows.append(["dB per tripling (the line)",
                         *("" if f is None else f"{f.slope:+.2f} ± {f.slope_sd:.2f}" for f in line)])
            rows.append(["the line's largest miss (seed SD)",
                         *("" if f is None else f"{f.largest_miss:.2f} ({f.noise:.2f})" for f in line)])
        paper = [paper_lead(dataset, s) for s in scales]
        if any(value is not None for value in paper):
            rows.append([f"{PAPER_ITERATIONS:,} (the paper)", *("" if v is None else f"{v:+.2f}" for v in paper)])
        lines += [markdown_row([dataset, *row]) for row in rows]
    return "\n".join(lines) + "\n"


def format_psnr_table(scores: dict, bicubic: dict[tuple[str, float], float]) -> str:
    """Per dataset, bicubic's PSNR, then both models' (ReLU / SIREN-30, the mean over seeds)
    at every budget and in the paper, one column per scale."""
    scales = scales_of(scores)
    lines = table_head(["Dataset", "Iterations"], [f"x{s:g}: {' / '.join(LABELS.values())}" for s in scales])
    for dataset in datasets_of(scores):
        rows = [["bicubic", *(f"{bicubic[(dataset, s)]:.2f}" if (dataset, s) in bicubic else "" for s in scales)]]
        for iterations in all_budgets(scores):
            cells = [[mean_psnr(scores.get((iterations, dataset, s), {}), kind) for kind in FAMILIES] for s in scales]
            if any(v is not None for pair in cells for v in pair):
                rows.append([f"{iterations:,}", *map(pair_text, cells)])
        paper = [[paper_psnr(dataset, s, kind) for kind in FAMILIES] for s in scales]
        if any(v is not None for pair in paper for v in pair):
            rows.append([f"{PAPER_ITERATIONS:,} (the paper)", *map(pair_text, paper)])
        lines += [markdown_row([dataset, *row]) for row in rows]
    return "\n".join(lines) + "\n"


def plot(scores: dict, output: Path) -> Path:
    """Per dataset, a column of two panels: the lead (error bars: half the seed spread; dotted:
    the fitted line, where there is one) and both models' PSNR, against iterations; one
    colour per scale, stars the paper's."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    datasets, scales, found = datasets_of(scores), scales_of(scores), fits(scores)
    figure = Figure(figsize=(3.2 * len(datasets) + 1, 6.4))
    axes = figure.subplots(2, len(datasets), squeeze=False, sharex=True)
    for column, dataset in enumerate(datasets):
        lead_axes, psnr_axes = axes[0][column], axes[1][column]
        for scale in scales:
            budgets = budgets_of(scores, dataset, scale)
            if not budgets:
                continue
            values = [lead(scores[(i, dataset, scale)]) for i in budgets]
            color = f"C{scales.index(scale)}"
            lead_axes.errorbar(budgets, [v[0] for v in values], yerr=[v[1] for v in values], marker="o", capsize=3,
                               color=color, label=f"x{scale:g}")
            paper = paper_lead(dataset, scale)
            if paper is not None:
                lead_axes.plot([PAPER_ITERATIONS], [paper], marker="*", markersize=9, color=color, linestyle="none")
            fit = found.get((dataset, scale))
            if fit is not None:  # the line, carried on to the paper's budget
                ends = [budgets[0], PAPER_ITERATIONS]
                lead_axes.plot(ends, [fit.at(i) for i in ends], linestyle=":", linewidth=1, color=color)
            for kind, style in zip(FAMILIES, ("--", "-")):
                means = [mean_psnr(scores[(i, dataset, scale)], kind) for i in budgets]
                psnr_axes.plot(budgets, means, marker="o", linestyle=style, color=color,
                               label=f"x{scale:g} {LABELS[kind]}")
                paper_value = paper_psnr(dataset, scale, kind)
                if paper_value is not None:
                    psnr_axes.plot([PAPER_ITERATIONS], [paper_value], marker="*", markersize=9, color=color,
                                   linestyle="none")
        lead_axes.axhline(0, color="0.5", linewidth=0.8)
        lead_axes.set_title(f"{dataset}: SIREN-30 minus ReLU (dB)", fontsize=9)
        psnr_axes.set_title(f"{dataset}: PSNR (dB)", fontsize=9)
        psnr_axes.set_xlabel("training iterations (batch 16)")
        for panel in (lead_axes, psnr_axes):
            panel.set_xscale("log")
    axes[0][0].legend(fontsize=7, title="stars: the paper", title_fontsize=7)
    axes[1][0].legend(fontsize=6)
    figure.tight_layout()
    FigureCanvasAgg(figure)
    with atomic_write(output) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/results/budget.png"))
    parser.add_argument("--into", type=Path, help="a document whose <!-- budget-lead --> and <!-- budget-psnr --> "
                        "blocks get the two tables (docs/results.md)")
    args = parser.parse_args()
    scores = read_scores(args.eval_dir)
    if not scores:
        raise SystemExit(f"budget_study: no i<ITERATIONS>-seed<N>-*.json reports in {args.eval_dir}")
    leads, psnr = format_table(scores), format_psnr_table(scores, read_bicubic(args.eval_dir))
    print(leads + "\n" + psnr, end="")
    if args.into is not None:
        with atomic_write(args.into) as tmp:
            tmp.write_text(fill_block(fill_block(args.into.read_text(), "budget-lead", leads), "budget-psnr", psnr),
                           encoding="utf-8")
        print(f"budget_study: tables -> {args.into}")
    print(plot(scores, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
