"""liifsr.runtime: devices, precisions and the machine a measurement names."""

import pytest
import torch
from test_cpu import AMX_CPU, AVX2_CPU, ZEN4_CPU

from liifsr import cpu, runtime
from liifsr.runtime import (
    AUTO,
    PRECISIONS,
    DeviceError,
    autocast,
    machine_summary,
    native_bf16,
    precision_warning,
    resolve_device,
    resolve_precision,
)


def test_the_machine_summary_names_cpu_bf16_isa_threads_and_torch(monkeypatch) -> None:
    monkeypatch.setattr(cpu, "cpu_model_and_flags", lambda: ("Test CPU 9000", ZEN4_CPU))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")
    line = machine_summary()
    assert line.startswith("CPU: Test CPU 9000 (AVX512_BF16; ATen ")
    assert f"{torch.get_num_threads()} threads" in line and torch.__version__ in line
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert "no bf16 instructions" in machine_summary()


def test_bf16_on_a_cpu_without_bf16_instructions_is_warned_about(monkeypatch) -> None:
    here = torch.device("cpu")
    monkeypatch.setattr(cpu, "bf16_instructions", lambda: None)
    warning = precision_warning(here, "bf16")
    assert warning and "emulated" in warning and "--precision fp32" in warning and "\n" not in warning
    assert precision_warning(here, "fp32") is None
    assert precision_warning(torch.device("cuda"), "bf16") is None
    monkeypatch.setattr(cpu, "bf16_instructions", lambda: "AVX512_BF16")
    assert precision_warning(here, "bf16") is None


def test_devices_and_precisions_are_checked() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(DeviceError, match="unknown precision"):
        autocast(torch.device("cpu"), "fp8")


def test_fp16_is_for_cuda_and_refused_on_the_cpu_with_a_clear_message(tmp_path, capsys) -> None:
    from liifsr.cli import main
    from liifsr.imageio import sample_image

    with pytest.raises(DeviceError, match="fp16 runs on CUDA GPUs only, not on cpu"):
        autocast(torch.device("cpu"), "fp16")
    runtime.check_precision_on(torch.device("cuda"), "fp16")  # allowed there
    assert main(["upscale", str(sample_image()), "--scale", "1.1", "-o", str(tmp_path / "x.png"), "--precision", "fp16",
                 "--device", "cpu"]) == 2
    assert capsys.readouterr().err == ("liifsr: error: fp16 runs on CUDA GPUs only, not on cpu (use bf16 or fp32 there)\n")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("env,message", [
    ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc' is not a whole number"),
    ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 is set but RANK is not"),
    ({"WORLD_SIZE": "2", "RANK": "5"}, "RANK=5 must be below WORLD_SIZE=2"),
    ({"WORLD_SIZE": "2", "RANK": "-1"}, "RANK='-1' is not a whole number"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0 must be at least 1"),
    ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "x"}, "LOCAL_RANK='x' is not a whole number"),
])
def test_a_launcher_environment_that_does_not_fit_is_named(monkeypatch, env, message) -> None:
    """A RANK outside 0..WORLD_SIZE-1 (say, left in a shell) would make a process take no
    file and succeed; a malformed or missing one was a bare ValueError or a KeyError."""
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as excinfo:
        runtime.launched_ranks()
    assert message in str(excinfo.value) and "unset RANK, WORLD_SIZE and LOCAL_RANK" in str(excinfo.value)


def test_launched_ranks_alone_and_under_a_launcher(monkeypatch) -> None:
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert runtime.launched_ranks() == (0, 1, None)
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert runtime.launched_ranks() == (0, 1, None)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert runtime.launched_ranks() == (3, 4, 1)


# --- --precision auto ---------------------------------------------------------------------


def fake_cpu(monkeypatch, flags: frozenset[str], max_isa: str = "ALL") -> None:
    """This process's CPU as one with `flags`, oneDNN capped at `max_isa`, and no GPU."""
    monkeypatch.setattr(cpu, "cpu_model_and_flags", lambda: ("Test CPU 9000", flags))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", max_isa)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("flags,max_isa,expected", [
    (AMX_CPU, "ALL", "bf16"),
    (ZEN4_CPU, "ALL", "bf16"),
    (AVX2_CPU, "ALL", "fp32"),
    (AMX_CPU, "AVX2", "fp32"),  # oneDNN capped: bf16 would be emulated
    (ZEN4_CPU, "AVX512_CORE", "fp32"),
])
def test_auto_picks_bf16_where_the_cpu_runs_it_natively(monkeypatch, flags, max_isa, expected) -> None:
    fake_cpu(monkeypatch, flags, max_isa)
    cpu = torch.device("cpu")
    assert resolve_precision(AUTO, cpu) == expected
    assert resolve_precision(AUTO, cpu, ("fp32",)) == "fp32"  # an ONNX model runs fp32 only
    for named in PRECISIONS:  # a precision asked for is what runs
        assert resolve_precision(named, cpu) == named


@pytest.mark.parametrize("capability,expected", [((7, 5), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_picks_bf16_on_cuda_gpus_with_bf16_units(monkeypatch, capability, expected) -> None:
    """Turing (7.5) emulates bf16; Ampere (8.0) and later run it natively."""
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Test GPU")
    assert resolve_precision(AUTO, torch.device("cuda")) == expected
    assert (native_bf16(torch.device("cuda")) == "Test GPU") == (expected == "bf16")


@pytest.mark.parametrize("command", ["upscale", "serve", "compare"])
def test_help_says_what_auto_picks_on_this_machine(monkeypatch, capsys, command) -> None:
    from liifsr.cli import main

    for flags, picked in ((AMX_CPU, "here: bf16 on this CPU (AMX)"), (AVX2_CPU, "here: fp32 on this CPU (no native bf16")):
        fake_cpu(monkeypatch, flags)
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
        assert "--precision {auto,fp32,bf16,fp16}" in text and picked in text, command


def test_evaluate_and_train_keep_fp32_or_the_configs_precision() -> None:
    from liifsr.cli import build_parser

    evaluate = ["evaluate", "--model", "m", "--dataset", "d"]
    assert build_parser(evaluate)[0].parse_args(evaluate).precision == "fp32"
    with pytest.raises(SystemExit):
        build_parser(evaluate)[0].parse_args([*evaluate, "--precision", "auto"])
    train = ["train", "config.yaml", "--out", "runs/x"]
    assert build_parser(train)[0].parse_args(train).precision is None  # the config's


def tiny_model(precisions: tuple[str, ...] | None = None):
    from liifsr.models import ModelConfig
    from liifsr.models.edsr import EDSRConfig
    from liifsr.models.liif import LIIF, LIIFConfig

    torch.manual_seed(0)
    model = LIIF(ModelConfig(EDSRConfig(n_resblocks=2, n_feats=8), LIIFConfig(hidden=[32, 32]))).eval()
    if precisions is not None:
        model.precisions = precisions  # as an ONNX model declares
    return model


def test_the_api_runs_auto_by_default_and_fp32_gives_todays_exact_output(monkeypatch) -> None:
    """`liifsr.upscale` without a precision runs bf16 on a CPU with AMX (fp32 for a model
    that runs fp32 only, as an ONNX model), and precision='fp32' is the fp32 engine's own
    output, bit for bit."""
    from liifsr.inference import upscale
    from liifsr.tiling import upscale_tensor

    lr = torch.rand(1, 3, 13, 17, generator=torch.Generator().manual_seed(0))
    model = tiny_model()
    fp32, bf16 = (upscale_tensor(model, lr, (29, 37), precision=p) for p in ("fp32", "bf16"))
    assert not torch.equal(fp32, bf16)
    fake_cpu(monkeypatch, AMX_CPU)
    assert torch.equal(upscale(model, lr, size=(29, 37)), bf16)
    assert torch.equal(upscale(model, lr, size=(29, 37), precision="fp32"), fp32)
    assert torch.equal(upscale(tiny_model(precisions=("fp32",)), lr, size=(29, 37)), fp32)
    fake_cpu(monkeypatch, AVX2_CPU)
    assert torch.equal(upscale(model, lr, size=(29, 37)), fp32)


def test_upscale_runs_auto_and_its_progress_bar_says_what_ran(monkeypatch, tmp_path) -> None:
    from PIL import Image

    from liifsr import tiling
    from liifsr.cli import main
    from liifsr.imageio import sample_image

    seen = []
    real = tiling.progress_bar
    monkeypatch.setattr(tiling, "progress_bar", lambda *a, **k: seen.append(k["desc"]) or real(*a, **k))
    photo = tmp_path / "photo.png"
    Image.open(sample_image()).convert("RGB").crop((180, 60, 212, 90)).save(photo)
    for flags, label in ((AMX_CPU, "bf16 on cpu"), (AVX2_CPU, "fp32 on cpu")):
        fake_cpu(monkeypatch, flags)
        assert main(["upscale", str(photo), "--scale", "1.5", "-o", str(tmp_path / "out.png"), "--device", "cpu"]) == 0
        assert seen[-1] == label
    assert main(["upscale", str(photo), "--scale", "1.5", "-o", str(tmp_path / "out.png"), "--precision", "fp32"]) == 0
    assert seen[-1] == "fp32 on cpu"


def test_serve_runs_auto_and_says_what_ran(monkeypatch, capsys, tmp_path) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    from liifsr.checkpoint import save_model
    from liifsr.cli import main

    path = tmp_path / "tiny.safetensors"
    save_model(tiny_model(), path)
    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append(self.config.app.state.server))
    for flags, ran in ((AMX_CPU, "bf16"), (AVX2_CPU, "fp32")):
        fake_cpu(monkeypatch, flags)
        assert main(["serve", "--model", str(path), "--port", "8125"]) == 0
        assert served[-1].precision == ran  # what its requests run in
        assert f", {ran} on cpu); Ctrl-C stops" in capsys.readouterr().out
