"""The decoder MLP f_theta and its fast, cache-blocked evaluation.

`layers = Sequential(Linear, act, Linear, act, ..., Linear)` is the layout of LIIF's
checkpoints (`imnet.layers.{0,2,4,...}`), whatever the activation, so one weights format
serves the ReLU MLP and SIREN. The activation is an `Activation` module, registered in
`ACTIVATIONS` by its own module (`relu.py`, `siren.py`): it knows its forward, its
derivative and how it folds into the Linear before it, which is all the fast paths need.

`after_first_linear` runs the MLP in blocks of rows (`rows_per_block`), so that each
block's activations stay in the CPU's cache while its activation function, and in
training its derivative, are applied: on full-size tensors those elementwise passes are
bound by memory bandwidth and cost more than the matrix multiplies themselves. In
inference the first Linear's output itself is made block by block (a `RowSource`: the
decoder gathers it), so no full-size tensor is ever written. Training goes through
`BlockwiseMLP`, an autograd Function with a blocked backward; it keeps each block's
activations (and what the activation's derivative needs), as autograd would.
"""

from __future__ import annotations

import typing
from typing import Protocol

import torch
from torch import Tensor, nn

from liifsr.kernels import linear, row_sum
from liifsr.models.registry import ACTIVATIONS, ActivationConfig


class Activation(nn.Module):
    """A hidden activation a = act(z) applied to a Linear's output z."""

    def apply_(self, z: Tensor) -> Tensor:
        """act(z), overwriting z."""
        raise NotImplementedError

    def forward(self, z: Tensor) -> Tensor:
        return self.apply_(z.clone())

    def linear(self, h: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """act(h W^T + b)."""
        return self.apply_(linear(h, weight, bias))

    def keep(self, z: Tensor) -> tuple[Tensor, Tensor | None]:
        """(act(z), what `backward` needs besides act(z)): what training keeps of a block."""
        raise NotImplementedError

    def linear_keep(self, h: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.keep(linear(h, weight, bias))

    def backward(self, grad: Tensor, out: Tensor, kept: Tensor | None, into: Tensor | None) -> Tensor:
        """dL/dz from dL/da, the activation `out` and `kept` (written into `into` or over `grad`)."""
        raise NotImplementedError

    def folded(self, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Activation]:
        """(W', b', act') with act'(W' x + b') = act(W x + b), for cheaper 16-bit decoding."""
        return weight, bias, self


# Bytes of one block's activation. Blocks must be small enough for the cache and large
# enough for fast matmuls: on an Intel Xeon (2 MB of L2 per core, a large shared L3) a
# 256-wide bf16 Linear ran at 1,260-1,740 GFLOP/s on 2,048 rows and 2,150-2,400 on
# 8,192-16,384, and 8 MiB blocks decoded x4 1.5x faster than 1 MiB ones in bf16 (1.1x in
# fp32), while 16 MiB ones were 1.5x slower again.
BLOCK_BYTES = 8 * 2**20


def rows_per_block(width: int, dtype: torch.dtype) -> int:
    """Rows of a `width`-wide activation in `dtype` that fill BLOCK_BYTES (16,384 for
    256-wide bf16, 8,192 for fp32)."""
    return max(1, BLOCK_BYTES // (width * dtype.itemsize))


def cast(params: list[Tensor], dtype: torch.dtype) -> list[Tensor]:
    return [p.to(dtype) for p in params]


def cast_folded(params: list[Tensor], acts: list[Activation], dtype: torch.dtype) -> tuple[list[Tensor], list[Activation]]:
    """(params, acts) for `blockwise_forward` in `dtype`. Below fp32 each activation after
    a later Linear is folded into it (scaled in fp32, then rounded once); fp32 keeps the
    literal form. `params` are (weight, bias) of the Linears after the first, `acts` the
    activations after every hidden Linear."""
    if dtype == torch.float32:
        return cast(params, dtype), acts
    folded_params, folded_acts = [], [acts[0]]
    for i, (weight, bias) in enumerate(zip(params[0::2], params[1::2])):
        if i + 1 < len(acts):
            weight, bias, act = acts[i + 1].folded(weight, bias)
            folded_acts.append(act)
        folded_params += [weight.to(dtype), bias.to(dtype)]
    return folded_params, folded_acts


class RowSource(Protocol):
    """The first Linear's output, N rows made on demand (e.g. a `GatheredRowSource`)."""

    @property
    def dtype(self) -> torch.dtype: ...

    def __len__(self) -> int: ...

    def rows(self, start: int, stop: int) -> Tensor:
        """Rows start:stop as a fresh (stop - start, hidden) tensor."""
        ...

    def all_rows(self) -> Tensor:
        """All N rows as a fresh (N, hidden) tensor."""
        ...


class GatheredRowSource:
    """A RowSource whose rows are computed from codes gathered from `table` at `index`
    and per-query tensors (`per_query`), all sliced alike; subclasses give the first
    layer itself. Dataclasses that subclass it declare `table` and `index` first."""

    table: Tensor
    index: Tensor

    @property
    def dtype(self) -> torch.dtype:
        return self.table.dtype

    def __len__(self) -> int:
        return self.index.shape[0]

    def rows(self, start: int, stop: int) -> Tensor:
        return self.first_layer(self.index[start:stop], *(t[start:stop] for t in self.per_query()))

    def all_rows(self) -> Tensor:
        return self.first_layer(self.index, *self.per_query())  # no slicing: traced graphs keep N dynamic

    def per_query(self) -> tuple[Tensor, ...]:
        """The tensors with one row per query, after `index`."""
        raise NotImplementedError

    def first_layer(self, index: Tensor, *per_query: Tensor) -> Tensor:
        """The first Linear's rows for the queries of `index` and `per_query`."""
        raise NotImplementedError


def blockwise_forward(pre: Tensor | RowSource, acts: list[Activation], block_rows: int, params: list[Tensor]) -> Tensor:
    """act -> Linear -> act -> ... -> Linear from `pre`, block by block (a tensor `pre`
    is overwritten; a RowSource makes each block when its turn comes, in cache).

    `params` are (weight, bias) of every Linear after the first, in `pre`'s dtype.
    """
    weights, biases = params[0::2], params[1::2]
    rows = (lambda start, stop: pre[start:stop]) if isinstance(pre, Tensor) else pre.rows
    out = torch.empty(len(pre), weights[-1].shape[0], dtype=pre.dtype, device=weights[-1].device)
    for start in range(0, len(pre), block_rows):
        stop = min(start + block_rows, len(pre))
        h = acts[0].apply_(rows(start, stop))
        for weight, bias, act in zip(weights[:-1], biases[:-1], acts[1:]):
            h = act.linear(h, weight, bias)
        out[start:stop] = linear(h, weights[-1], biases[-1])
    return out


class BlockwiseMLP(torch.autograd.Function):
    """`blockwise_forward` with a blocked backward: gradients for `pre` and the parameters.

    Each block keeps its activations (the inputs of the later Linears) and what each
    activation's derivative needs (SIREN: w0 cos(w0 z)): what autograd would keep, block by block.
    """

    @staticmethod
    def forward(ctx, pre: Tensor, acts: list[Activation], block_rows: int, *params: Tensor) -> Tensor:
        weights, biases = cast(list(params[0::2]), pre.dtype), cast(list(params[1::2]), pre.dtype)
        out = pre.new_empty(pre.shape[0], weights[-1].shape[0])
        blocks = []
        with torch.autocast(pre.device.type, enabled=False):
            for start in range(0, pre.shape[0], block_rows):
                kept = [acts[0].keep(pre[start : start + block_rows])]
                for weight, bias, act in zip(weights[:-1], biases[:-1], acts[1:]):
                    kept.append(act.linear_keep(kept[-1][0], weight, bias))
                out[start : start + block_rows] = linear(kept[-1][0], weights[-1], biases[-1])
                blocks.append(kept)
        ctx.blocks, ctx.block_rows, ctx.acts = blocks, block_rows, acts
        ctx.save_for_backward(*params)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        params = ctx.saved_tensors
        dtype = ctx.blocks[0][0][0].dtype
        weights = cast(list(params[0::2]), dtype)
        grads = [torch.zeros_like(p, dtype=torch.float32) for p in params]
        grad_pre = grad_out.new_empty(grad_out.shape[0], weights[0].shape[1], dtype=dtype)
        with torch.autocast(grad_out.device.type, enabled=False):
            for index, kept in enumerate(ctx.blocks):
                start = index * ctx.block_rows
                rows = slice(start, start + kept[0][0].shape[0])
                grad = grad_out[rows].to(dtype)
                for k in reversed(range(len(kept))):
                    h, saved = kept[k]
                    grads[2 * k] += (grad.t() @ h).float()
                    grads[2 * k + 1] += row_sum(grad)
                    into = grad_pre[rows] if k == 0 else None  # the last one straight into grad_pre
                    grad = ctx.acts[k].backward(grad @ weights[k], h, saved, into)
        return grad_pre, None, None, *(g.to(p.dtype) for g, p in zip(grads, params))


class MLP(nn.Module):
    """Linear layers of widths in_dim -> hidden... -> out_dim, `activation` after each hidden one."""

    def __init__(self, in_dim: int, hidden: list[int], out_dim: int, activation: ActivationConfig) -> None:
        super().__init__()
        widths = [in_dim, *hidden, out_dim]
        linears = [nn.Linear(n_in, n_out) for n_in, n_out in zip(widths[:-1], widths[1:])]
        # The activation's module initialises the Linears as its paper does (SIREN).
        acts = ACTIVATIONS.build(activation, linears)
        modules: list[nn.Module] = []
        for layer, act in zip(linears, acts):
            modules += [layer, act]
        self.layers = nn.Sequential(*modules, linears[-1])

    @property
    def first_linear(self) -> nn.Linear:
        return typing.cast(nn.Linear, self.layers[0])  # the layers alternate Linear, Activation, ..., Linear

    def activations(self) -> list[Activation]:
        return [typing.cast(Activation, act) for act in list(self.layers)[1::2]]

    def after_first_linear(self, pre: Tensor | RowSource, block_rows: int = 0) -> Tensor:
        """The MLP from the first Linear's output `pre` (N, hidden) on: (N, out_dim).

        `pre` is a tensor or a RowSource. Runs in `pre`'s dtype (bf16 under autocast:
        the weights are cast once per call), in blocks of `block_rows` rows (default:
        `rows_per_block`).
        """
        block_rows = block_rows or rows_per_block(self.first_linear.out_features, pre.dtype)
        if not isinstance(pre, Tensor):
            if not (torch.is_grad_enabled() or torch.compiler.is_compiling() or torch.jit.is_tracing()):
                return self._forward_blocks(pre, block_rows)
            pre = pre.all_rows()
        if torch.compiler.is_compiling() or torch.jit.is_tracing():
            # Graphs (inductor, ONNX export) take the plain layers: inductor fuses the
            # elementwise passes itself, and a traced block loop would fix the row count.
            return self.layers[1:](pre)
        params = self._later_params()
        if torch.is_grad_enabled() and (pre.requires_grad or any(p.requires_grad for p in params)):
            return BlockwiseMLP.apply(pre, self.activations(), block_rows, *params)
        return self._forward_blocks(pre, block_rows)

    def _later_params(self) -> list[Tensor]:
        linears = [typing.cast(nn.Linear, layer) for layer in list(self.layers)[2::2]]
        return [p for layer in linears for p in (layer.weight, layer.bias)]

    def _forward_blocks(self, pre: Tensor | RowSource, block_rows: int) -> Tensor:
        params, acts = cast_folded(self._later_params(), self.activations(), pre.dtype)
        with torch.autocast(params[0].device.type, enabled=False):
            return blockwise_forward(pre, acts, block_rows, params)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
