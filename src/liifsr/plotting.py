"""Training curves of runs, as `liifsr plot-log RUN_DIR [RUN_DIR ...] -o curves.png` draws them.

Two panels, like the paper's Figures 3 and 4: the learning rate and the training loss
against the epoch, one line per run (legend = the run folder's name), read from each
run's log.csv (written by `liifsr train`). The image is written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from liifsr.files import atomic_write, check_output_path
from liifsr.training.config import TrainError
from liifsr.training.runlog import read_log

FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


class PlotError(ValueError):
    """A run folder or output path that cannot be used; one-line message."""


@dataclass
class Curves:
    name: str
    epochs: list[int]
    lrs: list[float]
    losses: list[float]


def read_curves(run: str | Path, name: str | None = None) -> Curves:
    """The epoch, lr and train_loss columns of a run folder's log.csv (or of a CSV file)."""
    run = Path(run)
    log = run if run.suffix == ".csv" else run / "log.csv"
    if not log.is_file():
        raise PlotError(f"{str(log)!r} does not exist (give run folders written by `liifsr train`)")
    try:
        rows = read_log(log)
    except TrainError as error:
        raise PlotError(str(error)) from None
    if not rows:
        raise PlotError(f"{str(log)!r} has no epochs yet")
    missing = {"epoch", "lr", "train_loss"} - set(rows[0])
    if missing:
        raise PlotError(f"{str(log)!r} lacks the column(s) {sorted(missing)}")
    label = name or (log.parent.name if log.name == "log.csv" else log.stem)
    try:
        return Curves(label, [int(r["epoch"]) for r in rows], [float(r["lr"]) for r in rows],
                      [float(r["train_loss"]) for r in rows])
    except (TypeError, ValueError) as error:
        raise PlotError(f"{str(log)!r} is damaged: {error} (give a log.csv written by `liifsr train`)") from None


def unique_names(runs: list[Path]) -> list[str]:
    """Folder names for the legend, or whole paths where two runs share a name."""
    names = [run.name if run.suffix != ".csv" else run.stem for run in runs]
    return [str(run) if names.count(name) > 1 else name for run, name in zip(runs, names)]


def plot_curves(curves: list[Curves], output: str | Path, dpi: int = 120) -> Path:
    """Draw the learning-rate and loss panels and write them to `output` atomically."""
    # The object API with an Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    output = check_output_path(output, FORMATS, "plot")
    fmt = output.suffix.lower().lstrip(".")

    figure = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    lr_axes, loss_axes = figure.subplots(1, 2)
    for curve in curves:
        # The rate is constant within an epoch and changes between epochs: steps.
        lr_axes.plot(curve.epochs, curve.lrs, label=curve.name, drawstyle="steps-post")
        loss_axes.plot(curve.epochs, curve.losses, label=curve.name)
    lr_axes.set(title="Learning rate vs. epochs", xlabel="epoch", ylabel="learning rate")
    lr_axes.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    loss_axes.set(title="Training loss vs. epochs", xlabel="epoch", ylabel="L1 loss (normalised RGB)")
    for axes in (lr_axes, loss_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    with atomic_write(output) as tmp:
        figure.savefig(tmp, format=fmt, dpi=dpi)
    return output
