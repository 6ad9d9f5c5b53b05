"""The local implicit image function, with an exact fast decoder.

LIIF decodes a query at continuous coordinate x from a latent code z* near it:
    I(x) = sum_t  w_t * f([unfold(z)_t, (x - v_t) * (H, W), cell * (H, W)])
over the 4 nearest latent codes t (local ensemble), where unfold concatenates each
code's 3x3 neighbourhood (feature unfolding) and the cell term is cell decoding.

Fast and exact: f's first layer is linear, so its latent part
W_z . unfold(z)_t + b equals a 3x3 convolution of the feature map with W_z reshaped to
(hidden, C, 3, 3). We compute that once per image (256-d rows instead of 576-d codes
per query), find the latent codes by index arithmetic, gather their rows, add the
coordinate and cell terms, and run the rest of the MLP on all ensemble members at once;
in inference, block by block, so that a block is gathered, activated and decoded in cache.

Decoding may run on a window of the latent grid (tiled inference): coordinates and
indices stay those of the full grid, and `window` gives the window's top-left corner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liifsr import coords as C
from liifsr.config import ModelConfig
from liifsr.decoders import MLP
from liifsr.encoders import make_encoder
from liifsr.inference import upscale

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


@dataclass
class GatheredRows:
    """The first Linear's output for N queries (a `decoders.RowSource`): the latent term
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


class LIIF(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = make_encoder(config.encoder)
        latent_dim = self.encoder.out_dim * (9 if config.feature_unfold else 1)
        in_dim = latent_dim + 2 + (2 if config.cell_decode else 0)
        self.imnet = MLP(in_dim, config.decoder)
        self.latent_dim = latent_dim

    # --- encoder side ---------------------------------------------------------------

    def encode(self, inp: Tensor) -> Tensor:
        """LR image (normalised to [-1, 1]) to feature map (B, C, H, W).

        Channels-last activations: oneDNN's convolutions run on them without the
        layout reorders that NCHW tensors cost around every convolution.
        """
        return self.encoder(inp.contiguous(memory_format=torch.channels_last))

    def latent_projection(self, feat: Tensor) -> Tensor:
        """The first Linear's latent term, W_z . unfold(feat) + b, as (B, H, W, hidden).

        F.unfold orders an unfolded code as (channel, ky, kx), which is exactly the
        layout of a conv weight (hidden, C, 3, 3); unfold pads with zeros, as conv does.
        """
        first = self.imnet.first_linear
        hidden, channels = first.out_features, feat.shape[1]
        kernel = 3 if self.config.feature_unfold else 1
        weight = first.weight[:, : self.latent_dim].reshape(hidden, channels, kernel, kernel)
        proj = F.conv2d(feat, weight, first.bias, padding=kernel // 2)
        # Contiguous rows, once per image: decode() gathers them chunk after chunk.
        return proj.permute(0, 2, 3, 1).contiguous()

    # --- decoder side ---------------------------------------------------------------

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
        """Query RGB (B, Q, 3) at `coord` (B, Q, 2) from projected latents (B, h, w, hidden).

        `grid_hw` is the size of the full latent grid (default: the window itself) and
        `window` the (row, col) of `proj`'s top-left code in it. `skip_image` is a window
        of the LR input starting at `skip_window`, needed only by models with a global skip.
        """
        batch, win_h, win_w, hidden = proj.shape
        grid_hw = grid_hw or (win_h, win_w)
        offsets = C.ensemble_offsets(self.config.local_ensemble)
        eps = 1e-6 if self.config.local_ensemble else 0.0
        ys = C.pixel_centers(grid_hw[0], coord.device)
        xs = C.pixel_centers(grid_hw[1], coord.device)

        rows, rel_coords = [], []
        for vy, vx in offsets:
            query = C.shifted_query(coord, vy, vx, grid_hw, eps)
            iy = C.nearest_index(query[..., 0], grid_hw[0])
            ix = C.nearest_index(query[..., 1], grid_hw[1])
            latent_coord = torch.stack([ys[iy], xs[ix]], dim=-1)
            rel_coords.append(C.relative_coord(coord, latent_coord, grid_hw))
            rows.append((iy - window[0]) * win_w + (ix - window[1]))

        # One MLP call for all ensemble members: B * K * Q rows of the first layer.
        members = len(offsets)
        batch_offset = torch.arange(batch, device=coord.device).view(batch, 1) * (win_h * win_w)
        terms = [torch.cat(rel_coords, dim=1)]
        if self.config.cell_decode:
            terms.append(C.relative_cell(cell, grid_hw).repeat(1, members, 1))
        first_layer = GatheredRows(
            table=proj.reshape(-1, hidden),
            index=(torch.cat(rows, dim=1) + batch_offset).view(-1),
            # cast once here, not per block: the first layer runs in the projection's dtype
            terms=torch.cat(terms, dim=-1).view(batch * members * coord.shape[1], -1).to(proj.dtype),
            weight=self.imnet.first_linear.weight[:, self.latent_dim :].to(proj.dtype),
        )
        preds = self.imnet.after_first_linear(first_layer).view(batch, members * coord.shape[1], -1)
        preds = preds.chunk(members, dim=1)

        weights = C.ensemble_weights(rel_coords)
        out = 0
        for pred, weight in zip(preds, weights):
            out = out + pred * weight.unsqueeze(-1)
        if self.config.global_skip:
            out = out + C.bilinear_sample(skip_image, coord, grid_hw, skip_window)
        return out

    def forward(self, inp: Tensor, coord: Tensor, cell: Tensor | None) -> Tensor:
        """LIIF's forward: normalised LR (B, 3, H, W), coords and cells (B, Q, 2) -> (B, Q, 3)."""
        proj = self.latent_projection(self.encode(inp))
        return self.decode(proj, coord, cell, skip_image=inp)

    # --- convenience ----------------------------------------------------------------

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def upscale(
        self,
        image: "Image.Image | np.ndarray | Tensor",
        scale: float | tuple[float, float] | None = None,
        size: tuple[int, int] | None = None,
        **options: Any,
    ) -> "Image.Image | np.ndarray | Tensor":
        """Upscale a PIL image, uint8/uint16 array or float tensor in [0, 1]; see `inference.upscale`."""
        return upscale(self, image, scale=scale, size=size, **options)
