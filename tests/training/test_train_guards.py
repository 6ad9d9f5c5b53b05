"""`liifsr train` never leaves a wrong result behind: a diverging run stops at its first
non-finite loss or weight, a resume cannot change what the run computes, a run that cannot
start leaves no run folder (and a folder the user made as it was), a resume clears the
temporaries of a killed write, an image that fails in a DataLoader worker is one line, and
a SIGKILLed run's workers neither keep its folder locked nor live on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_train_config import fails, write_config

from liifsr.cli import main


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


def test_a_failed_start_leaves_the_folders_as_it_found_them(tmp_path, capsys):
    """A folder the user made (empty, or holding their files) is kept as it was, without a
    lock; folders the run made for --out, parents included, are removed."""
    config = write_config(tmp_path)
    (tmp_path / "empty").mkdir()
    no_images = ["--set", f"data.train_dirs=[{tmp_path / 'empty'}]"]
    mine, nested = tmp_path / "mine", tmp_path / "new" / "deeper" / "run"
    mine.mkdir()
    assert "holds no" in fails(capsys, "train", config, "--out", mine, *no_images)
    assert mine.is_dir() and run_files(mine) == set()
    assert "holds no" in fails(capsys, "train", config, "--out", nested, *no_images)
    assert not (tmp_path / "new").exists()

    corrupt = tmp_path / "images" / "3.png"
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    late = ["--set", "data.cache=false", "--set", "data.val_count=0"]  # met under the lock, while the images are checked
    for out in (mine, nested):
        assert "truncated" in fails(capsys, "train", config, "--out", out, *late)
    assert mine.is_dir() and run_files(mine) == set() and not (tmp_path / "new").exists()
    (mine / "notes.txt").write_text("mine")
    fails(capsys, "train", config, "--out", mine, *late)
    assert run_files(mine) == {"notes.txt"} and (mine / "notes.txt").read_text() == "mine"


def test_an_image_that_fails_in_a_data_loader_worker_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    """With `data.cache: false` the workers decode the images; one that fails there (it
    changed after the run checked it) was torch's 1,700-character "Caught ImageError in
    DataLoader worker process 0. Original Traceback ..." joined into one line."""
    from liifsr.training import loop

    config, corrupt = write_config(tmp_path), tmp_path / "images" / "3.png"
    checked = loop.check_images

    def check_then_damage(paths, env):
        checked(paths, env)
        corrupt.write_bytes(corrupt.read_bytes()[:100])

    monkeypatch.setattr(loop, "check_images", check_then_damage)
    intact = corrupt.read_bytes()
    for workers in ("2", "0"):
        corrupt.write_bytes(intact)
        err = fails(capsys, "train", config, "--out", tmp_path / f"run{workers}", "--workers", workers, "--set",
                    "data.cache=false", "--set", "data.val_count=0", "--set", "data.repeat=4")
        assert repr(str(corrupt)) in err and "truncated" in err and "--resume" in err, err
        assert "Traceback" not in err and "DataLoader worker" not in err and len(err) < 400, err


def say_and_sleep(started, seconds: float) -> None:
    started.set()
    time.sleep(seconds)


def test_a_forked_child_does_not_hold_the_run_folder(tmp_path):
    """A flock belongs to the open file, which fork shares: a DataLoader worker that
    outlives its run would keep the folder locked, unless children drop their copy."""
    import multiprocessing

    from liifsr.training.config import TrainError
    from liifsr.training.runfolder import hold_run_folder

    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    with hold_run_folder(tmp_path / "run"):
        child = fork.Process(target=say_and_sleep, args=(started, 60))
        child.start()
        assert started.wait(30)  # the child runs (what fork does in it is done)
    try:
        assert child.is_alive()
        try:
            with hold_run_folder(tmp_path / "run"):  # a new run, while the old one's child lives on
                pass
        except TrainError as error:
            raise AssertionError(f"the forked child holds the run folder: {error}") from None
    finally:
        child.kill()
        child.join()


# A `liifsr train` whose DataLoader workers take a minute over every image (as a huge image
# or a slow disk can): each says it has started one by leaving a file named by its pid.
SLOW_WORKERS_TRAIN = """
import os, sys, time
from pathlib import Path
import liifsr.data.folders as data  # where ImageFolder reads its images
main_pid, marks, read = os.getpid(), Path(sys.argv[1]), data.read_uint8
def slow_in_workers(*args, **kwargs):
    if os.getpid() != main_pid:
        (marks / str(os.getpid())).touch()
        time.sleep(120)
    return read(*args, **kwargs)
data.read_uint8 = slow_in_workers
from liifsr.cli import main
sys.exit(main(sys.argv[2:]))
"""


def process_gone(pid: int) -> bool:
    """Exited (a zombie waiting for its new parent to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flock and PR_SET_PDEATHSIG: Linux")
def test_a_sigkilled_run_s_workers_die_with_it_and_free_its_folder(tmp_path):
    """After SIGKILL of a run with --workers 2, its busy workers lived on, holding the run
    folder's lock: a new run into the folder was refused until they finished."""
    from liifsr.training.config import TrainError
    from liifsr.training.runfolder import hold_run_folder

    config, out, marks = write_config(tmp_path), tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    command = [sys.executable, "-c", SLOW_WORKERS_TRAIN, str(marks), "train", str(config), "--out", str(out),
               "--workers", "2", "--threads", "1", "--set", "data.cache=false", "--set", "data.val_count=0"]
    # Output to a file: the workers inherit it, and a pipe would be read until they end.
    with open(tmp_path / "stderr.txt", "w") as stderr:
        run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "OMP_NUM_THREADS": "1"})
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2:
            assert run.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
            assert time.monotonic() < deadline, "the workers did not start within 120 s"
            time.sleep(0.1)
            workers = [int(mark.name) for mark in marks.iterdir()]
        run.kill()
        run.wait()
        deadline = time.monotonic() + 5
        while True:
            try:
                with hold_run_folder(out):
                    break
            except TrainError as error:
                assert time.monotonic() < deadline, f"still locked 5 s after the kill: {error}"
                time.sleep(0.1)
        while not all(process_gone(pid) for pid in workers):
            assert time.monotonic() < deadline, "the killed run's workers live on"
            time.sleep(0.1)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in workers:
            if not process_gone(pid):
                os.kill(pid, signal.SIGKILL)
