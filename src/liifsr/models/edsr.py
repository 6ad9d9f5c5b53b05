"""EDSR without upsampler, LIIF's encoder: EDSR-baseline (16 blocks, 64 features) and
EDSR-LESS (32 features).

Module and parameter names follow LIIF's checkpoints (`head.0`, `body.{i}.body.{0,2}`) so
official weights load by name. LIIF's EDSR also holds two mean-shift convs that its
forward pass never uses; we leave them out (they are dropped when converting a LIIF
checkpoint).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

from torch import Tensor, nn

from liifsr.config import ConfigError
from liifsr.kernels import fused_conv
from liifsr.models.encoder import Encoder
from liifsr.models.registry import ENCODERS, EncoderConfig, check_positive, conv_size


@dataclass
class EDSRConfig(EncoderConfig):
    name: str = "edsr"
    n_resblocks: int = 16
    n_feats: int = 64
    res_scale: float = 1.0

    def check(self, where: str) -> None:
        check_positive(where, n_feats=self.n_feats)
        if self.n_resblocks < 0 or not math.isfinite(self.res_scale):
            raise ConfigError(f"{where}: n_resblocks must be >= 0 and res_scale finite")

    @property
    def out_dim(self) -> int:
        return self.n_feats

    def size(self, features: int) -> tuple[int, int]:
        conv = conv_size(self.n_feats, self.n_feats, 3)
        return conv_size(features, self.n_feats, 3) + (2 * self.n_resblocks + 1) * conv, 2 * self.n_resblocks + 2

    def describe(self) -> str:
        return f"EDSR ({self.n_resblocks} blocks, {self.n_feats} features)"


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class ResBlock(nn.Module):
    """EDSR residual block: conv-ReLU-conv, scaled, plus the input."""

    def __init__(self, features: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(features, features), nn.ReLU(inplace=True), conv3x3(features, features))
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        if self.res_scale == 1:  # ReLU and the skip in the convolutions' epilogues where oneDNN runs them
            first, second = cast(nn.Conv2d, self.body[0]), cast(nn.Conv2d, self.body[2])
            return fused_conv(fused_conv(x, first, relu=True), second, add=x)
        return (self.body(x) * self.res_scale).add_(x)


@ENCODERS.register("edsr", EDSRConfig)
class EDSR(Encoder):
    """EDSR body as LIIF's encoder: head conv, residual blocks, a conv, long skip."""

    def __init__(self, config: EDSRConfig, in_channels: int = 3) -> None:
        n_resblocks, n_feats, res_scale = config.n_resblocks, config.n_feats, config.res_scale
        # Every 3x3 conv widens the receptive field by one pixel on each side.
        super().__init__(out_dim=n_feats, receptive_radius=2 * n_resblocks + 2)
        self.head = nn.Sequential(conv3x3(in_channels, n_feats))
        blocks: list[nn.Module] = [ResBlock(n_feats, res_scale) for _ in range(n_resblocks)]
        blocks.append(conv3x3(n_feats, n_feats))
        self.body = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(x)
        return fused_conv(self.body[:-1](x), cast(nn.Conv2d, self.body[-1]), add=x)  # the long skip in the last convolution's epilogue
