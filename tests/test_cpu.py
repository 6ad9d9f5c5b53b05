"""liifsr.cpu: the bf16 instructions oneDNN may use, from the CPU's flags and its cap."""

import pytest

from liifsr.cpu import bf16_instructions

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
