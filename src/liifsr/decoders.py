"""Decoder MLPs f_theta: LIIF's ReLU MLP and SIREN.

Both are `layers = Sequential(Linear, act, Linear, act, ..., Linear)`, the layout of
LIIF's checkpoints (`imnet.layers.{0,2,4,...}`), so the same weights file format serves
both. The fast decoder evaluates the first Linear itself (see `liif.py`) and calls
`after_first_linear` for the rest.

`after_first_linear` runs the MLP in blocks of rows (`BLOCK_ROWS`), so that each
block's activations stay in the CPU's cache while its activation function, and in
training its derivative, are applied: on full-size tensors those elementwise passes
are bound by memory bandwidth and cost more than the matrix multiplies themselves.
Training goes through `BlockwiseMLP`, an autograd Function with the same blocked
backward; it keeps only the pre-activations, as autograd would.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from liifsr.config import DecoderConfig


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


# Rows per block: 2,048 rows of 256 bf16 values (1 MB per activation) fit a core's L2.
BLOCK_ROWS = 2048


def activate(z: Tensor, w0: float | None) -> Tensor:
    return torch.relu(z) if w0 is None else torch.sin(w0 * z)


def activation_grad_(grad: Tensor, z: Tensor, w0: float | None) -> Tensor:
    """grad * act'(z), in place on `grad`."""
    if w0 is None:
        return grad.masked_fill_(z <= 0, 0)
    return grad.mul_(torch.cos(w0 * z)).mul_(w0)


def cast(params: list[Tensor], dtype: torch.dtype) -> list[Tensor]:
    return [p.to(dtype) for p in params]


def blockwise_forward(
    pre: Tensor, w0s: tuple[float | None, ...], block_rows: int, params: list[Tensor], keep: bool = False
) -> tuple[Tensor, list[Tensor]]:
    """act -> Linear -> act -> ... -> Linear from `pre`, block by block.

    `params` are (weight, bias) of every Linear after the first, in `pre`'s dtype. With
    `keep`, also returns every later Linear's output before its activation (for backward).
    """
    weights, biases = params[0::2], params[1::2]
    rows = pre.shape[0]
    out = pre.new_empty(rows, weights[-1].shape[0])
    kept = [pre.new_empty(rows, w.shape[0]) for w in weights[:-1]] if keep else []
    for start in range(0, rows, block_rows):
        stop = min(start + block_rows, rows)
        z = pre[start:stop]
        for k, (weight, bias) in enumerate(zip(weights, biases)):
            target = out if k == len(weights) - 1 else (kept[k] if keep else None)
            h = activate(z, w0s[k])
            z = torch.addmm(bias, h, weight.t(), out=target[start:stop] if target is not None else None)
    return out, kept


class BlockwiseMLP(torch.autograd.Function):
    """`blockwise_forward` with a blocked backward: gradients for `pre` and the parameters."""

    @staticmethod
    def forward(ctx, pre: Tensor, w0s: tuple[float | None, ...], block_rows: int, *params: Tensor) -> Tensor:
        with torch.autocast(pre.device.type, enabled=False):
            out, kept = blockwise_forward(pre, w0s, block_rows, cast(list(params), pre.dtype), keep=True)
        ctx.w0s, ctx.block_rows = w0s, block_rows
        ctx.save_for_backward(pre, *kept, *params)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        pre, *rest = ctx.saved_tensors
        n_linear = len(ctx.w0s)
        zs = [pre, *rest[: n_linear - 1]]  # the input of each activation
        params = rest[n_linear - 1 :]
        weights = cast(list(params[0::2]), pre.dtype)
        grads = [torch.zeros_like(p, dtype=torch.float32) for p in params]
        grad_pre = torch.empty_like(pre)
        grad_out = grad_out.to(pre.dtype)
        with torch.autocast(pre.device.type, enabled=False):
            for start in range(0, pre.shape[0], ctx.block_rows):
                stop = min(start + ctx.block_rows, pre.shape[0])
                grad = grad_out[start:stop]
                for k in reversed(range(n_linear)):
                    z = zs[k][start:stop]
                    h = activate(z, ctx.w0s[k])
                    grads[2 * k] += (grad.t() @ h).float()
                    grads[2 * k + 1] += grad.sum(0, dtype=torch.float32)
                    grad = activation_grad_(grad @ weights[k], z, ctx.w0s[k])
                grad_pre[start:stop] = grad
        grads = [g.to(p.dtype) for g, p in zip(grads, params)]
        return grad_pre, None, None, *grads


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

    def after_first_linear(self, pre: Tensor, block_rows: int = 0) -> Tensor:
        """The MLP from the first Linear's output `pre` (N, hidden) on: (N, out_dim).

        Runs in `pre`'s dtype (bf16 under autocast: the weights are cast once per call).
        """
        if torch.compiler.is_compiling():  # inductor fuses the elementwise passes itself
            return self.layers[1:](pre)
        params = [p for layer in self.layers[2::2] for p in (layer.weight, layer.bias)]
        block_rows = block_rows or BLOCK_ROWS
        if torch.is_grad_enabled() and (pre.requires_grad or any(p.requires_grad for p in params)):
            return BlockwiseMLP.apply(pre, self.w0s(), block_rows, *params)
        with torch.autocast(pre.device.type, enabled=False):
            return blockwise_forward(pre, self.w0s(), block_rows, cast(params, pre.dtype))[0]

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
