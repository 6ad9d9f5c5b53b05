"""`liifsr train` never leaves a wrong result behind: a diverging run stops at its first
non-finite loss or weight, a resume cannot change what the run computes, a run that cannot
start leaves no run folder, and a resume clears the temporaries of a killed write."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from liifsr.cli import main
from test_train_config import fails, write_config


def run_files(out: Path) -> set[str]:
    return {path.name for path in out.iterdir()} if out.exists() else set()


def test_a_diverging_run_stops_in_one_line_and_leaves_no_nan_model(tmp_path, capsys):
    """lr = 1e30: the loss stays finite while the weights turn NaN (a ReLU of NaN can be 0);
    the run ended with status 0 and NaN in every tensor of last.safetensors and best.safetensors."""
    out = tmp_path / "run"
    err = fails(capsys, "train", write_config(tmp_path), "--out", out, "--set", "optim.lr=1e30", "--set", "epochs=3",
                "--threads", "1")
    assert "diverged in epoch" in err and "NaN or infinite" in err and "optim.lr" in err, err
    for name in {"last.safetensors", "best.safetensors", "last.state.safetensors"} & run_files(out):
        assert all(bool(torch.isfinite(value).all()) for value in load_file(str(out / name)).values()), name


def test_a_resume_refuses_another_config_and_clears_stale_temporaries(tmp_path, capsys):
    config, out = write_config(tmp_path), tmp_path / "run"
    assert main(["train", str(config), "--out", str(out), "--threads", "1"]) == 0
    saved = (out / "config.yaml").read_text()
    # A run killed while it synced a checkpoint leaves atomic_write's temporaries behind.
    stale = [out / ".last.0123abcd.tmp.safetensors", out / ".last.state.deadbeef.tmp.safetensors",
             out / ".log.89abcdef.tmp.csv"]
    for path in stale:
        path.write_bytes(b"half a file")
    (out / ".notes.0123abcd.tmp.txt").write_text("not the run's")

    err = fails(capsys, "train", config, "--out", out, "--resume", "--set", "optim.lr=2e-3", "--set", "epochs=2",
                "--set", "batch_size=1")
    assert "differs from the run's" in err and "batch_size, optim.lr" in err and "(batch_size: 2 there, 1 here)" in err, err
    assert (out / "config.yaml").read_text() == saved  # nothing was changed
    assert len(yaml.safe_load(saved)) > 5 and all(path.exists() for path in stale)

    # What only changes how it runs (threads, workers, device) and how long it goes on may change.
    assert main(["train", str(config), "--out", str(out), "--resume", "--set", "epochs=2", "--threads", "1",
                 "--workers", "0", "--device", "cpu"]) == 0
    assert not any(path.exists() for path in stale) and (out / ".notes.0123abcd.tmp.txt").exists()
    assert yaml.safe_load((out / "config.yaml").read_text())["epochs"] == 2
    assert load_file(str(out / "last.safetensors"))  # the resumed run's result


def test_a_run_that_cannot_start_leaves_no_run_folder(tmp_path, capsys):
    """Validated before anything is written: no images, a negative seed, a corrupt image that
    `data.cache: false` would only have met in the first epoch."""
    config = write_config(tmp_path)
    (tmp_path / "empty").mkdir()
    corrupt = tmp_path / "images" / "3.png"
    cases = [(["--set", f"data.train_dirs=[{tmp_path / 'empty'}]"], "holds no"), (["--set", "seed=-1"], "seed")]
    for extra, message in cases:
        out = tmp_path / "run"
        assert message in fails(capsys, "train", config, "--out", out, *extra)
        assert not out.exists(), extra
    corrupt.write_bytes(corrupt.read_bytes()[:100])  # truncated
    out = tmp_path / "run"
    err = fails(capsys, "train", config, "--out", out, "--set", "data.cache=false", "--set", "data.val_count=0")
    assert "3.png" in err and "truncated" in err and not out.exists()
    # A folder that held something before the run is left as it was.
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    fails(capsys, "train", config, "--out", out, "--set", "data.cache=false", "--set", "data.val_count=0")
    assert run_files(out) <= {"notes.txt", ".liifsr-train.lock"} and (out / "notes.txt").read_text() == "mine"
