"""Decoder MLPs f_theta: LIIF's ReLU MLP and SIREN.

Both are `layers = Sequential(Linear, act, Linear, act, ..., Linear)`, the layout of
LIIF's checkpoints (`imnet.layers.{0,2,4,...}`), so the same weights file format serves
both. The fast decoder evaluates the first Linear itself (see `liif.py`) and calls
`after_first_linear` for the rest.

`after_first_linear` runs the MLP in blocks of rows (`rows_per_block`), so that each
block's activations stay in the CPU's cache while its activation function, and in
training its derivative, are applied: on full-size tensors those elementwise passes
are bound by memory bandwidth and cost more than the matrix multiplies themselves.
In inference the first Linear's output itself is made block by block (a `RowSource`:
liif.py gathers it), so no full-size tensor is ever written. In bf16, SIREN's w0 is
folded into the weights: sin((w0 W) x + w0 b) saves a multiply pass and a rounding.
Training goes through `BlockwiseMLP`, an autograd Function with a blocked backward;
it keeps each block's activations (and, for SIREN, their derivatives), as autograd would.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor, nn

from liifsr.config import DecoderConfig
from liifsr.kernels import linear, relu, relu_, relu_backward, row_sum


class Sine(nn.Module):
    """sin(w0 * x), applied to the output of a Linear: sin(w0 * (W x + b))."""

    def __init__(self, w0: float) -> None:
        super().__init__()
        self.w0 = w0

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.w0 * x)

    def extra_repr(self) -> str:
        return f"w0={self.w0}"


def siren_init_(layers: list[nn.Linear], w0_hidden: float) -> None:
    """SIREN initialisation (Sitzmann et al. 2020, Sec. 3.2).

    First layer U(-1/n, 1/n); every later layer, the linear output layer included,
    U(-sqrt(6/n)/w0, sqrt(6/n)/w0), so that w0 * W x stays of unit scale. n is the layer's
    input width. Biases keep PyTorch's default, as in the SIREN reference code.
    """
    with torch.no_grad():
        first, *later = layers
        n = first.in_features
        first.weight.uniform_(-1 / n, 1 / n)
        for layer in later:
            bound = math.sqrt(6 / layer.in_features) / w0_hidden
            layer.weight.uniform_(-bound, bound)


# Bytes of one block's activation. Blocks must be small enough for the cache and large
# enough for fast matmuls: on this project's 2-core machine (2 MB of L2 per core, a large
# shared L3) a 256-wide bf16 Linear ran at 1,260-1,740 GFLOP/s on 2,048 rows and
# 2,150-2,400 on 8,192-16,384, and 8 MiB blocks decoded x4 1.5x faster than 1 MiB ones
# in bf16 (1.1x in fp32), while 16 MiB ones were 1.5x slower again.
BLOCK_BYTES = 8 * 2**20


def rows_per_block(width: int, dtype: torch.dtype) -> int:
    """Rows of a `width`-wide activation in `dtype` that fill BLOCK_BYTES (16,384 for
    256-wide bf16, 8,192 for fp32)."""
    return max(1, BLOCK_BYTES // (width * dtype.itemsize))


def linear_act(h: Tensor, weight: Tensor, bias: Tensor, w0: float | None) -> Tensor:
    """act(h W^T + b): ReLU (w0 None) or sin(w0 z)."""
    return linear(h, weight, bias, relu=True) if w0 is None else activate_(linear(h, weight, bias), w0)


def activate_(z: Tensor, w0: float | None) -> Tensor:
    if w0 is None:
        return relu_(z)
    return z.sin_() if w0 == 1.0 else z.mul_(w0).sin_()  # w0 = 1: folded into the weights


def cast(params: list[Tensor], dtype: torch.dtype) -> list[Tensor]:
    return [p.to(dtype) for p in params]


def cast_folded(params: list[Tensor], w0s: tuple[float | None, ...], dtype: torch.dtype) -> tuple[list[Tensor], tuple]:
    """(params, w0s) for `blockwise_forward` in `dtype`. Below fp32, each sine's w0 is
    folded into the Linear before it (scaled in fp32, then rounded once) and its w0
    becomes 1; fp32 keeps the literal sin(w0 (W x + b))."""
    if dtype == torch.float32:
        return cast(params, dtype), w0s
    folded, later = [], w0s[1:]  # later[i]: the activation after Linear i (of those after the first)
    for i, (weight, bias) in enumerate(zip(params[0::2], params[1::2])):
        w0 = later[i] if i < len(later) else None
        scale = 1.0 if w0 is None else w0
        folded += [(weight * scale).to(dtype), (bias * scale).to(dtype)]
    return folded, (w0s[0], *(None if w0 is None else 1.0 for w0 in later))


class RowSource(Protocol):
    """The first Linear's output, N rows made on demand (see liif.py's `GatheredRows`)."""

    dtype: torch.dtype

    def __len__(self) -> int: ...

    def rows(self, start: int, stop: int) -> Tensor:
        """Rows start:stop as a fresh (stop - start, hidden) tensor."""
        ...

    def all_rows(self) -> Tensor:
        """All N rows as a fresh (N, hidden) tensor."""
        ...


def blockwise_forward(pre: Tensor | RowSource, w0s: tuple[float | None, ...], block_rows: int,
                      params: list[Tensor]) -> Tensor:
    """act -> Linear -> act -> ... -> Linear from `pre`, block by block (a tensor `pre`
    is overwritten; a RowSource makes each block when its turn comes, in cache).

    `params` are (weight, bias) of every Linear after the first, in `pre`'s dtype.
    """
    weights, biases = params[0::2], params[1::2]
    rows = (lambda start, stop: pre[start:stop]) if isinstance(pre, Tensor) else pre.rows
    out = torch.empty(len(pre), weights[-1].shape[0], dtype=pre.dtype, device=weights[-1].device)
    for start in range(0, len(pre), block_rows):
        stop = min(start + block_rows, len(pre))
        h = activate_(rows(start, stop), w0s[0])
        for weight, bias, w0 in zip(weights[:-1], biases[:-1], w0s[1:]):
            h = linear_act(h, weight, bias, w0)
        out[start:stop] = linear(h, weights[-1], biases[-1])
    return out


def sine_and_derivative(z: Tensor, w0: float) -> tuple[Tensor, Tensor]:
    """sin(w0 z) and its derivative w0 cos(w0 z)."""
    z = z * w0
    return torch.sin(z), torch.cos(z).mul_(w0)


class BlockwiseMLP(torch.autograd.Function):
    """`blockwise_forward` with a blocked backward: gradients for `pre` and the parameters.

    Each block keeps its activations (the inputs of the later Linears) and, for SIREN,
    the activation's derivative w0 cos(w0 z): what autograd would keep, block by block.
    """

    @staticmethod
    def forward(ctx, pre: Tensor, w0s: tuple[float | None, ...], block_rows: int, *params: Tensor) -> Tensor:
        weights, biases = cast(list(params[0::2]), pre.dtype), cast(list(params[1::2]), pre.dtype)
        out = pre.new_empty(pre.shape[0], weights[-1].shape[0])
        blocks = []
        with torch.autocast(pre.device.type, enabled=False):
            for start in range(0, pre.shape[0], block_rows):
                block = pre[start : start + block_rows]
                kept = [(relu(block), None) if w0s[0] is None else sine_and_derivative(block, w0s[0])]
                for weight, bias, w0 in zip(weights[:-1], biases[:-1], w0s[1:]):
                    h = kept[-1][0]
                    if w0 is None:
                        kept.append((linear(h, weight, bias, relu=True), None))
                    else:
                        kept.append(sine_and_derivative(linear(h, weight, bias), w0))
                out[start : start + block_rows] = linear(kept[-1][0], weights[-1], biases[-1])
                blocks.append(kept)
        ctx.blocks, ctx.block_rows = blocks, block_rows
        ctx.save_for_backward(*params)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
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
                    h, derivative = kept[k]
                    grads[2 * k] += (grad.t() @ h).float()
                    grads[2 * k + 1] += row_sum(grad)
                    grad_h = grad @ weights[k]
                    out = grad_pre[rows] if k == 0 else None  # the last one straight into grad_pre
                    if derivative is None:  # ReLU: h > 0 where z > 0
                        grad = relu_backward(grad_h, h, out)
                    else:
                        grad = torch.mul(grad_h, derivative, out=grad_h if out is None else out)
        return grad_pre, None, None, *(g.to(p.dtype) for g, p in zip(grads, params))


class MLP(nn.Module):
    def __init__(self, in_dim: int, config: DecoderConfig) -> None:
        super().__init__()
        if config.activation not in ("relu", "sine"):
            raise ValueError(f"unknown decoder activation {config.activation!r} (choose 'relu' or 'sine')")
        widths = [in_dim, *config.hidden]
        modules: list[nn.Module] = []
        linears: list[nn.Linear] = []
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            linears.append(nn.Linear(n_in, n_out))
            modules += [linears[-1], self._activation(config, first=i == 0)]
        linears.append(nn.Linear(widths[-1], config.out_dim))
        modules.append(linears[-1])
        self.layers = nn.Sequential(*modules)
        if config.activation == "sine":
            siren_init_(linears, config.w0_hidden)

    @staticmethod
    def _activation(config: DecoderConfig, first: bool) -> nn.Module:
        if config.activation == "relu":
            return nn.ReLU(inplace=True)  # after a Linear: saves a full-size copy per layer
        return Sine(config.w0_first if first else config.w0_hidden)

    @property
    def first_linear(self) -> nn.Linear:
        return self.layers[0]

    def w0s(self) -> tuple[float | None, ...]:
        """Each hidden activation as its w0 (None for ReLU)."""
        return tuple(getattr(module, "w0", None) for module in self.layers[1::2])

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
            return BlockwiseMLP.apply(pre, self.w0s(), block_rows, *params)
        return self._forward_blocks(pre, block_rows)

    def _later_params(self) -> list[Tensor]:
        return [p for layer in self.layers[2::2] for p in (layer.weight, layer.bias)]

    def _forward_blocks(self, pre: Tensor | RowSource, block_rows: int) -> Tensor:
        params, w0s = cast_folded(self._later_params(), self.w0s(), pre.dtype)
        with torch.autocast(params[0].device.type, enabled=False):
            return blockwise_forward(pre, w0s, block_rows, params)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
