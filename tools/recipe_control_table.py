"""The recipe control's table (docs/results.md, claim 1), from tools/recipe_control.sh's
folder: each decoder's PSNR at each learning rate under the common schedule (seed 0: the
held-out images from the run's last validation, the benchmark sets from OUT_DIR/eval/), each
decoder's best rate (the highest mean held-out PSNR of its seed-0 runs), and the lead
SIREN-30 - ReLU at those two rates with its 95 % interval: over the images, and over the
seeds where a best rate has several (liifsr.evaluation.paired). Where it has, the mean of
each best rate's seeds gets a column beside the grid, and the lead is the difference of
those means. Held-out rows have no interval (the runs log means, not per-image scores).

    python tools/recipe_control_table.py OUT_DIR [--precision bf16] [--resamples 10000]

Runs are the finished folders OUT_DIR/<preset>-lr<rate>-seed<N>; a rate or seed not yet
trained or scored shows as "-".
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling tools, run as a script or loaded by path

from claims_table import interval_text
from recipe_table import held_out_scales, last_scores
from results_tables import dataset_rank

from liifsr.evaluation.paired import DEFAULT_RESAMPLES, Cell, cell_of, paired_stats, read_reports
from liifsr.evaluation.reports import markdown_row
from liifsr.training.runlog import RunRecord, read_run

DECODERS = {"edsrless-liif-relu": "ReLU", "edsrless-liif-siren30": "SIREN-30"}
RUN_NAME = re.compile(r"(?P<preset>.+?)-lr(?P<rate>.+)-seed(?P<seed>\d+)")

Arm = tuple[str, str]  # (preset, learning rate as in the folder's name)


class Run(NamedTuple):
    folder: Path
    record: RunRecord


def finished_runs(out: Path) -> dict[Arm, dict[int, Run]]:
    """(preset, rate) -> seed -> run, for the finished runs of the control's presets."""
    runs: dict[Arm, dict[int, Run]] = {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        match = RUN_NAME.fullmatch(folder.name)
        if match and match["preset"] in DECODERS and (record := read_run(folder)).finished:
            runs.setdefault((match["preset"], match["rate"]), {})[int(match["seed"])] = Run(folder, record)
    return runs


def best_rates(held_out: dict[Arm, dict[str, float]]) -> dict[str, str]:
    """preset -> the rate whose seed-0 run has the highest mean held-out PSNR."""
    best: dict[str, str] = {}
    for (preset, rate), scores in held_out.items():
        if preset not in best or scores["val_psnr"] > held_out[(preset, best[preset])]["val_psnr"]:
            best[preset] = rate
    return best


def seeds_text(seeds: dict[int, Run]) -> str:
    return f"seed {next(iter(seeds))}" if len(seeds) == 1 else f"mean of seeds {', '.join(map(str, sorted(seeds)))}"


def mean_held_out(preset: str, seeds: Iterable[RunRecord]) -> dict[str, float]:
    """The mean over an arm's seeds of each held-out column of their last validation (with
    one seed, that seed's)."""
    scores = [last_scores(preset, run) for run in seeds]
    return {key: sum(s[key] for s in scores) / len(scores) for key in scores[0]}


def control_table(out: Path, precision: str | None = "bf16", resamples: int = DEFAULT_RESAMPLES) -> str:
    runs = finished_runs(out)
    if not runs:
        raise SystemExit(f"recipe_control_table: no finished run of {', '.join(DECODERS)} in {out}")
    seed0 = {arm: seeds[0].record for arm, seeds in runs.items() if 0 in seeds}
    held_out = {arm: last_scores(arm[0], run) for arm, run in seed0.items()}
    best = best_rates(held_out)
    # with further seeds at the best rates, their means get columns of their own beside seed 0's grid
    best_arms = [(p, best[p]) for p in DECODERS if p in best]
    pooled = any(len(runs[arm]) > 1 for arm in best_arms)
    held_out_means = {arm: mean_held_out(arm[0], (run.record for run in runs[arm].values())) for arm in best_arms}
    arms = [(preset, rate) for preset in DECODERS for rate in sorted({r for _, r in runs}, key=float)]
    records = read_reports(sorted((out / "eval").glob("*.json")))
    if precision is not None:
        records = [r for r in records if r["precision"] == precision]
    # a record names its model file as recipe_control.sh gave it to `liifsr evaluate` (OUT_DIR's spelling)
    by_file = {Path(r["model"]).resolve(): r["model"] for r in records}

    def model_name(run: Path) -> str:
        return by_file.get((run / "last.safetensors").resolve(), str(run / "last.safetensors"))

    means = {(r["model"], cell_of(r)): r["psnr"] for r in records}
    cells = sorted({cell_of(r) for r in records}, key=lambda c: (dataset_rank(c.dataset), c.dataset, c.scale))
    has_lead = len(best) == len(DECODERS)
    relu_arm, siren_arm = ((p, best.get(p, "")) for p in DECODERS)

    lead: dict[Cell, str] = {}
    seed_means: dict[Cell, tuple[float, float]] = {}  # (ReLU, SIREN-30) at the best rates, over their seeds
    if has_lead:
        a_names, b_names = ([model_name(run.folder) for _, run in sorted(runs[arm].items())] for arm in (relu_arm, siren_arm))
        scored = {r["model"] for r in records}
        if set(a_names) <= scored and set(b_names) <= scored:
            for d in paired_stats(records, a_names, b_names, resamples=resamples)[1]:
                seeds = f", seeds {d.seeds_a} / {d.seeds_b}" if max(d.seeds_a, d.seeds_b) > 1 else ""
                lead[d.cell] = interval_text(d) + seeds
                seed_means[d.cell] = (d.mean_a, d.mean_b)

    def score_text(arm: Arm, value: float | None) -> str:
        if value is None:
            return "-"
        return f"**{value:.2f}**" if best.get(arm[0]) == arm[1] else f"{value:.2f}"

    header = ["dataset", "scale"] + [f"{DECODERS[p]}, {r}" for p, r in arms]
    if has_lead and pooled:
        header += [f"{DECODERS[p]}, {r}, {seeds_text(runs[(p, r)])}" for p, r in best_arms]
    if has_lead:
        header.append(f"lead, SIREN-30 {siren_arm[1]} - ReLU {relu_arm[1]} [95 %]")
    lines = [markdown_row(header), markdown_row(["---", "---"] + ["---:"] * (len(header) - 2))]
    val_count = next(iter(seed0.values())).config.data.val_count if seed0 else 0
    for key in held_out_scales(held_out.values()):
        row = [f"held-out ({val_count} images)", key.removeprefix("val_psnr_")]
        row += [score_text(arm, held_out.get(arm, {}).get(key)) for arm in arms]
        if has_lead and pooled:
            row += [f"{held_out_means[arm][key]:.2f}" for arm in best_arms]
        if has_lead:
            row.append(f"{held_out_means[siren_arm][key] - held_out_means[relu_arm][key]:+.2f}")
        lines.append(markdown_row(row))
    for cell in cells:
        row = [cell.dataset, f"x{cell.scale:g}"]
        row += [score_text(arm, means.get((model_name(runs[arm][0].folder), cell)) if arm in seed0 else None) for arm in arms]
        if has_lead and pooled:
            row += [f"{m:.2f}" for m in seed_means[cell]] if cell in seed_means else ["-", "-"]
        if has_lead:
            row.append(lead.get(cell, "-"))
        lines.append(markdown_row(row))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="tools/recipe_control.sh's OUT_DIR")
    parser.add_argument("--precision", default="bf16", help="the reports' precision to use (default bf16)")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples")
    args = parser.parse_args(argv)
    print(control_table(args.out, args.precision, args.resamples), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
