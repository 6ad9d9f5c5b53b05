"""SIREN (Sitzmann et al. 2020): sin(w0 (W x + b)) after every hidden Linear, last layer linear.

SIREN-30 and SIREN-15 are w0 = 30 and 15. `w0_first` and `w0_hidden` may differ (the
`edsr-liif-siren15-first` preset reads SIREN-15 as w0 = 15 in the first layer only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from liifsr.config import ConfigError
from liifsr.models.mlp import Activation
from liifsr.models.registry import ACTIVATIONS, ActivationConfig


@dataclass
class SineConfig(ActivationConfig):
    name: str = "sine"
    w0_first: float = 30.0
    w0_hidden: float = 30.0

    def check(self, where: str) -> None:
        if not all(math.isfinite(w0) and w0 > 0 for w0 in (self.w0_first, self.w0_hidden)):
            raise ConfigError(f"{where}: w0_first and w0_hidden must be positive, got {self.w0_first}, {self.w0_hidden}")

    def describe(self) -> str:
        w0 = f"{self.w0_first:g}" if self.w0_first == self.w0_hidden else f"{self.w0_first:g}/{self.w0_hidden:g}"
        return f"sine (w0 {w0})"


class Sine(Activation):
    """sin(w0 * z), applied to the output z of a Linear: sin(w0 * (W x + b))."""

    def __init__(self, w0: float) -> None:
        super().__init__()
        self.w0 = w0

    def apply_(self, z: Tensor) -> Tensor:
        return z.sin_() if self.w0 == 1.0 else z.mul_(self.w0).sin_()  # w0 = 1: folded into the weights

    def forward(self, z: Tensor) -> Tensor:
        return torch.sin(self.w0 * z)

    def keep(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """sin(w0 z) and its derivative w0 cos(w0 z)."""
        z = z * self.w0
        return torch.sin(z), torch.cos(z).mul_(self.w0)

    def backward(self, grad: Tensor, out: Tensor, kept: Tensor | None, into: Tensor | None) -> Tensor:
        assert kept is not None, "Sine keeps its derivative (w0 cos z) in the forward pass"
        return torch.mul(grad, kept, out=grad if into is None else into)

    def folded(self, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Activation]:
        """sin((w0 W) x + w0 b): saves a multiply pass and a rounding in 16 bits."""
        return weight * self.w0, bias * self.w0, Sine(1.0)

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


@ACTIVATIONS.register("sine", SineConfig)
def sine_layers(config: SineConfig, linears: list[nn.Linear]) -> list[Activation]:
    siren_init_(linears, config.w0_hidden)
    sines: list[Activation] = [Sine(config.w0_first), *(Sine(config.w0_hidden) for _ in linears[1:-1])]
    return sines
