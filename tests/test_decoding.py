"""liifsr.decoding: the options every decoding run shares, and a model opened once on its
device in the precision that runs there."""

from __future__ import annotations

import pytest
import torch

from liifsr import cpu
from liifsr.checkpoint import save_model
from liifsr.checks import UpscaleError
from liifsr.decoding import DecodeOptions, open_model, open_models
from liifsr.models import ModelConfig
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIF, LIIFConfig
from liifsr.runtime import DeviceError
from liifsr.tiling import upscale_tensor


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16]))).eval(), path)
    return str(path)


def test_decode_options_are_the_tiling_engines_arguments():
    options = DecodeOptions(chunk=333, tile=9, precision="bf16", progress=None)
    assert options.tiling_arguments() == {"chunk_size": 333, "tile_size": 9, "precision": "bf16", "progress": None}
    model = LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16]))).eval()
    lr = torch.rand(1, 3, 11, 13, generator=torch.Generator().manual_seed(0))
    tuned = DecodeOptions(chunk=50, tile=4, precision="fp32")
    assert torch.equal(upscale_tensor(model, lr, (23, 29), **tuned.tiling_arguments()),
                       upscale_tensor(model, lr, (23, 29), chunk_size=50, tile_size=4, precision="fp32"))


@pytest.mark.parametrize("chunk, tile", [(0, None), (None, -3), (2.5, None), (True, None)])
def test_decode_options_refuse_sizes_that_are_not_positive_integers(chunk, tile):
    with pytest.raises(UpscaleError, match="must be a positive integer"):
        DecodeOptions(chunk=chunk, tile=tile)


def test_open_model_resolves_auto_for_the_device_and_the_model(model_file, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for instructions, runs in (("AMX", "bf16"), (None, "fp32")):
        monkeypatch.setattr(cpu, "bf16_instructions", lambda instructions=instructions: instructions)
        opened = open_model(model_file, "auto", "auto")
        assert (opened.device, opened.precision) == (torch.device("cpu"), runs)
        assert isinstance(opened.model, LIIF) and not opened.model.training
    assert open_model(model_file, "cpu", "fp32").precision == "fp32"


def test_open_model_refuses_what_cannot_run_in_one_line(model_file, monkeypatch):
    with pytest.raises(UpscaleError, match="fp16 runs on CUDA GPUs only, not on cpu"):
        open_model(model_file, "cpu", "fp16")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        open_model(model_file, "tpu", "fp32")
    monkeypatch.setattr(LIIF, "precisions", ("fp32",))  # as an exported ONNX model declares
    with pytest.raises(UpscaleError, match="this model runs in fp32 only, not bf16") as caught:
        open_model(model_file, "cpu", "bf16")
    assert "\n" not in str(caught.value)
    assert open_model(model_file, "cpu", "auto").precision == "fp32"


def test_an_emulated_precision_is_warned_about_once_for_all_the_models(model_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cpu, "bf16_instructions", lambda: None)
    other = tmp_path / "other.safetensors"
    other.write_bytes(open(model_file, "rb").read())
    opened = open_models([model_file, str(other), model_file], "cpu", "bf16")
    assert list(opened) == [model_file, str(other)]
    err = capsys.readouterr().err
    assert err.count("liifsr: warning: ") == 1 and "emulated" in err, err
    open_model(model_file, "cpu", "bf16")
    assert capsys.readouterr().err == err
    open_model(model_file, "cpu", "bf16", warn=False)
    open_model(model_file, "cpu", "fp32")
    assert capsys.readouterr().err == ""


def test_auto_keeps_fp32_for_a_bundled_model_that_bf16_moves(monkeypatch):
    """Its file's `auto_precisions` metadata: auto runs such a model in fp32 (open_model and the tiling
    engine alike) where it runs every other model in bf16; bf16 asked for still runs."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(cpu, "bf16_instructions", lambda: "AMX")
    kept = open_model("edsrless-liif-relu", "cpu", "auto")
    assert kept.precision == "fp32"
    assert open_model("edsrless-liif-relu", "cpu", "bf16").precision == "bf16"
    assert open_model("edsrless-liif-siren30", "cpu", "auto").precision == "bf16"
    lr = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        auto = upscale_tensor(kept.model, lr, (30, 25), precision="auto")
        fp32 = upscale_tensor(kept.model, lr, (30, 25), precision="fp32")
    assert torch.equal(auto, fp32)  # the same computation: fp32 both times
