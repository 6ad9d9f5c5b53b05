"""`liifsr train` refuses bad configs, run folders and damaged state files in one line,
before anything is written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from liifsr.cli import main
from liifsr.config import ConfigError, load_yaml
from liifsr.training.config import TrainConfig

MODEL = {"encoder": {"name": "edsr", "n_resblocks": 1, "n_feats": 8}, "decoder": {"activation": "relu", "hidden": [16, 16]}}


def write_config(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), np.uint8)).save(images / f"{i}.png")
    config = {"model": MODEL, "data": {"train_dirs": [str(images)], "patch_size": 8, "sample_q": 16, "scale_max": 2.0},
              "optim": {"lr": 1e-3, "milestones": [2]}, "epochs": 1, "batch_size": 2, "val_scales": [2],
              "num_workers": 0, "device": "cpu"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fails(capsys, *args) -> str:
    """The error line; lines before it can only be the run's own log (`liifsr train: ...`)."""
    capsys.readouterr()
    assert main([str(a) for a in args]) == 2
    *log, err = capsys.readouterr().err.strip().splitlines()
    assert err.startswith("liifsr: error: ") and all(line.startswith("liifsr train: ") for line in log), (log, err)
    return err


@pytest.mark.parametrize("override, message", [
    ("optim.gamma=-1", "optim.gamma"), ("optim.gamma=1.5", "optim.gamma"), ("optim.gamma=0", "optim.gamma"),
    ("optim.milestones=[300,200]", "milestones"), ("optim.milestones=[0]", "milestones"), ("optim.lr=0", "optim.lr"),
    ("optim.lr=nan", "optim.lr"), ("optim.min_lr=-1", "min_lr"), ("model.decoder.hidden=[-4]", "hidden"),
    ("model.decoder.hidden=[]", "hidden"), ("model.encoder.n_feats=0", "n_feats"), ("model.decoder.w0_first=0", "w0"),
    ("model.decoder.activation=tanh", "activation"), ("val_chunk=-1", "val_chunk"),
])
def test_bad_values_fail_before_the_run_folder_exists(tmp_path, capsys, override, message):
    out = tmp_path / "run"
    err = fails(capsys, "train", write_config(tmp_path), "--out", out, "--set", override)
    assert message in err
    assert not out.exists()


def test_numbers_are_read_as_people_write_them(tmp_path):
    config = load_yaml(TrainConfig, write_config(tmp_path), ["optim.lr=2e-4", "optim.min_lr=1E-6", "optim.gamma=.5"])
    assert (config.optim.lr, config.optim.min_lr, config.optim.gamma) == (2e-4, 1e-6, 0.5)
    with pytest.raises(ConfigError, match="expected a number"):
        load_yaml(TrainConfig, tmp_path / "config.yaml", ["optim.lr=fast"])


def test_type_errors_in_a_model_mapping_name_the_field(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_yaml(TrainConfig, write_config(tmp_path), ["model.decoder.hidden=16"])
    assert "model.decoder.hidden: expected a list, got 16" in str(info.value)
    with pytest.raises(ConfigError, match="expected a string or a mapping of ModelConfig fields, got 3"):
        load_yaml(TrainConfig, tmp_path / "config.yaml", ["model=3"])


def test_out_must_be_a_folder(tmp_path, capsys):
    config = write_config(tmp_path)
    (tmp_path / "file").write_text("keep me")
    assert "is a file" in fails(capsys, "train", config, "--out", tmp_path / "file")
    assert "is a file" in fails(capsys, "train", config, "--out", tmp_path / "file" / "run")
    assert (tmp_path / "file").read_text() == "keep me"


def good_state(tmp_path: Path) -> Path:
    """A real training state after one epoch of the config's model."""
    config = write_config(tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out)]) == 0
    return out / "last.state.safetensors"


def test_damaged_resume_states_are_one_line(tmp_path, capsys):
    state = good_state(tmp_path)
    config = tmp_path / "config.yaml"
    good = state.read_bytes()
    with safe_open(str(state), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = {key: value.clone() for key, value in load_file(str(state)).items()}  # not mapped: the file is rewritten
    damages = {
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "random": np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes(),
    }
    for name, data in damages.items():
        state.write_bytes(data)
        err = fails(capsys, "train", config, "--out", state.parent, "--resume", "--set", "epochs=2")
        assert "cannot resume from" in err and str(state) in err, (name, err)
    for missing in ("rng.torch", next(k for k in tensors if k.startswith("optimizer."))):
        save_file({k: v for k, v in tensors.items() if k != missing}, str(state), metadata=metadata)
        err = fails(capsys, "train", config, "--out", state.parent, "--resume", "--set", "epochs=2")
        assert str(state) in err, (missing, err)
    save_file(tensors, str(state), metadata={k: v for k, v in metadata.items() if k != "scheduler"})
    assert "scheduler" in fails(capsys, "train", config, "--out", state.parent, "--resume", "--set", "epochs=2")


def test_a_damaged_log_is_rebuilt_from_the_state(tmp_path):
    """The state holds the log's rows: a resume rewrites a damaged log.csv from them."""
    state = good_state(tmp_path)
    log = state.parent / "log.csv"
    good = log.read_text()
    log.write_text("epoch,lr\nseven,1\n")
    assert main(["train", str(tmp_path / "config.yaml"), "--out", str(state.parent), "--resume", "--set", "epochs=2"]) == 0
    lines = log.read_text().splitlines()
    assert lines[:2] == good.splitlines()[:2] and [line.split(",")[0] for line in lines[1:]] == ["1", "2"]


def test_a_damaged_log_is_named_when_the_state_has_no_rows(tmp_path, capsys, monkeypatch):
    """States written before the rows were kept in them fall back to reading log.csv."""
    from liifsr.training import loop as train_module

    state = good_state(tmp_path)
    (state.parent / "log.csv").write_text("epoch,lr\nseven,1\n")
    real = train_module.load_state

    def without_rows(*args, **kwargs):
        progress = real(*args, **kwargs)
        progress.log = None
        return progress

    monkeypatch.setattr(train_module, "load_state", without_rows)
    err = fails(capsys, "train", tmp_path / "config.yaml", "--out", state.parent, "--resume", "--set", "epochs=2")
    assert "log.csv" in err


def test_run_files_get_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        state = good_state(tmp_path)
    finally:
        os.umask(old)
    for path in state.parent.iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


def test_optimizer_state_survives_a_round_trip_of_the_guarded_loader(tmp_path):
    """The guard around loading changes nothing for a good file."""
    from liifsr.models.liif import LIIF
    from liifsr.training.loop import make_optimizer
    from liifsr.training.state import load_state

    state = good_state(tmp_path)
    config = load_yaml(TrainConfig, tmp_path / "config.yaml")
    model = LIIF(config.model)
    optimizer, scheduler = make_optimizer(model, config)
    progress = load_state(state, model, optimizer, scheduler)
    assert progress.epoch == 1 and optimizer.state_dict()["state"]
    assert torch.equal(model.state_dict()["imnet.layers.0.weight"], load_file(str(state))["model.imnet.layers.0.weight"])
