"""LTE's decoder (Lee and Jin, "Local Texture Estimator for Implicit Representation
Function", CVPR 2022): a Fourier-feature input for LIIF's ReLU MLP.

From the latent map z, two 3x3 convolutions estimate per code an amplitude map A (the
"coefficient", K channels) and a frequency map F (K channels, read as K/2 2-D
frequencies); a bias-free Linear of the relative cell gives a phase per frequency. A
query x with nearest code v (local ensemble over 4 codes, LIIF's area weights) feeds
    A(v) * [cos(pi (F(v) . delta + phase(cell))), sin(pi (F(v) . delta + phase(cell)))]
to the MLP, delta = (x - v) * (H, W) as in LIIF, and a bilinear upsampling of the LR
input is added to the output (LTE's global skip). No feature unfolding. Above x4 (LTE's
training range) the cell is that of x4, as LTE's evaluation does. The 3x3
estimators run once per image (`latent_projection`); decoding gathers their rows.

Parameter names follow LTE's code (`coef`, `freq`, `phase`, `imnet.layers.*`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liifsr import coords as C
from liifsr.config import ConfigError
from liifsr.kernels import linear
from liifsr.models.base import ImplicitModel, ModelConfig
from liifsr.models.mlp import MLP, GatheredRowSource
from liifsr.models.registry import DECODERS, DecoderConfig, check_positive, check_widths, conv_size, linear_size
from liifsr.models.relu import ReLUConfig
from liifsr.models.window import Codes, LatentWindow


@dataclass
class LTEConfig(DecoderConfig):
    name: str = "lte"
    channels: int = 256  # K: amplitude channels = frequency channels = the MLP's input width
    hidden: list[int] = field(default_factory=lambda: [256, 256, 256])
    # LTE's evaluation feeds scales above its training range the cell of the largest one
    # (test.py: cell * max(scale / scale_max, 1)); 0 = the true cell at every scale.
    cell_clip_scale: float = 4.0

    def check(self, where: str) -> None:
        check_positive(where, channels=self.channels)
        if not (math.isfinite(self.cell_clip_scale) and self.cell_clip_scale >= 0):
            raise ConfigError(f"{where}.cell_clip_scale must be >= 0 (0 = no clipping), got {self.cell_clip_scale}")
        if self.channels % 2:
            raise ConfigError(f"{where}.channels must be even (2-D frequencies), got {self.channels}")
        check_widths(where, self.hidden)

    def size(self, features: int) -> tuple[int, int]:
        mlp, layers = linear_size([self.channels, *self.hidden, 3])
        # coef and freq (3x3 convolutions), phase (a bias-free Linear of the cell), the MLP
        return 2 * conv_size(features, self.channels, 3) + 2 * (self.channels // 2) + mlp, 3 + layers

    def describe(self) -> str:
        return f"LTE ({self.channels} channels), ReLU MLP {self.hidden} + bilinear skip"


def fourier_input(amplitude: Tensor, frequency: Tensor, rel_coord: Tensor, phase: Tensor) -> Tensor:
    """A * [cos(pi s), sin(pi s)], s = F . delta + phase: LTE's MLP input (N, K).

    `frequency` (N, K) holds K/2 frequencies as channel pairs (2k, 2k+1) = (f_y, f_x),
    `rel_coord` (N, 2) is delta = (dy, dx), `phase` (N, K/2).
    """
    s = torch.addcmul(phase, frequency[:, 0::2], rel_coord[:, :1]).addcmul_(frequency[:, 1::2], rel_coord[:, 1:])
    s = s.mul_(math.pi)
    return amplitude * torch.cat([torch.cos(s), torch.sin(s)], dim=-1)


@dataclass
class FourierRows(GatheredRowSource):
    """The MLP's first Linear applied to LTE's input for N queries: amplitude and
    frequency rows gathered from `table` at `index`, each query's relative coordinate
    and phase, then `weight`, `bias`; all in `table`'s dtype."""

    table: Tensor  # (codes, 2K): amplitude channels, then frequency channels
    index: Tensor
    rel_coord: Tensor
    phase: Tensor
    weight: Tensor
    bias: Tensor

    def per_query(self) -> tuple[Tensor, ...]:
        return self.rel_coord, self.phase

    def first_layer(self, index: Tensor, *per_query: Tensor) -> Tensor:
        rel_coord, phase = per_query
        amplitude, frequency = self.table.index_select(0, index).chunk(2, dim=-1)
        inputs = fourier_input(amplitude, frequency, rel_coord, phase)
        if torch.is_grad_enabled():  # the fused oneDNN Linear has no backward
            return F.linear(inputs, self.weight, self.bias)
        return linear(inputs, self.weight, self.bias)


@DECODERS.register("lte", LTEConfig)
class LTE(ImplicitModel):
    local_ensemble, projection_radius, global_skip = True, 1, True

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        decoder = cast(LTEConfig, config.decoder)  # the registry builds each decoder from its own config class
        self.cell_clip_scale = decoder.cell_clip_scale
        channels, features = decoder.channels, self.encoder.out_dim
        self.coef = nn.Conv2d(features, channels, 3, padding=1)
        self.freq = nn.Conv2d(features, channels, 3, padding=1)
        self.phase = nn.Linear(2, channels // 2, bias=False)
        self.imnet = MLP(channels, decoder.hidden, 3, ReLUConfig())

    def latent_projection(self, feat: Tensor) -> Tensor:
        """Amplitude and frequency maps side by side, (B, H, W, 2K) rows for the gather."""
        return torch.cat([self.coef(feat), self.freq(feat)], dim=1).permute(0, 2, 3, 1).contiguous()

    def decode_codes(self, window: LatentWindow, codes: Codes, cell: Tensor | None) -> Tensor:
        batch, members, queries = window.table.shape[0], len(codes), codes.rows[0].shape[1]
        dtype = window.table.dtype
        rel_cell = C.relative_cell(cell, window.grid_hw)  # 2 / scale per axis
        if self.cell_clip_scale:
            rel_cell = rel_cell.clamp(min=2 / self.cell_clip_scale)
        phase = self.phase(rel_cell.to(self.phase.weight.dtype))  # (B, Q, K/2), once for all members
        first = self.imnet.first_linear
        first_layer = FourierRows(
            table=window.flat_table(),
            index=codes.index(),
            rel_coord=torch.cat(codes.rel_coords, dim=1).reshape(-1, 2).to(dtype),
            phase=phase.to(dtype).repeat(1, members, 1).reshape(batch * members * queries, -1),
            weight=first.weight.to(dtype),
            bias=first.bias.to(dtype),
        )
        return self.imnet.after_first_linear(first_layer).view(batch, members * queries, -1)
