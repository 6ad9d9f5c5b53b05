"""RDN without upsampler, LIIF's other encoder (configuration B: G0 64, D 16, C 8, G 64).

Names follow LIIF's checkpoints (`SFENet1`, `RDBs.{i}.convs.{c}.conv.0`, `GFF`), so
official weights load by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from liifsr.config import ConfigError
from liifsr.models.encoder import Encoder
from liifsr.models.registry import ENCODERS, EncoderConfig, check_positive, conv_size


@dataclass
class RDNConfig(EncoderConfig):
    """D residual dense blocks of C layers with growth G, G0 features."""

    name: str = "rdn"
    G0: int = 64
    D: int = 16
    C: int = 8
    G: int = 64
    kernel_size: int = 3

    def check(self, where: str) -> None:
        check_positive(where, G0=self.G0, D=self.D, C=self.C, G=self.G, kernel_size=self.kernel_size)
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"{where}.kernel_size must be odd, got {self.kernel_size}")

    @property
    def out_dim(self) -> int:
        return self.G0

    def size(self, features: int) -> tuple[int, int]:
        G0, D, C, G, k = self.G0, self.D, self.C, self.G, self.kernel_size
        # Each dense layer c reads G0 + c G channels: the sum over c in closed form.
        dense = (C * G0 + G * C * (C - 1) // 2) * G * k * k + C * G
        block = dense + conv_size(G0 + C * G, G0, 1)
        head = conv_size(features, G0, k) + conv_size(G0, G0, k)
        fusion = conv_size(D * G0, G0, 1) + conv_size(G0, G0, k)
        return head + D * block + fusion, 2 + D * (C + 1) + 2

    def describe(self) -> str:
        return f"RDN ({self.D} blocks of {self.C} layers, {self.G0} features)"


class RDBConv(nn.Module):
    """One densely connected layer: its output is concatenated to its input."""

    def __init__(self, in_channels: int, growth: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels, growth, kernel_size, padding=kernel_size // 2), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.conv(x)], dim=1)


class RDB(nn.Module):
    """Residual dense block: C dense layers, 1x1 local feature fusion, local skip."""

    def __init__(self, G0: int, G: int, C: int, kernel_size: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(*[RDBConv(G0 + c * G, G, kernel_size) for c in range(C)])
        self.LFF = nn.Conv2d(G0 + C * G, G0, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.LFF(self.convs(x)) + x


@ENCODERS.register("rdn", RDNConfig)
class RDN(Encoder):
    """RDN without upsampler, as in LIIF (configuration B: G0 64, D 16, C 8, G 64)."""

    def __init__(self, config: RDNConfig, in_channels: int = 3) -> None:
        G0, D, C, G, kernel_size = config.G0, config.D, config.C, config.G, config.kernel_size
        pad = kernel_size // 2
        # Each k x k conv widens the receptive field by k // 2: the two heads, C per block, GFF's last.
        super().__init__(out_dim=G0, receptive_radius=pad * (2 + D * C + 1))
        self.SFENet1 = nn.Conv2d(in_channels, G0, kernel_size, padding=pad)
        self.SFENet2 = nn.Conv2d(G0, G0, kernel_size, padding=pad)
        self.RDBs = nn.ModuleList([RDB(G0, G, C, kernel_size) for _ in range(D)])
        self.GFF = nn.Sequential(nn.Conv2d(D * G0, G0, 1), nn.Conv2d(G0, G0, kernel_size, padding=pad))

    def forward(self, x: Tensor) -> Tensor:
        f1 = self.SFENet1(x)
        x = self.SFENet2(f1)
        block_outputs = []
        for block in self.RDBs:
            x = block(x)
            block_outputs.append(x)
        return self.GFF(torch.cat(block_outputs, dim=1)) + f1
