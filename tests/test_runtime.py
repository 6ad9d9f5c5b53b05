"""liifsr.runtime: devices, precisions and the machine a measurement names."""

import pytest
import torch

from liifsr import runtime
from liifsr.runtime import DeviceError, autocast, bf16_instructions, machine_summary, precision_warning, resolve_device

AMX_CPU = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
ZEN4_CPU = frozenset({"avx2", "avx512f", "avx512_bf16"})
AVX2_CPU = frozenset({"avx2", "fma"})


@pytest.mark.parametrize("flags,max_isa,expected", [
    (AMX_CPU, "ALL", "AMX"),
    (AMX_CPU, "", "AMX"),
    (AMX_CPU, "AVX512_CORE_AMX", "AMX"),
    (AMX_CPU, "avx512_core_bf16", "AVX512_BF16"),  # oneDNN capped below AMX
    (AMX_CPU, "AVX512_CORE", None),
    (ZEN4_CPU, "ALL", "AVX512_BF16"),
    (ZEN4_CPU, "AVX2", None),  # the AVX2 emulation of the README
    (AVX2_CPU, "ALL", None),
])
def test_bf16_instructions_from_the_flags_and_onednns_cap(flags, max_isa, expected) -> None:
    assert bf16_instructions(flags, max_isa) == expected


def test_the_machine_summary_names_cpu_bf16_isa_threads_and_torch(monkeypatch) -> None:
    monkeypatch.setattr(runtime, "cpu_model_and_flags", lambda: ("Test CPU 9000", ZEN4_CPU))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")
    line = machine_summary()
    assert line.startswith("CPU: Test CPU 9000 (AVX512_BF16; ATen ")
    assert f"{torch.get_num_threads()} threads" in line and torch.__version__ in line
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert "no bf16 instructions" in machine_summary()


def test_bf16_on_a_cpu_without_bf16_instructions_is_warned_about(monkeypatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "bf16_instructions", lambda: None)
    warning = precision_warning(cpu, "bf16")
    assert warning and "emulated" in warning and "--precision fp32" in warning and "\n" not in warning
    assert precision_warning(cpu, "fp32") is None
    assert precision_warning(torch.device("cuda"), "bf16") is None
    monkeypatch.setattr(runtime, "bf16_instructions", lambda: "AVX512_BF16")
    assert precision_warning(cpu, "bf16") is None


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
