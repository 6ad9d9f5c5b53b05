"""Feature encoders: EDSR without upsampler (baseline and LESS) and LIIF's RDN.

Module and parameter names follow LIIF's checkpoints (`head.0`, `body.{i}.body.{0,2}`,
`SFENet1`, `RDBs.{i}.convs.{c}.conv.0`, ...) so official weights load by name. LIIF's
EDSR also holds two mean-shift convs that its forward pass never uses; we leave them
out (they are dropped when converting a LIIF checkpoint).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from liifsr.config import EncoderConfig
from liifsr.kernels import fused_conv


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
            return fused_conv(fused_conv(x, self.body[0], relu=True), self.body[2], add=x)
        return (self.body(x) * self.res_scale).add_(x)


class EDSR(nn.Module):
    """EDSR body as LIIF's encoder: head conv, residual blocks, a conv, long skip."""

    def __init__(self, n_resblocks: int = 16, n_feats: int = 64, res_scale: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        self.head = nn.Sequential(conv3x3(in_channels, n_feats))
        blocks: list[nn.Module] = [ResBlock(n_feats, res_scale) for _ in range(n_resblocks)]
        blocks.append(conv3x3(n_feats, n_feats))
        self.body = nn.Sequential(*blocks)
        self.out_dim = n_feats
        # Every 3x3 conv widens the receptive field by one pixel on each side.
        self.receptive_radius = 2 * n_resblocks + 2

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(x)
        return fused_conv(self.body[:-1](x), self.body[-1], add=x)  # the long skip in the last convolution's epilogue


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


class RDN(nn.Module):
    """RDN without upsampler, as in LIIF (configuration B: G0 64, D 16, C 8, G 64)."""

    def __init__(self, G0: int = 64, D: int = 16, C: int = 8, G: int = 64, kernel_size: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.SFENet1 = nn.Conv2d(in_channels, G0, kernel_size, padding=pad)
        self.SFENet2 = nn.Conv2d(G0, G0, kernel_size, padding=pad)
        self.RDBs = nn.ModuleList([RDB(G0, G, C, kernel_size) for _ in range(D)])
        self.GFF = nn.Sequential(nn.Conv2d(D * G0, G0, 1), nn.Conv2d(G0, G0, kernel_size, padding=pad))
        self.out_dim = G0
        self.receptive_radius = pad * (2 + D * C + 1)

    def forward(self, x: Tensor) -> Tensor:
        f1 = self.SFENet1(x)
        x = self.SFENet2(f1)
        block_outputs = []
        for block in self.RDBs:
            x = block(x)
            block_outputs.append(x)
        return self.GFF(torch.cat(block_outputs, dim=1)) + f1


def make_encoder(config: EncoderConfig) -> nn.Module:
    if config.name == "edsr":
        return EDSR(config.n_resblocks, config.n_feats, config.res_scale)
    if config.name == "rdn":
        return RDN(config.G0, config.D, config.C, config.G, config.kernel_size)
    raise ValueError(f"unknown encoder {config.name!r} (choose 'edsr' or 'rdn')")
