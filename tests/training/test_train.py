"""`liifsr train`: files written, exact resume after a real kill, DDP = one process."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from liifsr.cli import main
from liifsr.config import from_dict, load_yaml
from liifsr.data import DataConfig, DataError, make_sample, sample_generator
from liifsr.imageio import read_uint8, sample_image
from liifsr.models import ModelConfig
from liifsr.models.liif import LIIF
from liifsr.training import loop as train_module
from liifsr.training.config import TrainConfig
from liifsr.training.distributed import DistEnv
from liifsr.training.loop import make_optimizer, train, train_step
from liifsr.training.runlog import read_run, write_log
from liifsr.training.state import Progress, load_state, save_state
from liifsr.zoo import load_model

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = {
    "encoder": {"name": "edsr", "n_resblocks": 1, "n_feats": 8},
    "decoder": {"activation": "relu", "hidden": [16, 16]},
}


def write_images(folder: Path, count: int = 6, size: int = 24) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    for i in range(count):
        smooth = np.stack([(x * 9 + i * 40) % 256, (y * 7 + x * 3) % 256, (x * y + i) % 256], axis=-1)
        noise = rng.integers(0, 30, (size, size, 3))
        Image.fromarray((smooth + noise).clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")


def write_config(tmp_path: Path, **changes) -> Path:
    """A tiny but real config: EDSR with 1 block of 8 features, MLP [16, 16], 8 px patches."""
    write_images(tmp_path / "images")
    config = {
        "model": TINY_MODEL,
        "data": {"train_dirs": [str(tmp_path / "images")], "val_count": 1, "patch_size": 8, "scale_max": 3.0,
                 "sample_q": 64, "repeat": 2},
        "optim": {"lr": 1e-3, "milestones": [2]},
        "epochs": 2,
        "batch_size": 2,
        "val_scales": [2],
        "num_workers": 0,
        "device": "cpu",
    }
    for key, value in changes.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def env_one_thread() -> dict[str, str]:
    # One thread per process: bit-exact comparisons, and no fight for the 2 cores.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def liifsr_train(*args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "liifsr", "train", *map(str, args)]
    return subprocess.Popen(command, cwd=REPO, env=env_one_thread(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    try:
        _, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:  # timed out: leave no training behind
            process.kill()
            process.communicate()
    assert process.returncode == 0, err[-2000:]
    return err


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def test_train_cli_writes_checkpoints_logs_and_events(tmp_path, capsys):
    config = write_config(tmp_path)
    out = tmp_path / "run"
    err = finish(liifsr_train(config, "--out", out, "--set", "epochs=3", "--set", "optim.milestones=[1]"))
    assert "epoch 3/3" in err
    rows = read_csv(out / "log.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert [float(r["lr"]) for r in rows] == [1e-3, 5e-4, 5e-4]
    assert all(float(r["train_loss"]) > 0 and float(r["val_psnr"]) > 0 for r in rows)
    assert list(rows[0]) == ["epoch", "lr", "train_loss", "val_psnr", "seconds", "data_seconds", "val_psnr_x2"]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    model = load_model(out / "last.safetensors")
    assert model.config.decoder.hidden == [16, 16]
    load_model(out / "best.safetensors")
    with safe_open(str(out / "last.state.safetensors"), framework="pt") as handle:
        assert handle.metadata()["epoch"] == "3"
    assert load_yaml(TrainConfig, out / "config.yaml").epochs == 3
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files

    # The run is finished; without --resume it is protected, with it there is nothing left to do
    # (with the run's own settings: another milestone would be refused).
    cli = ["train", str(config), "--out", str(out), "--device", "cpu", "--set", "optim.milestones=[1]"]
    assert main(cli) == 2 and "--resume" in capsys.readouterr().err
    assert main([*cli, "--resume"]) == 0 and "already finished" in capsys.readouterr().err

    # The run's record: a stopped epoch (900 s) counts in the minutes, not in the median epoch.
    columns = list(rows[0])
    write_log(out / "log.csv", [{**row, "seconds": s} for row, s in zip(rows, (10, 20, 900))], columns)
    record = read_run(out)
    assert record.finished and record.minutes == pytest.approx(930 / 60) and record.median_epoch_seconds == 20
    assert (record.train_images, record.val_images) == (5, 1)
    # Whether a run has finished needs no data: the image folders may be gone; only counting
    # the images needs them.
    shutil.rmtree(tmp_path / "images")
    write_log(out / "log.csv", rows[:1], columns)
    record = read_run(out)
    assert not record.finished
    with pytest.raises(DataError, match="does not exist"):
        _ = record.train_images


def test_the_run_config_finds_its_images_from_any_working_directory(tmp_path, monkeypatch):
    """Relative data folders are written to the run's config.yaml as absolute paths."""
    config = write_config(tmp_path, data={"train_dirs": ["images"]}, epochs=1)
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(config), "--out", "run"]) == 0
    monkeypatch.chdir(tmp_path / "run")
    (saved,) = load_yaml(TrainConfig, Path("config.yaml")).data.train_dirs
    assert Path(saved).is_absolute() and Path(saved).samefile(tmp_path / "images")
    assert (read_run(Path(".")).train_images, read_run(Path(".")).val_images) == (5, 1)


def test_bad_config_is_a_one_line_error(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--set", "data.lr_resize=lanczos"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("liifsr: error:") and "lr_resize" in err
    assert not (tmp_path / "run").exists()


def test_killed_and_resumed_run_ends_with_the_same_weights(tmp_path):
    # 30 iterations per epoch: long enough to kill the run between two epochs' checkpoints.
    config = write_config(tmp_path, data={"repeat": 12}, epochs=6, optim={"milestones": [2, 4]})
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    finish(liifsr_train(config, "--out", reference))

    # Another worker count on purpose: samples do not depend on it.
    process = liifsr_train(config, "--out", resumed, "--workers", "1")
    deadline, killed = time.monotonic() + 120, False
    while time.monotonic() < deadline and process.poll() is None:
        log = resumed / "log.csv"
        if log.exists() and len(read_csv(log)) >= 2:  # epoch 2's checkpoint is written
            process.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    if process.poll() is None and not killed:  # never saw epoch 2 in time
        process.kill()
    process.communicate(timeout=60)
    assert killed and process.returncode == -signal.SIGKILL, "the run was not killed between two epochs"
    with safe_open(str(resumed / "last.state.safetensors"), framework="pt") as handle:
        killed_at = int(handle.metadata()["epoch"])
    assert 2 <= killed_at < 6

    err = finish(liifsr_train(config, "--out", resumed, "--resume"))
    assert f"resuming after epoch {killed_at}" in err
    expected, got = weights(reference / "last.safetensors"), weights(resumed / "last.safetensors")
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    reference_log, resumed_log = read_csv(reference / "log.csv"), read_csv(resumed / "log.csv")
    assert [r["epoch"] for r in resumed_log] == [str(e) for e in range(1, 7)]
    for a, b in zip(reference_log, resumed_log):
        assert (a["lr"], a["train_loss"], a["val_psnr"]) == (b["lr"], b["train_loss"], b["val_psnr"])


def test_one_bf16_training_step_is_close_to_the_fp32_step():
    """The bundled model, one Adam step on 4 real 48 px samples with 2,304 queries, in each precision."""
    image = read_uint8(sample_image())
    samples = [make_sample(image, DataConfig(), sample_generator(0, 1, index)) for index in range(4)]
    batch = {key: torch.stack([sample[key] for sample in samples]) for key in samples[0]}
    losses, updates = {}, {}
    for precision in ("fp32", "bf16"):
        model = load_model().train()
        before = [p.detach().clone() for p in model.parameters()]
        optimizer, _ = make_optimizer(model, TrainConfig())
        losses[precision] = float(train_step(model, optimizer, batch, precision))
        assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast keeps fp32 weights
        updates[precision] = [p.detach() - b for p, b in zip(model.parameters(), before)]
        assert all(bool(update.ne(0).any()) for update in updates[precision]), f"{precision}: a weight did not move"
    assert math.isfinite(losses["bf16"]) and losses["bf16"] != losses["fp32"]  # bf16 really ran
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.01)
    fp32, bf16 = (torch.cat([u.flatten() for u in updates[p]]) for p in ("fp32", "bf16"))
    assert float(F.cosine_similarity(fp32, bf16, dim=0)) > 0.9  # 0.94 measured; Adam's first step is near sign(grad)


def test_cosine_schedule_is_the_closed_form_and_resumes(tmp_path):
    """The default model's recipe: 4e-4 to 1e-5 over 30 epochs; a resumed scheduler continues it."""
    config = load_yaml(TrainConfig, REPO / "configs" / "default-edsr-skip.yaml")
    assert config.optim.schedule == "cosine"
    lr, low, epochs = config.optim.lr, config.optim.min_lr, config.epochs
    expected = [low + (lr - low) * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs + 1)]
    model = LIIF(from_dict(ModelConfig, TINY_MODEL))
    optimizer, scheduler = make_optimizer(model, config)
    rates = []
    for epoch in range(epochs + 1):
        rates.append(optimizer.param_groups[0]["lr"])
        if epoch == 12:  # stop and resume from the state file
            save_state(tmp_path / "state.safetensors", model, optimizer, scheduler, Progress(epoch), config)
            optimizer, scheduler = make_optimizer(model, config)
            load_state(tmp_path / "state.safetensors", model, optimizer, scheduler)
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx(expected, rel=1e-9, abs=0)
    assert rates[0] == lr and rates[epochs] == pytest.approx(low)


class SimulatedKill(Exception):
    """Stands for a SIGKILL at one exact point of end_of_epoch."""


@pytest.mark.parametrize(
    "stop_in,call,save_every,epochs",
    [
        ("append_log", 2, 1, 3),  # epoch 2's state is saved, its CSV row is not
        ("save_state", 2, 1, 3),  # epoch 2's state is not saved (epoch 1's is)
        ("save_state", 2, 2, 4),  # the CSV holds epoch 3, the state only epochs 1-2
    ],
)
def test_a_stop_between_state_and_log_loses_and_repeats_no_row(tmp_path, monkeypatch, stop_in, call, save_every, epochs):
    config = load_yaml(TrainConfig, write_config(tmp_path, epochs=epochs, save_every=save_every))
    out, env = tmp_path / "run", DistEnv(0, 1, torch.device("cpu"))
    real, calls = getattr(train_module, stop_in), []

    def stop_on_call(*args, **kwargs):
        calls.append(args)
        if len(calls) == call:
            raise SimulatedKill
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, stop_in, stop_on_call)
    with pytest.raises(SimulatedKill):
        train(config, out, env)
    monkeypatch.setattr(train_module, stop_in, real)
    with safe_open(str(out / "last.state.safetensors"), framework="pt") as handle:
        saved_rows = json.loads(handle.metadata()["log"])

    train(config, out, env, resume=True)
    rows = read_csv(out / "log.csv")
    assert [int(row["epoch"]) for row in rows] == list(range(1, epochs + 1))
    # The rows the state held are kept as they were, not recomputed.
    assert rows[: len(saved_rows)] == [{key: str(value) for key, value in row.items()} for row in saved_rows]


def test_two_gloo_processes_match_one_process(tmp_path):
    config = write_config(tmp_path, batch_size=4, epochs=1, data={"repeat": 4})
    single, double = tmp_path / "single", tmp_path / "double"
    finish(liifsr_train(config, "--out", single))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "liifsr", "train", str(config), "--out", str(double)]
    result = subprocess.run(command, cwd=REPO, env=env_one_thread(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on 2 x cpu" in result.stderr
    expected, got = weights(single / "last.safetensors"), weights(double / "last.safetensors")
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-5)
    assert float(read_csv(double / "log.csv")[0]["train_loss"]) == pytest.approx(
        float(read_csv(single / "log.csv")[0]["train_loss"]), rel=1e-5)


def test_a_second_run_into_a_folder_in_use_is_refused_while_the_first_continues(tmp_path):
    """Two `liifsr train --out` into one folder would mix two runs that look like one: the
    second, with or without --resume, is refused in one line; the first runs on. A lock
    left by a SIGKILLed run is released by the OS: the folder is free again."""
    config = write_config(tmp_path, epochs=100_000)  # killed long before its end
    first = liifsr_train(config, "--out", tmp_path / "run")
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "run" / "log.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for extra in ([], ["--resume"]):
            second = liifsr_train(config, "--out", tmp_path / "run", *extra)
            _, err = second.communicate(timeout=60)
            assert second.returncode == 2, err
            assert err.splitlines()[-1] == (f"liifsr: error: run folder {str(tmp_path / 'run')!r} is in use by a running "
                                            f"`liifsr train` (pid {first.pid}); wait for it to finish or stop it, or train "
                                            "into another --out"), err
            assert first.poll() is None  # the first run goes on
    finally:
        first.kill()
        first.communicate()
    assert first.returncode == -signal.SIGKILL
    assert (tmp_path / "run" / ".liifsr-train.lock").exists()  # left behind, but no longer held
    resumed = liifsr_train(config, "--out", tmp_path / "run", "--resume", "--set", "epochs=1")
    assert "in use" not in finish(resumed)  # "already finished its 1 epochs": the folder was free


@pytest.mark.parametrize("kind", ["symlink", "dangling", "hardlink", "fifo"])
def test_a_lock_that_is_not_a_plain_file_of_its_own_is_refused_and_nothing_written_through_it(tmp_path, kind):
    """The lock gets the pid written into it: through a link, that write would land in
    (or create) another file. Opened without following links, anything else is refused."""
    from liifsr.training.config import TrainError
    from liifsr.training.runfolder import LOCK, hold_run_folder

    run_folder, victim = tmp_path / "run", tmp_path / "victim.txt"
    run_folder.mkdir()
    victim.write_text("precious")
    lock = run_folder / LOCK
    if kind == "symlink":
        lock.symlink_to(victim)
    elif kind == "dangling":
        lock.symlink_to(tmp_path / "created.txt")
    elif kind == "hardlink":
        os.link(victim, lock)
    else:
        os.mkfifo(lock)
    with pytest.raises(TrainError) as excinfo:
        with hold_run_folder(run_folder):
            pass
    message = str(excinfo.value)
    assert repr(str(lock)) in message and "remove it, or train into another --out" in message and "\n" not in message
    assert victim.read_text() == "precious" and not (tmp_path / "created.txt").exists()


def test_the_lock_holds_the_pid_of_its_run(tmp_path):
    from liifsr.training.runfolder import LOCK, hold_run_folder

    with hold_run_folder(tmp_path / "run"):
        assert (tmp_path / "run" / LOCK).read_text() == f"pid {os.getpid()}"


# --- initialising from another model ----------------------------------------------------


def test_init_from_copies_the_shared_tensors_and_leaves_the_rest(tmp_path):
    from liifsr.checkpoint import save_model

    torch.manual_seed(7)
    donor = LIIF(from_dict(ModelConfig, TINY_MODEL))
    save_model(donor, tmp_path / "donor.safetensors")
    # Same encoder, another decoder width: the encoder comes from the donor, the decoder keeps its seeded start.
    model_config = {"encoder": TINY_MODEL["encoder"], "decoder": {"activation": "relu", "hidden": [12]}}
    cpu = DistEnv(0, 1, torch.device("cpu"))
    started = train_module.build_run(load_yaml(TrainConfig, write_config(
        tmp_path, model=model_config, init_from=str(tmp_path / "donor.safetensors"))), tmp_path / "run", cpu).model.state_dict()
    seeded = train_module.build_run(load_yaml(TrainConfig, write_config(tmp_path, model=model_config)),
                                    tmp_path / "r2", cpu).model.state_dict()
    given = donor.state_dict()
    encoder = [name for name in started if name.startswith("encoder.")]
    decoder = [name for name in started if not name.startswith("encoder.")]
    assert encoder and all(torch.equal(started[name], given[name]) for name in encoder)
    assert not torch.equal(seeded[encoder[0]], given[encoder[0]])
    assert decoder and all(torch.equal(started[name], seeded[name]) for name in decoder)


def test_init_from_a_model_sharing_nothing_is_a_one_line_error(tmp_path):
    config = load_yaml(TrainConfig, write_config(tmp_path, init_from="edsr-thermal"))  # 8 features, not 64
    with pytest.raises(ValueError, match="shares no parameter"):
        train_module.build_run(config, tmp_path / "run", DistEnv(0, 1, torch.device("cpu")))
    assert not (tmp_path / "run").exists()
