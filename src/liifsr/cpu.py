"""What this machine's CPU is and which bf16 instructions oneDNN may use on it: the facts
that decide whether bf16 runs natively here (`runtime.native_bf16`) and that a
measurement names (`runtime.machine_summary`). Reads /proc/cpuinfo; imports no torch."""

from __future__ import annotations

import functools
import os

# ONEDNN_MAX_CPU_ISA values (oneDNN's caps on itself) that still allow native bf16:
# every level named with AMX allows AMX tiles too; the others stop at AVX-512 BF16.
_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512")


@functools.cache  # the CPU does not change under a process: read it once
def cpu_model_and_flags() -> tuple[str, frozenset[str]]:
    """The CPU's model name and feature flags, from /proc/cpuinfo (Linux); elsewhere
    `platform.processor()` and no flags."""
    import platform

    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or "unknown CPU", frozenset()
    fields = dict(line.split(":", 1) for line in text.splitlines()[:40] if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return fields.get("model name", platform.processor() or "unknown CPU"), frozenset(fields.get("flags", "").split())


def bf16_instructions(flags: frozenset[str] | None = None, max_isa: str | None = None) -> str | None:
    """'AMX', 'AVX512_BF16' or None: the CPU instructions that make bf16 matmuls fast
    here, as oneDNN may use them (capped by ONEDNN_MAX_CPU_ISA, as oneDNN caps itself).
    None: bf16 is emulated with fp32 instructions, many times slower than fp32."""
    flags = cpu_model_and_flags()[1] if flags is None else flags
    max_isa = (os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL") if max_isa is None else max_isa).strip().upper()
    uncapped = max_isa in ("", "ALL")
    if "amx_bf16" in flags and (uncapped or "AMX" in max_isa):
        return "AMX"
    if "avx512_bf16" in flags and (uncapped or "AMX" in max_isa or max_isa in _BF16_ISAS):
        return "AVX512_BF16"
    return None
