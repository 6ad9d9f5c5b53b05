"""Decoder MLPs f_theta: LIIF's ReLU MLP and SIREN.

Both are `layers = Sequential(Linear, act, Linear, act, ..., Linear)`, the layout of
LIIF's checkpoints (`imnet.layers.{0,2,4,...}`), so the same weights file format serves
both. The fast decoder evaluates the first Linear itself (see `liif.py`) and calls
`first_activation` and `tail` for the rest.
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

    def first_activation(self, x: Tensor) -> Tensor:
        return self.layers[1](x)

    def tail(self, x: Tensor) -> Tensor:
        """Everything after the first activation."""
        return self.layers[2:](x)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
