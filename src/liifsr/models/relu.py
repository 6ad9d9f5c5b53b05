"""The ReLU MLP: LIIF's decoder activation, with oneDNN's fused ReLU where it runs."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from liifsr.kernels import linear, relu, relu_, relu_backward
from liifsr.models.mlp import Activation
from liifsr.models.registry import ACTIVATIONS, ActivationConfig


@dataclass
class ReLUConfig(ActivationConfig):
    name: str = "relu"

    def describe(self) -> str:
        return "ReLU"


class ReLU(Activation):
    def apply_(self, z: Tensor) -> Tensor:
        return relu_(z)

    def linear(self, h: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return linear(h, weight, bias, relu=True)

    def keep(self, z: Tensor) -> tuple[Tensor, None]:
        return relu(z), None

    def linear_keep(self, h: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, None]:
        return linear(h, weight, bias, relu=True), None

    def backward(self, grad: Tensor, out: Tensor, kept: Tensor | None, into: Tensor | None) -> Tensor:
        return relu_backward(grad, out, into)  # the derivative is 1 where the output is > 0


@ACTIVATIONS.register("relu", ReLUConfig)
def relu_layers(config: ReLUConfig, linears: list[nn.Linear]) -> list[Activation]:
    """A ReLU after every hidden Linear; PyTorch's default initialisation, as LIIF."""
    return [ReLU() for _ in linears[:-1]]
