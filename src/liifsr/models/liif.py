"""LIIF's decoder (Chen et al. 2021), with an exact fast path; the paper's presets.

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
`liifsr.reference` keeps the literal formulation this must agree with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from liifsr import coords as C
from liifsr.config import ConfigError
from liifsr.models.base import ImplicitModel, ModelConfig, register_preset
from liifsr.models.edsr import EDSRConfig
from liifsr.models.mlp import MLP
from liifsr.models.rdn import RDNConfig
from liifsr.models.registry import DECODERS, ActivationConfig, DecoderConfig, check_widths, linear_size
from liifsr.models.relu import ReLUConfig
from liifsr.models.siren import SineConfig


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
class GatheredRows:
    """The first Linear's output for N queries (a `mlp.RowSource`): the latent term
    of each query's code, gathered from `table` (the latent projection, one row per
    code) at `index`, plus the coordinate and cell terms, `terms` (N, k) @ `weight`^T;
    all in `table`'s dtype."""

    table: Tensor
    index: Tensor
    terms: Tensor
    weight: Tensor

    @property
    def dtype(self) -> torch.dtype:
        return self.table.dtype

    def __len__(self) -> int:
        return self.index.shape[0]

    def rows(self, start: int, stop: int) -> Tensor:
        return self._first_layer(self.index[start:stop], self.terms[start:stop])

    def all_rows(self) -> Tensor:
        return self._first_layer(self.index, self.terms)  # no slicing: traced graphs keep N dynamic

    def _first_layer(self, index: Tensor, terms: Tensor) -> Tensor:
        # index_select makes a fresh 2-D tensor: the in-place addmm_ needs no copy, for autograd too.
        return self.table.index_select(0, index).addmm_(terms, self.weight.t())


@DECODERS.register("liif", LIIFConfig)
class LIIF(ImplicitModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        decoder: LIIFConfig = config.decoder
        self.local_ensemble, self.global_skip = decoder.local_ensemble, decoder.global_skip
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
        # Contiguous rows, once per image: decode() gathers them chunk after chunk.
        return proj.permute(0, 2, 3, 1).contiguous()

    def decode(
        self,
        proj: Tensor,
        coord: Tensor,
        cell: Tensor | None,
        grid_hw: tuple[int, int] | None = None,
        window: tuple[int, int] = (0, 0),
        skip_image: Tensor | None = None,
        skip_window: tuple[int, int] = (0, 0),
    ) -> Tensor:
        batch, win_h, win_w, hidden = proj.shape
        grid_hw = grid_hw or (win_h, win_w)
        rows, rel_coords = C.ensemble_lookup(coord, grid_hw, window, (win_h, win_w), self.local_ensemble)

        # One MLP call for all ensemble members: B * K * Q rows of the first layer.
        members = len(rows)
        terms = [torch.cat(rel_coords, dim=1)]
        if self.config.decoder.cell_decode:
            terms.append(C.relative_cell(cell, grid_hw).repeat(1, members, 1))
        first_layer = GatheredRows(
            table=proj.reshape(-1, hidden),
            index=torch.cat(rows, dim=1).view(-1),
            # cast once here, not per block: the first layer runs in the projection's dtype
            terms=torch.cat(terms, dim=-1).view(batch * members * coord.shape[1], -1).to(proj.dtype),
            weight=self.imnet.first_linear.weight[:, self.latent_dim :].to(proj.dtype),
        )
        preds = self.imnet.after_first_linear(first_layer).view(batch, members * coord.shape[1], -1)
        out = 0
        for pred, weight in zip(preds.chunk(members, dim=1), C.ensemble_weights(rel_coords)):
            out = out + pred * weight.unsqueeze(-1)
        if self.global_skip:
            out = out + C.bilinear_sample(skip_image, coord, grid_hw, skip_window)
        return out


def _edsr_liif(n_feats: int, activation: ActivationConfig, **flags: bool) -> ModelConfig:
    return ModelConfig(EDSRConfig(n_feats=n_feats), LIIFConfig(activation=activation, **flags))


register_preset("edsr-liif-relu", _edsr_liif(64, ReLUConfig()))
register_preset("edsr-liif-siren30", _edsr_liif(64, SineConfig(w0_first=30.0, w0_hidden=30.0)))
# SIREN-15 with w0 = 15 in every sine layer (our reading of the paper) ...
register_preset("edsr-liif-siren15", _edsr_liif(64, SineConfig(w0_first=15.0, w0_hidden=15.0)))
# ... and the other reading: w0 = 15 in the first layer only, 30 after it.
register_preset("edsr-liif-siren15-first", _edsr_liif(64, SineConfig(w0_first=15.0, w0_hidden=30.0)))
register_preset("edsrless-liif-relu", _edsr_liif(32, ReLUConfig()))
register_preset("edsrless-liif-siren30", _edsr_liif(32, SineConfig(w0_first=30.0, w0_hidden=30.0)))
register_preset("rdn-liif-relu", ModelConfig(RDNConfig(), LIIFConfig()))
register_preset("edsr-liif-relu-skip", _edsr_liif(64, ReLUConfig(), global_skip=True))
