"""A super-resolution model: a registered encoder and a registered local implicit decoder.

`ModelConfig` names both parts (`encoder.name`, `decoder.name`); `build_model` builds the
decoder's model class, which holds the encoder (as LIIF's and LTE's official models do,
so their checkpoints' parameter names load as they are: `encoder.*`, `imnet.*`, ...).

`ImplicitModel` is the decoding contract of `models.window` (`Decoder`) run by PyTorch:
it encodes, and it looks up the codes that vote for each query, blends their predictions
(LIIF's local ensemble) and adds the skip; a decoder module gives the rest: its latent
projection (a per-image table, computed once per image) and its prediction from the
codes (`decode_codes`), and declares how far around a query's nearest code it reads
(`local_ensemble`, `projection_radius`) and whether it adds the LR input (`global_skip`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from liifsr.config import ConfigError
from liifsr.models.registry import DECODERS, ENCODERS, DecoderConfig, EncoderConfig
from liifsr.models.window import Codes, Decoder, LatentWindow
from liifsr.runtime import PRECISIONS

# liifsr/1 kept LIIF's flags beside the encoder, at the top of the model config.
_LEGACY_LIIF_FLAGS = ("feature_unfold", "local_ensemble", "cell_decode", "global_skip")


def _default_encoder() -> EncoderConfig:
    return ENCODERS.configs["edsr"]()


def _default_decoder() -> DecoderConfig:
    return DECODERS.configs["liif"]()


@dataclass
class ModelConfig:
    encoder: EncoderConfig = field(default_factory=_default_encoder)
    decoder: DecoderConfig = field(default_factory=_default_decoder)

    @staticmethod
    def upgrade(data: dict[str, Any]) -> dict[str, Any]:
        """Read the older layout too (model files and runs written by liifsr before 0.2):
        an encoder without a name is EDSR, a decoder without one LIIF, and LIIF's flags at
        the top go into its decoder. The parts upgrade their own older fields
        (`EncoderConfig.upgrade`, `LIIFConfig.upgrade`)."""
        data = dict(data)
        flags = {key: data.pop(key) for key in _LEGACY_LIIF_FLAGS if key in data}
        if isinstance(data.get("encoder"), dict):
            data["encoder"] = {"name": "edsr", **data["encoder"]}
        decoder = data.get("decoder", {} if flags else None)
        if isinstance(decoder, dict) and decoder.get("name", "liif") == "liif":
            data["decoder"], flags = {"name": "liif", **decoder, **flags}, {}
        data.update(flags)  # not LIIF's: left for the schema to refuse
        return data

    def describe(self) -> str:
        return f"{self.encoder.describe()} + {self.decoder.describe()}"


# What a config may declare: counted from the config alone (`PartConfig.size`), before
# anything is built, so that a small file declaring a million residual blocks or 200,000
# decoder layers is refused at once instead of being built (even on the meta device,
# building costs memory and time per module). LIIF's largest model (EDSR with 32 blocks of
# 256 features) has 43 million parameters and 66 layers.
MAX_PARAMETERS = 10**9
MAX_LAYERS = 1000


def check_model_config(config: ModelConfig, where: str = "model") -> None:
    """Refuse sizes and values no model can be built from (before anything is allocated),
    and models beyond MAX_PARAMETERS parameters or MAX_LAYERS weight layers."""
    config.encoder.check(f"{where}.encoder")
    config.decoder.check(f"{where}.decoder")
    encoder_parameters, encoder_layers = config.encoder.size(3)
    decoder_parameters, decoder_layers = config.decoder.size(config.encoder.out_dim)
    parameters, layers = encoder_parameters + decoder_parameters, encoder_layers + decoder_layers
    if layers > MAX_LAYERS:
        raise ConfigError(f"{where}: the config declares {layers:,} weight layers, more than the {MAX_LAYERS:,} liifsr "
                          "builds (check encoder.n_resblocks, encoder.D and encoder.C, decoder.hidden)")
    if parameters > MAX_PARAMETERS:
        raise ConfigError(f"{where}: the config declares {parameters:.3g} parameters, more than the {MAX_PARAMETERS:.0e} "
                          "liifsr builds (check the widths: encoder.n_feats or G0 and G, decoder.hidden, channels)")


class ImplicitModel(Decoder, nn.Module):
    """An encoder and a local implicit decoder; subclasses are the registered decoders."""

    # The precisions `liifsr.inference` may run it in (fp16 on CUDA only), and those
    # `--precision auto` may pick (a model file's `auto_precisions` metadata narrows them: `checkpoint.AUTO_PRECISIONS_KEY`).
    precisions: tuple[str, ...] = PRECISIONS
    auto_precisions: tuple[str, ...] = PRECISIONS

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ENCODERS.build(config.encoder)

    def encode(self, inp: Tensor) -> Tensor:
        """LR image (normalised to [-1, 1]) to feature map (B, C, H, W).

        Channels-last activations: oneDNN's convolutions run on them without the
        layout reorders that NCHW tensors cost around every convolution.
        """
        return self.encoder(inp.contiguous(memory_format=torch.channels_last))

    def latent_projection(self, feat: Tensor) -> Tensor:
        """The decoder's per-image table (B, H, W, D), from which `decode_codes` reads its codes."""
        raise NotImplementedError

    def decode_codes(self, window: LatentWindow, codes: Codes, cell: Tensor | None) -> Tensor:
        """Each ensemble member's prediction from its code (B, K * Q, 3), members one after
        another in `codes`' order; `codes.rows` index `window.flat_table()`."""
        raise NotImplementedError

    def sample_skip(self, window: LatentWindow, coord: Tensor) -> Tensor:
        """The interpolation of the LR input that a global skip adds: bilinear (LTE's)."""
        return window.bilinear_skip(coord)

    def decode_window(self, window: LatentWindow, coord: Tensor, cell: Tensor | None) -> Tensor:
        """Normalised RGB (B, Q, 3) at `coord` (B, Q, 2), read from `window`."""
        codes = window.lookup(coord, self.local_ensemble)
        out = codes.blend(self.decode_codes(window, codes, cell))
        if self.global_skip:
            out = out + self.sample_skip(window, coord)
        return out

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def build_model(config: ModelConfig) -> ImplicitModel:
    """The model a config describes (its decoder's registered class), freshly initialised."""
    check_model_config(config)
    return DECODERS.builder(config.decoder.name)(config)
