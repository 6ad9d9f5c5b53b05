"""A heat-field decoder after Thera Air (Becker et al., "Thera: Aliasing-Free Arbitrary-Scale
Super-Resolution with Neural Heat Fields", 2025): about 8 thousand parameters.

Each latent pixel holds a field of one hidden layer of sines over frequencies shared by the
whole model, W1 (2 x K, learned):
    Phi(x, t) = W2 . [sin(W1^T x + b1) * exp(-|W1_j|^2 kappa t)]_j
where the phases b1 (K) and output weights W2 (K x 3) of the pixel come from one 1x1
convolution of the latent map, x is the query's offset from the pixel's centre in LR
pixels, and each component is damped as heat diffusion for time t damps a sinusoid of
its frequency: t = 1 / S^2 at upscaling factor S, so a component too fine for the output
grid fades instead of aliasing; kappa is learned. A query reads only its nearest latent
pixel, and the field is added to that pixel's LR colour (Thera's b2 = the LR pixel).

Where this follows Thera and where not (README, "Models"): the field, the damping, t, the
shape of W1's initialisation (radius R pi sqrt(U), uniform angle), kappa's
(sqrt(ln 4) / (2 pi^2)), the nearest-pixel query and the skip are Thera's. Not Thera's:
R = 4 rather than 16 and W2 initialised at zero. With R = 16 only about 2 of the 32
components lie in the band that x1-x4 outputs leave undamped, the frequencies move
little in a short training (Adam steps of 1e-4), and the random W2 adds noise: the
experiment's run with Thera's initialisation did not learn (docs/results.md). The data normalisation is liifsr's ((x - 0.5) / 0.5
for all decoders, so no mean offset), an anisotropic scale uses t = 1 / (S_y S_x), and
training follows liifsr's protocol (L1 loss without Thera's total-variation term, Adam,
no gradient clipping, scales U(1, 4)); no test-time rotation ensemble.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liifsr import coords as C
from liifsr.config import ConfigError
from liifsr.models.base import ImplicitModel, ModelConfig
from liifsr.models.registry import DECODERS, DecoderConfig, check_positive, conv_size
from liifsr.models.window import Codes, LatentWindow


@dataclass
class ThermalConfig(DecoderConfig):
    name: str = "thermal"
    components: int = 32  # K, the hidden sines (Thera Air: 32)
    # W1's initial radius in pi rad per LR pixel: 4 covers the band that training's x1-x4
    # outputs pass (the Nyquist frequency of a x4 grid is 4 pi); Thera's 16 reaches x16's.
    init_scale: float = 4.0
    init_kappa: float = math.sqrt(math.log(4)) / (2 * math.pi**2)
    # Hidden channels of a context branch added to each pixel's table: a 3x3 convolution of
    # the latent map, ReLU, then a 1x1 convolution that starts at zero (so a model trained
    # without it starts as it was). 0 = none: Thera Air's 1x1 hyper-network alone.
    context: int = 0

    def check(self, where: str) -> None:
        check_positive(where, components=self.components)
        if self.context < 0:
            raise ConfigError(f"{where}.context must be >= 0 (0 = no context branch), got {self.context}")
        # A NaN or infinite initialisation makes every weight NaN from the first step on.
        for name in ("init_scale", "init_kappa"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{where}.{name} must be a finite number >= 0, got {value}")

    def size(self, features: int) -> tuple[int, int]:
        # hyper (a 1x1 convolution to W2 and b1), the frequencies W1 (2 x K) and kappa
        table = 4 * self.components
        size, layers = conv_size(features, table, 1) + 2 * self.components + 1, 1
        if self.context:
            size, layers = size + conv_size(features, self.context, 3) + conv_size(self.context, table, 1), layers + 2
        return size, layers

    def describe(self) -> str:
        context = f", 3x3 context ({self.context} channels)" if self.context else ""
        return f"heat field ({self.components} components{context}) + nearest skip"


def heat_damping(frequency_norm_sq: Tensor, kappa: Tensor, t: Tensor) -> Tensor:
    """exp(-|w_j|^2 kappa t): the factor by which heat diffusion for time t (B, Q, 1) damps
    a sinusoid of squared frequency |w_j|^2 (K), -> (B, Q, K)."""
    return torch.exp(-(t * kappa) * frequency_norm_sq)


def initial_frequencies(components: int, init_scale: float) -> Tensor:
    """W1 (2, K) at initialisation, (y, x) uniform over a disk of radius pi * init_scale.

    Drawn and computed on the CPU, also when the model is built on the meta device (to
    read its shapes, as loading a model file does): arithmetic on meta tensors runs
    PyTorch's Python reference kernels, whose first use imports torch._dynamo (over a second).
    """
    radius = math.pi * init_scale * torch.rand(components, device="cpu").sqrt()
    angle = 2 * math.pi * torch.rand(components, device="cpu")
    return torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)])


def diffusion_time(rel_cell: Tensor) -> Tensor:
    """t = 1 / (S_y S_x) from the relative cell (B, Q, 2) = 2 / S per axis -> (B, Q, 1)."""
    return (rel_cell[..., :1] * rel_cell[..., 1:]) / 4


@DECODERS.register("thermal", ThermalConfig)
class Thermal(ImplicitModel):
    local_ensemble, projection_radius, global_skip = False, 0, True

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        decoder = cast(ThermalConfig, config.decoder)  # the registry builds each decoder from its own config class
        self.components = k = decoder.components
        self.hyper = nn.Conv2d(self.encoder.out_dim, k * 3 + k, 1)  # per pixel: W2 (K x 3), then b1 (K)
        with torch.no_grad():  # W2 starts at 0: the model starts as nearest upsampling, not as noise
            self.hyper.weight[: 3 * k].zero_()
            cast(Tensor, self.hyper.bias)[: 3 * k].zero_()  # a Conv2d has a bias unless built with bias=False
        self.context: nn.Conv2d | None = None
        self.context_out: nn.Conv2d | None = None
        if decoder.context:  # each table row then reads the 3x3 latent pixels around it
            self.projection_radius = 1
            self.context = nn.Conv2d(self.encoder.out_dim, decoder.context, 3, padding=1)
            self.context_out = nn.Conv2d(decoder.context, k * 3 + k, 1)
            nn.init.zeros_(self.context_out.weight)
            nn.init.zeros_(cast(Tensor, self.context_out.bias))
        self.frequencies = nn.Parameter(initial_frequencies(k, decoder.init_scale).to(self.hyper.weight.device))  # (2, K): (y, x)
        self.kappa = nn.Parameter(torch.tensor(decoder.init_kappa))

    def latent_projection(self, feat: Tensor) -> Tensor:
        """The per-pixel table (B, h, w, 4K): W2 channel by channel (3 x K), then b1 (K).
        The convolution's outputs hold W2 component by component (K x 3): its rows are
        taken in the table's order, so that each query's sum over the K components runs
        along contiguous memory (a batch of (1 x K) @ (K x 3) products ran 3x slower)."""
        k = self.components
        order = torch.cat([torch.arange(3 * k).view(k, 3).t().reshape(-1), torch.arange(3 * k, 4 * k)])
        table = F.conv2d(feat, self.hyper.weight[order], cast(Tensor, self.hyper.bias)[order])
        if self.context is not None and self.context_out is not None:
            hidden = F.relu(self.context(feat))
            table = table + F.conv2d(hidden, self.context_out.weight[order], cast(Tensor, self.context_out.bias)[order])
        return table.permute(0, 2, 3, 1).contiguous()

    def sample_skip(self, window: LatentWindow, coord: Tensor) -> Tensor:
        return window.nearest_skip(coord)  # Thera's b2: the LR pixel the query lies in

    def decode_codes(self, window: LatentWindow, codes: Codes, cell: Tensor | None) -> Tensor:
        proj, grid_hw = window.table, window.grid_hw
        batch, width = proj.shape[0], proj.shape[-1]
        (rows,), (rel_coord,) = codes.rows, codes.rel_coords
        field = proj.reshape(-1, width).index_select(0, rows.view(-1)).view(batch, -1, width)
        weights, phases = field[..., : 3 * self.components], field[..., 3 * self.components :]
        offset = (rel_coord / 2).to(field.dtype)  # LR pixels: relative_coord counts 2 per cell
        frequencies = self.frequencies.to(field.dtype)
        rel_cell = C.relative_cell(cell, grid_hw)
        # One output grid: one damping for all queries. Decided in Python only when running
        # eagerly without gradients, so that a traced (ONNX) or compiled graph keeps the
        # general path, valid for any query count.
        inference = not (torch.is_grad_enabled() or torch.compiler.is_compiling() or torch.jit.is_tracing())
        shared_damping = inference and bool((rel_cell == rel_cell[:, :1]).all())
        if shared_damping:
            rel_cell = rel_cell[:, :1]
        damping = heat_damping(frequencies.square().sum(0), self.kappa.to(field.dtype),
                               diffusion_time(rel_cell).to(field.dtype))
        k = self.components
        waves = torch.sin(torch.addmm(phases.reshape(-1, k), offset.reshape(-1, 2), frequencies)).view(batch, -1, 1, k)
        terms = waves * weights.view(batch, -1, 3, k)  # (B, Q, 3, K): each channel's W2 times each undamped sine
        if shared_damping:  # the damped sums of all queries as one matrix-vector product
            return torch.bmm(terms.view(batch, -1, k), damping.view(batch, k, 1)).view(batch, -1, 3)
        return (terms * damping.unsqueeze(2)).sum(-1)

