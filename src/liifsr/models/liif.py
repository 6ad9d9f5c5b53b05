"""LIIF's decoder (Chen et al. 2021), with an exact fast path.

LIIF decodes a query at continuous coordinate x from a latent code z* near it:
    I(x) = sum_t  w_t * f([unfold(z)_t, (x - v_t) * (H, W), cell * (H, W)])
over the 4 nearest latent codes t (local ensemble), where unfold concatenates each
code's 3x3 neighbourhood (feature unfolding) and the cell term is cell decoding. f is an
MLP whose activation is a registered part: ReLU (LIIF) or sine (SIREN, the paper's).

Fast and exact: f's first layer is linear, so its latent part
W_z . unfold(z)_t + b equals a 3x3 convolution of the feature map with W_z reshaped to
(hidden, C, 3, 3). We compute that once per image (256-d rows instead of 576-d codes
per query), find the latent codes by index arithmetic, gather their rows, add the
coordinate and cell terms, and run the rest of the MLP on all ensemble members at once;
in inference, block by block, so that a block is gathered, activated and decoded in cache.
The lookup and the area-weighted blend are `ImplicitModel`'s.
`liifsr.reference` keeps the literal formulation this must agree with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from liifsr import coords as C
from liifsr.config import ConfigError
from liifsr.models.base import ImplicitModel, ModelConfig
from liifsr.models.mlp import MLP, GatheredRowSource
from liifsr.models.registry import DECODERS, ActivationConfig, DecoderConfig, check_widths, linear_size
from liifsr.models.relu import ReLUConfig
from liifsr.models.window import Codes, LatentWindow

# liifsr/1's decoder: `activation: relu | sine`, with the sine's w0s beside it.
_LEGACY_FIELDS = {"activation", "hidden", "out_dim", "w0_first", "w0_hidden"}
_LEGACY_FLAGS = {"feature_unfold", "local_ensemble", "cell_decode", "global_skip"}  # moved here by ModelConfig.upgrade


@dataclass
class LIIFConfig(DecoderConfig):
    """LIIF's MLP f_theta and its three options."""

    name: str = "liif"
    hidden: list[int] = field(default_factory=lambda: [256, 256, 256, 256])
    out_dim: int = 3
    activation: ActivationConfig = field(default_factory=ReLUConfig)
    feature_unfold: bool = True
    local_ensemble: bool = True
    cell_decode: bool = True
    # Not in LIIF or the paper: adds a bilinear upsampling of the input to the output
    # (as LTE does). Only the `*-skip` presets use it. Under the experiment's protocol
    # (3,600 iterations) it scored 0.02 to 0.23 dB below the same ReLU MLP without it on
    # every benchmark cell and 0.10 to 0.20 dB above it on the div2k protocol's Urban100
    # images (docs/results.md, "Decoders beyond the paper").
    global_skip: bool = False

    @staticmethod
    def upgrade(data: dict[str, Any]) -> dict[str, Any]:
        """Read liifsr/1's decoder too: `activation: sine` takes the w0s beside it into its
        mapping; a ReLU model's full dump carried unused w0s, which are dropped."""
        data = dict(data)
        if data.get("activation") == "sine":
            w0 = {key: data.pop(key) for key in ("w0_first", "w0_hidden") if key in data}
            data["activation"] = {"name": "sine", **w0}
        elif set(data) - {"name"} - _LEGACY_FLAGS == _LEGACY_FIELDS:
            del data["w0_first"], data["w0_hidden"]
        return data

    def check(self, where: str) -> None:
        check_widths(where, self.hidden)
        if self.out_dim != 3:  # every image path (reading, tiling, alpha, writing) is RGB
            raise ConfigError(f"{where}.out_dim must be 3 (liifsr decodes RGB images), got {self.out_dim}")
        self.activation.check(f"{where}.activation")

    def size(self, features: int) -> tuple[int, int]:
        in_dim = features * (9 if self.feature_unfold else 1) + 2 + (2 if self.cell_decode else 0)
        return linear_size([in_dim, *self.hidden, self.out_dim])

    def describe(self) -> str:
        return f"LIIF, {self.activation.describe()} MLP {self.hidden}" + (" + bilinear skip" if self.global_skip else "")


@dataclass
class GatheredRows(GatheredRowSource):
    """The first Linear's output for N queries: the latent term of each query's code,
    gathered from `table` (the latent projection, one row per code) at `index`, plus the
    coordinate and cell terms, `terms` (N, k) @ `weight`^T; all in `table`'s dtype."""

    table: Tensor
    index: Tensor
    terms: Tensor
    weight: Tensor

    def per_query(self) -> tuple[Tensor, ...]:
        return (self.terms,)

    def first_layer(self, index: Tensor, *per_query: Tensor) -> Tensor:
        (terms,) = per_query
        # index_select makes a fresh 2-D tensor: the in-place addmm_ needs no copy, for autograd too.
        return self.table.index_select(0, index).addmm_(terms, self.weight.t())


@DECODERS.register("liif", LIIFConfig)
class LIIF(ImplicitModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        decoder = cast(LIIFConfig, config.decoder)  # the registry builds each decoder from its own config class
        self.local_ensemble, self.global_skip, self.cell_decode = decoder.local_ensemble, decoder.global_skip, decoder.cell_decode
        self.projection_radius = 1 if decoder.feature_unfold else 0
        latent_dim = self.encoder.out_dim * (9 if decoder.feature_unfold else 1)
        in_dim = latent_dim + 2 + (2 if decoder.cell_decode else 0)
        self.imnet = MLP(in_dim, decoder.hidden, decoder.out_dim, decoder.activation)
        self.latent_dim = latent_dim

    def latent_projection(self, feat: Tensor) -> Tensor:
        """The first Linear's latent term, W_z . unfold(feat) + b, as (B, H, W, hidden).

        F.unfold orders an unfolded code as (channel, ky, kx), which is exactly the
        layout of a conv weight (hidden, C, 3, 3); unfold pads with zeros, as conv does.
        """
        first = self.imnet.first_linear
        hidden, channels = first.out_features, feat.shape[1]
        kernel = 2 * self.projection_radius + 1
        weight = first.weight[:, : self.latent_dim].reshape(hidden, channels, kernel, kernel)
        proj = F.conv2d(feat, weight, first.bias, padding=kernel // 2)
        # Contiguous rows, once per image: decoding gathers them chunk after chunk.
        return proj.permute(0, 2, 3, 1).contiguous()

    def decode_codes(self, window: LatentWindow, codes: Codes, cell: Tensor | None) -> Tensor:
        # One MLP call for all ensemble members: B * K * Q rows of the first layer.
        batch, members, queries = window.table.shape[0], len(codes), codes.rows[0].shape[1]
        terms = [torch.cat(codes.rel_coords, dim=1)]
        if self.cell_decode:
            terms.append(C.relative_cell(cell, window.grid_hw).repeat(1, members, 1))
        first_layer = GatheredRows(
            table=window.flat_table(),
            index=codes.index(),
            # cast once here, not per block: the first layer runs in the projection's dtype
            terms=torch.cat(terms, dim=-1).view(batch * members * queries, -1).to(window.table.dtype),
            weight=self.imnet.first_linear.weight[:, self.latent_dim :].to(window.table.dtype),
        )
        return self.imnet.after_first_linear(first_layer).view(batch, members * queries, -1)
