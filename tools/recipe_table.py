"""The recipe study's table: for each run folder, its recipe, held-out PSNR at the end and
what it cost (iterations, HR pixels seen, minutes of epochs).

    python tools/recipe_table.py RUN_DIR ...
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from liifsr.evaluation.reports import markdown_row
from liifsr.training.runlog import RunRecord, read_run


def recipe(run: RunRecord) -> str:
    optim = run.config.optim
    schedule = (f"cosine to {optim.min_lr:g}" if optim.schedule == "cosine"
                else f"x{optim.gamma:g} at epochs {', '.join(map(str, optim.milestones))}")
    return (f"Adam {optim.lr:g}, {schedule}; batch {run.config.batch_size}, "
            f"{run.config.data.patch_size} px patches")


def last_scores(name: str, run: RunRecord) -> dict[str, float]:
    """The last logged validation row's held-out PSNR columns (val_psnr, val_psnr_x2, ...)."""
    scored = [row for row in run.rows if row.get("val_psnr")]
    if not scored:
        raise SystemExit(f"recipe_table: run {name!r} has no validation yet: let it finish (or resume it)")
    return {key: float(value) for key, value in scored[-1].items() if key.startswith("val_psnr") and value}


def held_out_scales(scores: Iterable[dict[str, float]]) -> list[str]:
    """The per-scale columns (val_psnr_x2, val_psnr_x4, ...) that any of `scores` has, by scale."""
    return sorted({key for s in scores for key in s if key != "val_psnr"},
                  key=lambda key: float(key.removeprefix("val_psnr_x")))


def recipe_table(runs: dict[str, RunRecord]) -> str:
    """Markdown, best held-out PSNR first: arm, recipe, held-out PSNR (mean and per scale),
    iterations, the median epoch's seconds and the minutes of all epochs."""
    scores = {name: last_scores(name, run) for name, run in runs.items()}
    scales = held_out_scales(scores.values())
    lines = [markdown_row(["arm", "recipe", "held-out (dB)"] + [f"held-out {s.removeprefix('val_psnr_')}" for s in scales]
                          + ["iterations", "s per epoch", "minutes"]),
             markdown_row(["---", "---"] + ["---:"] * (len(scales) + 4))]
    for name in sorted(runs, key=lambda n: -scores[n]["val_psnr"]):
        run, score = runs[name], scores[name]
        iterations = len(run.rows) * run.iterations_per_epoch
        lines.append(markdown_row([name, recipe(run), f"{score['val_psnr']:.2f}"]
                                  + [f"{score[s]:.2f}" if s in score else "" for s in scales]
                                  + [f"{iterations:,}", f"{run.median_epoch_seconds:.0f}", f"{run.minutes:.0f}"]))
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    print(recipe_table({Path(p).name: read_run(Path(p)) for p in argv}), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
