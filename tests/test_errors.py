"""errors.error_message, the one place where commands turn exceptions into their one-line error:
failures injected into upscale, train, evaluate, export and convert (a full disk, a
dependency's own error type, MemoryError) end in one line, status 2 and no partial file."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file
from training.test_train import write_config  # tests/training/: tests/ is on the path (conftest)

from liifsr import files
from liifsr.checkpoint import save_model
from liifsr.cli import main
from liifsr.errors import DEPENDENCY_ERRORS, error_message
from liifsr.models import ModelConfig
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIF, LIIFConfig


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    save_model(LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16, 16]))),
               root / "tiny.safetensors")
    rng = np.random.default_rng(0)
    (root / "set" / "HR").mkdir(parents=True)
    for name in ("photo.png", "set/HR/a.png"):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(root / name)
    return root


def command(name: str, inputs: Path, out: Path) -> tuple[list[str], Path]:
    """argv of a small real job of command `name`, and the output it writes."""
    model = str(inputs / "tiny.safetensors")
    if name == "upscale":
        return ["upscale", str(inputs / "photo.png"), "--scale", "2", "-o", str(out / "big.png"), "--model", model], out / "big.png"
    if name == "convert":
        return ["convert", str(FIXTURES / "tiny-full.pth"), str(out / "tiny.safetensors")], out / "tiny.safetensors"
    if name == "evaluate":
        return (["evaluate", "--model", "bicubic", "--dataset", str(inputs / "set"), "--scales", "2", "--quiet",
                 "--out", str(out / "report.json")], out / "report.json")
    if name == "export":
        return ["export", model, str(out / "tiny.onnx")], out / "tiny.onnx"
    assert name == "train"
    return ["train", str(write_config(out, epochs=1)), "--out", str(out / "run")], out / "run" / "last.safetensors"


def error_line(err: str) -> str:
    """The one error line, which ends what the command printed (train prints a line first)."""
    lines = err.splitlines()
    assert lines and lines[-1].startswith("liifsr: error: "), err
    assert sum(line.startswith("liifsr: error") for line in lines) == 1 and "Traceback" not in err, err
    return lines[-1]


INJECTED = {
    "disk full": (lambda: OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    "a dependency's own error": (lambda: SafetensorError("Error while serializing: IoError(Os { code: 28, kind: "
                                                         "StorageFull, message: \"No space left on device\" })"), "code: 28"),
    "MemoryError": (lambda: MemoryError(), "out of memory"),
}
COMMANDS = ["upscale", "convert", "evaluate", "export", "train"]


@pytest.mark.parametrize("kind", sorted(INJECTED))
@pytest.mark.parametrize("name", COMMANDS)
def test_a_failure_while_writing_is_one_line_status_2_and_no_partial_file(name, kind, workspace, tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnx") if name == "export" else None
    make_error, words = INJECTED[kind]
    argv, output = command(name, workspace, tmp_path)

    def failing_flush(path):  # every atomic write fails right before its rename
        raise make_error()

    monkeypatch.setattr(files, "_fsync", failing_flush)
    assert main(argv) == 2
    err = error_line(capsys.readouterr().err)
    assert words in err, err
    if kind != "MemoryError":  # the writer's failure names the file it was writing
        assert "cannot write '" in err and "free some space" in err, err
    assert not output.exists()
    assert not [path for path in tmp_path.rglob("*") if ".tmp" in path.name]  # no temporary file left


def test_a_run_stopped_by_a_full_disk_resumes_to_the_same_weights(tmp_path, monkeypatch, capsys):
    """Disk full while epoch 2's checkpoint is written: one line, status 2; --resume once
    there is space again ends with the weights of a run that was never stopped."""
    config = write_config(tmp_path, epochs=3)
    assert main(["train", str(config), "--out", str(tmp_path / "whole"), "--threads", "1"]) == 0
    real, writes = files._fsync, []

    def fills_up(path):
        writes.append(Path(path).name)
        if len(writes) > 1 and any("last.state" in name for name in writes[:-1]):  # after epoch 1's state
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path)

    monkeypatch.setattr(files, "_fsync", fills_up)
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--threads", "1"]) == 2
    err = error_line(capsys.readouterr().err)
    assert "No space left on device" in err and str(tmp_path / "run") in err, err
    monkeypatch.setattr(files, "_fsync", real)
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--resume", "--threads", "1"]) == 0
    whole, resumed = load_file(str(tmp_path / "whole" / "last.safetensors")), load_file(str(tmp_path / "run" / "last.safetensors"))
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[key], resumed[key]) for key in whole)


def dependency_errors() -> list[BaseException]:
    """One instance of each dependency error type the table knows, from the real packages."""
    import google.protobuf.message
    import onnx.checker
    import onnxruntime.capi.onnxruntime_pybind11_state as ort
    import PIL.Image
    import torch.onnx
    import yaml

    return [SafetensorError("header too large"), onnx.checker.ValidationError("bad graph"),
            google.protobuf.message.DecodeError("truncated"), ort.Fail("failed"), ort.InvalidArgument("bad input"),
            ort.InvalidProtobuf("not a model"), ort.NoSuchFile("gone"), ort.RuntimeException("broke"),
            torch.onnx.OnnxExporterError("unsupported"), PIL.Image.DecompressionBombError("too many pixels"),
            PIL.UnidentifiedImageError("cannot identify image file"), yaml.YAMLError("bad yaml")]


def test_every_known_dependency_error_type_is_one_line_naming_the_dependency() -> None:
    pytest.importorskip("onnxruntime")
    errors = dependency_errors()
    assert {(cls.__module__, cls.__qualname__) for cls in map(type, errors)} == set(DEPENDENCY_ERRORS)
    for error in errors:
        message = error_message(error)
        assert message is not None and str(error) in message
        assert message.startswith(DEPENDENCY_ERRORS[(type(error).__module__, type(error).__qualname__)] + ": ")
    assert error_message(OSError(errno.EIO, "Input/output error", "/data/x.png")) == (
        "Input/output error ('/data/x.png') (check the disk and the paths, and run again)")
    assert error_message(KeyError("a bug")) is None  # bugs keep their traceback
