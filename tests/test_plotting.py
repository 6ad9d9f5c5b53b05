"""`liifsr plot-log`: learning-rate and loss curves of runs."""

from __future__ import annotations

import numpy as np
from PIL import Image

from liifsr.cli import main
from liifsr.plotting import read_curves

HEADER = "epoch,lr,train_loss,val_psnr,seconds,data_seconds,val_psnr_x2\n"


def write_run(folder, lrs, losses):
    folder.mkdir(parents=True)
    rows = [f"{e},{lr},{loss},,1.0,0.1,\n" for e, (lr, loss) in enumerate(zip(lrs, losses), start=1)]
    (folder / "log.csv").write_text(HEADER + "".join(rows))


def test_plot_log_draws_several_runs_into_one_png(tmp_path, capsys):
    write_run(tmp_path / "relu", [1e-4, 1e-4, 5e-5], [0.2, 0.1, 0.05])
    write_run(tmp_path / "siren", [1e-4, 5e-5, 2.5e-5], [0.3, 0.2, 0.1])
    output = tmp_path / "curves.png"
    assert main(["plot-log", str(tmp_path / "relu"), str(tmp_path / "siren"), "-o", str(output)]) == 0
    image = np.asarray(Image.open(output))
    assert image.shape[1] > image.shape[0] > 300  # two panels side by side
    assert not list(tmp_path.glob(".*.tmp"))
    curves = read_curves(tmp_path / "siren")
    assert curves.name == "siren" and curves.epochs == [1, 2, 3] and curves.lrs[-1] == 2.5e-5


def test_plot_log_missing_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["plot-log", str(tmp_path / "nope"), "-o", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("liifsr: error:") and err.count("\n") == 1 and "log.csv" in err
    assert not (tmp_path / "c.png").exists()


def test_plot_log_names_a_damaged_log(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("epoch,lr,train_loss\n1,fast,0.5\n")
    assert main(["plot-log", str(run), "-o", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "log.csv" in err and "damaged" in err and "\n" not in err, err
