"""The literal LIIF formulation (Chen et al. 2021, Sec. 3), kept as the reference.

It follows the paper and the official code step by step: unfold the feature map into
576-d codes, look up the nearest codes with grid_sample over a coordinate map, build
the full MLP input for every ensemble member and run the whole MLP four times. The fast
decoder in `liifsr.models.liif` must agree with it (tests/models/test_liif.py); the benchmarks in
`benchmarks/` time both. It is part of the package so that tests, benchmarks and users
can import it, but nothing in liifsr itself runs it. It deliberately keeps LIIF's own
arithmetic (`2 / h / 2`, grid_sample) rather than the helpers of `liifsr.coords`.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor

from liifsr.coords import make_coord
from liifsr.models import LIIF
from liifsr.models.liif import LIIFConfig
from liifsr.models.lte import LTE


def literal_query(model: LIIF, inp: Tensor, coord: Tensor, cell: Tensor | None, feat: Tensor | None = None) -> Tensor:
    """LIIF's forward; pass `feat` = model.encode(inp) to query in chunks as LIIF's batched_predict does."""
    config = cast(LIIFConfig, model.config.decoder)  # the registry builds LIIF from LIIFConfig
    feat = model.encode(inp) if feat is None else feat
    if config.feature_unfold:
        feat = F.unfold(feat, 3, padding=1).view(feat.shape[0], feat.shape[1] * 9, *feat.shape[-2:])
    if config.local_ensemble:
        shifts, eps = [-1, 1], 1e-6
    else:
        shifts, eps = [0], 0.0
    h, w = feat.shape[-2:]
    ry, rx = 2 / h / 2, 2 / w / 2
    feat_coord = make_coord((h, w), inp.device).view(h, w, 2).permute(2, 0, 1).unsqueeze(0)
    feat_coord = feat_coord.expand(feat.shape[0], 2, h, w)

    preds, areas = [], []
    for vy in shifts:
        for vx in shifts:
            query = coord.clone()
            query[:, :, 0] += vy * ry + eps
            query[:, :, 1] += vx * rx + eps
            query.clamp_(-1 + 1e-6, 1 - 1e-6)
            grid = query.flip(-1).unsqueeze(1)
            q_feat = F.grid_sample(feat, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
            q_coord = F.grid_sample(feat_coord, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
            rel_coord = coord - q_coord
            rel_coord[:, :, 0] *= h
            rel_coord[:, :, 1] *= w
            mlp_in = torch.cat([q_feat, rel_coord], dim=-1)
            if config.cell_decode:
                if cell is None:
                    raise ValueError("this model decodes the cell size: pass `cell`")
                rel_cell = cell.clone()
                rel_cell[:, :, 0] *= h
                rel_cell[:, :, 1] *= w
                mlp_in = torch.cat([mlp_in, rel_cell], dim=-1)
            batch, queries = coord.shape[:2]
            preds.append(model.imnet(mlp_in.view(batch * queries, -1)).view(batch, queries, -1))
            areas.append(torch.abs(rel_coord[:, :, 0] * rel_coord[:, :, 1]) + 1e-9)

    total = torch.stack(areas).sum(dim=0)
    if config.local_ensemble:
        areas = [areas[3], areas[2], areas[1], areas[0]]
    out = preds[0] * (areas[0] / total).unsqueeze(-1)
    for pred, area in zip(preds[1:], areas[1:]):
        out = out + pred * (area / total).unsqueeze(-1)
    if config.global_skip:
        skip = F.grid_sample(inp, coord.flip(-1).unsqueeze(1), mode="bilinear", padding_mode="border", align_corners=False)
        out = out + skip[:, :, 0, :].permute(0, 2, 1)
    return out


def literal_lte(model: LTE, inp: Tensor, coord: Tensor, cell: Tensor) -> Tensor:
    """LTE's query_rgb (Lee and Jin 2022) step by step: grid_sample lookups of the amplitude
    and frequency maps, channel pairs as 2-D frequencies, the cell's phase, cos and sin
    of pi times the phase, the whole MLP per ensemble member, LIIF's area weights, and
    the bilinear skip by grid_sample."""
    feat = model.encode(inp)
    coef, freq = model.coef(feat), model.freq(feat)
    h, w = feat.shape[-2:]
    ry, rx = 2 / h / 2, 2 / w / 2
    feat_coord = make_coord((h, w), inp.device).view(h, w, 2).permute(2, 0, 1).unsqueeze(0).expand(feat.shape[0], 2, h, w)
    batch, queries = coord.shape[:2]
    preds, areas = [], []
    for vy in (-1, 1):
        for vx in (-1, 1):
            query = coord.clone()
            query[:, :, 0] += vy * ry + 1e-6
            query[:, :, 1] += vx * rx + 1e-6
            query.clamp_(-1 + 1e-6, 1 - 1e-6)
            grid = query.flip(-1).unsqueeze(1)
            q_coef = F.grid_sample(coef, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
            q_freq = F.grid_sample(freq, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
            q_coord = F.grid_sample(feat_coord, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
            rel_coord = coord - q_coord
            rel_coord[:, :, 0] *= h
            rel_coord[:, :, 1] *= w
            scale = 2 / (cell * torch.tensor([h, w]))  # per axis; LTE's test.py: cell * max(scale / 4, 1)
            rel_cell = cell * torch.clamp(scale / model.cell_clip_scale, min=1)
            rel_cell[:, :, 0] *= h
            rel_cell[:, :, 1] *= w
            q_freq = torch.stack(torch.split(q_freq, 2, dim=-1), dim=-1)  # (B, Q, 2, K/2)
            q_freq = torch.sum(q_freq * rel_coord.unsqueeze(-1), dim=-2)
            q_freq = q_freq + model.phase(rel_cell.view(batch * queries, -1)).view(batch, queries, -1)
            q_freq = torch.cat([torch.cos(torch.pi * q_freq), torch.sin(torch.pi * q_freq)], dim=-1)
            preds.append(model.imnet((q_coef * q_freq).reshape(batch * queries, -1)).view(batch, queries, -1))
            areas.append(torch.abs(rel_coord[:, :, 0] * rel_coord[:, :, 1]) + 1e-9)
    total = torch.stack(areas).sum(dim=0)
    areas = [areas[3], areas[2], areas[1], areas[0]]
    out = sum(pred * (area / total).unsqueeze(-1) for pred, area in zip(preds, areas))
    skip = F.grid_sample(inp, coord.flip(-1).unsqueeze(1), mode="bilinear", padding_mode="border", align_corners=False)
    return out + skip[:, :, 0, :].permute(0, 2, 1)
