"""Does torch.compile fuse the bf16 decoder's elementwise passes? Eager against inductor.

The bf16 decoder is bound by its elementwise passes (docs/benchmarks.md): the first
layer's gather, its coordinate and cell term and its activation, and SIREN's sines.
This times the decoder on one chunk of 4,096 queries (four
ensemble members each, their first-layer rows gathered from a latent projection) in bf16:
the eager decoder, which runs the chunk in blocks of `models.mlp.rows_per_block` rows, against
the same code compiled by inductor for one block (the plain-layer path that
`MLP.after_first_linear` takes under torch.compile) and called block by block:
- "inductor": default settings (its own C++ loops around oneDNN matmuls);
- "inductor, frozen": weights frozen into the graph (oneDNN's packed bf16 Linear);
- "inductor, max-autotune": frozen, plus inductor's AMX GEMM template, which can fuse
  the activation into the matmul's epilogue;
and, apart, the first layer alone (gather + coordinate term + activation), the one
fusion eager PyTorch cannot make. Eager and compiled calls alternate, so the ratios
hold on a shared machine.

    python benchmarks/bench_compile.py [--presets edsr-liif-relu,edsr-liif-siren15]
                                       [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import torch
import torch._inductor.config as inductor_config
from torch import Tensor, nn

from liifsr.models import model_preset
from liifsr.models.liif import LIIF, GatheredRows
from liifsr.models.mlp import rows_per_block
from liifsr.runtime import machine_summary

LATENT_CODES = 200 * 200  # a 200 x 200 latent grid: the table the rows are gathered from
ROWS = 4 * 4096  # the first-layer rows of 4,096 queries: four ensemble members each
BLOCK_ROWS = rows_per_block(256, torch.bfloat16)


class DecodeBlock(nn.Module):
    """One block of the decoder from the first layer on: the latent projection (codes,
    hidden), (rows,) indices into it and (rows, 4) coordinate and cell terms -> (rows, 3)."""

    def __init__(self, model: LIIF) -> None:
        super().__init__()
        self.imnet = copy.deepcopy(model.imnet).to(torch.bfloat16)
        self.latent_dim = model.latent_dim

    def first_layer(self, table: Tensor, index: Tensor, terms: Tensor) -> GatheredRows:
        weight = self.imnet.first_linear.weight[:, self.latent_dim :]
        return GatheredRows(table=table, index=index, terms=terms, weight=weight)

    def forward(self, table: Tensor, index: Tensor, terms: Tensor) -> Tensor:
        return self.imnet.after_first_linear(self.first_layer(table, index, terms), BLOCK_ROWS)

    eager = forward  # what the compiled block is timed against


class FirstLayer(DecodeBlock):
    """The first layer and its activation only, as elementwise code inductor can fuse."""

    def forward(self, table: Tensor, index: Tensor, terms: Tensor) -> Tensor:
        weight = self.first_layer(table, index, terms).weight
        coordinate_term = sum(terms[:, k : k + 1] * weight[:, k] for k in range(terms.shape[1]))
        return self.imnet.activations()[0].apply_(table[index] + coordinate_term)

    def eager(self, table: Tensor, index: Tensor, terms: Tensor) -> Tensor:
        return self.imnet.activations()[0].apply_(self.first_layer(table, index, terms).all_rows())


def compiled(module: nn.Module, mode: str) -> Callable[..., Tensor]:
    torch._dynamo.reset()
    inductor_config.freezing = mode != "inductor"
    inductor_config.max_autotune = mode == "inductor, max-autotune"
    inductor_config.max_autotune_gemm_backends = "CPP,ATEN"
    inductor_config.assert_indirect_indexing = False  # the indices are valid by construction
    return torch.compile(module, dynamic=False)


def block_by_block(block: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Run `block` on each BLOCK_ROWS rows of a chunk, as the eager decoder walks its blocks."""

    def chunk(table: Tensor, index: Tensor, terms: Tensor) -> Tensor:
        return torch.cat([block(table, index[start : start + BLOCK_ROWS], terms[start : start + BLOCK_ROWS])
                          for start in range(0, len(index), BLOCK_ROWS)])

    return chunk


def alternate(functions: list[Callable[[], Tensor]], repeats: int, calls: int = 10) -> list[float]:
    """Best seconds per call of each function, timed in turns."""
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for i, fn in enumerate(functions):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="edsr-liif-relu,edsr-liif-siren15")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0 = PyTorch's default)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{machine_summary()}\nbf16, a chunk of {ROWS} rows in blocks of {BLOCK_ROWS}\n")
    print("| preset | part | compiled with | compile s | eager ms | compiled ms | speed-up | max difference |")
    print("|---|---|---|---|---|---|---|---|")
    generator = torch.Generator().manual_seed(0)
    for preset in args.presets.split(","):
        model = LIIF(model_preset(preset)).eval()
        table = torch.randn(LATENT_CODES, model.imnet.first_linear.out_features, generator=generator)
        table = table.to(torch.bfloat16)
        index = torch.randint(0, LATENT_CODES, (ROWS,), generator=generator)
        terms = torch.rand(ROWS, 4, generator=generator).mul_(2).sub_(1).to(torch.bfloat16)
        cases = [("decoder", DecodeBlock(model), mode)
                 for mode in ("inductor", "inductor, frozen", "inductor, max-autotune")]
        cases.append(("first layer", FirstLayer(model), "inductor"))
        with torch.no_grad():
            for part, module, mode in cases:
                eager = module.eager
                start = time.perf_counter()
                fn = block_by_block(compiled(module, mode))
                out = fn(table, index, terms)
                compile_seconds = time.perf_counter() - start
                difference = (out.float() - eager(table, index, terms).float()).abs().max().item()
                calls = [lambda: eager(table, index, terms), lambda: fn(table, index, terms)]
                eager_s, compiled_s = alternate(calls, args.repeats)
                print(f"| {preset} | {part} | {mode} | {compile_seconds:.0f} | {eager_s * 1e3:.2f} | "
                      f"{compiled_s * 1e3:.2f} | {eager_s / compiled_s:.2f}x | {difference:.3g} |", flush=True)


if __name__ == "__main__":
    main()
