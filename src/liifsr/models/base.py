"""A super-resolution model: a registered encoder and a registered local implicit decoder.

`ModelConfig` names both parts (`encoder.name`, `decoder.name`); `build_model` builds the
decoder's model class, which holds the encoder (as LIIF's and LTE's official models do,
so their checkpoints' parameter names load as they are: `encoder.*`, `imnet.*`, ...).

Every decoder offers the same three steps, which tiled inference, ONNX export and
training use without knowing which decoder runs:
  encode(lr)              -> feature map (B, C, h, w)
  latent_projection(feat) -> a per-image table (B, h, w, D), computed once per image
  decode(table, coord, cell, grid_hw, window, ...) -> RGB (B, Q, 3)
and says how far around a query's nearest latent code it reads (`local_ensemble`,
`projection_radius`) and whether it adds an interpolation of the input (`global_skip`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from liifsr.config import ConfigError, from_dict, to_dict
from liifsr.models.edsr import EDSRConfig
from liifsr.models.registry import DECODERS, ENCODERS, DecoderConfig, EncoderConfig
from liifsr.runtime import PRECISIONS

# Fields of the configs written before encoders and decoders became registered parts.
_LEGACY_ENCODER_FIELDS = {"name", "n_resblocks", "n_feats", "res_scale", "G0", "D", "C", "G", "kernel_size"}
_LEGACY_ARCHITECTURE_FIELDS = {"edsr": {"n_resblocks", "n_feats", "res_scale"}, "rdn": {"G0", "D", "C", "G", "kernel_size"}}
_LEGACY_DECODER_FIELDS = {"activation", "hidden", "out_dim", "w0_first", "w0_hidden"}
_LEGACY_LIIF_FLAGS = ("feature_unfold", "local_ensemble", "cell_decode", "global_skip")


def _default_decoder() -> DecoderConfig:
    return DECODERS.configs["liif"]()


@dataclass
class ModelConfig:
    encoder: EncoderConfig = field(default_factory=EDSRConfig)
    decoder: DecoderConfig = field(default_factory=_default_decoder)

    @staticmethod
    def upgrade(data: dict[str, Any]) -> dict[str, Any]:
        """Read the older layout too (model files and runs written by liifsr before 0.2):
        one flat encoder mapping with every architecture's fields, LIIF's flags beside
        the encoder, and `decoder: {activation: relu | sine, w0_first, w0_hidden, ...}`."""
        data = dict(data)
        flags = {key: data.pop(key) for key in _LEGACY_LIIF_FLAGS if key in data}
        encoder = data.get("encoder")
        if isinstance(encoder, dict):
            encoder = {"name": "edsr", **encoder}
            if set(encoder) == _LEGACY_ENCODER_FIELDS and encoder["name"] in _LEGACY_ARCHITECTURE_FIELDS:
                kept = _LEGACY_ARCHITECTURE_FIELDS[encoder["name"]] | {"name"}
                encoder = {key: value for key, value in encoder.items() if key in kept}
            data["encoder"] = encoder
        decoder = data.get("decoder", {} if flags else None)
        if isinstance(decoder, dict) and decoder.get("name", "liif") == "liif":
            full_dump = set(decoder) == _LEGACY_DECODER_FIELDS  # a ReLU model's dump carries unused w0s
            decoder = {"name": "liif", **decoder, **flags}
            if decoder.get("activation") == "sine":
                w0 = {key: decoder.pop(key) for key in ("w0_first", "w0_hidden") if key in decoder}
                decoder["activation"] = {"name": "sine", **w0}
            elif full_dump:
                del decoder["w0_first"], decoder["w0_hidden"]
            data["decoder"], flags = decoder, {}
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


class ImplicitModel(nn.Module):
    """An encoder and a local implicit decoder; subclasses are the registered decoders."""

    # Does a query read the 4 latent codes around it (LIIF's local ensemble) or only the nearest?
    local_ensemble: bool = False
    # How many codes around each code `latent_projection` reads (1 for a 3x3 unfolding or conv).
    projection_radius: int = 0
    # Is an interpolation of the LR input added to the output?
    global_skip: bool = False
    # The precisions `liifsr.inference` may run it in (fp16 on CUDA only).
    precisions: tuple[str, ...] = PRECISIONS

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
        """The decoder's per-image table (B, H, W, D), from which `decode` reads its codes."""
        raise NotImplementedError

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
        """Query RGB (B, Q, 3) at `coord` (B, Q, 2) from the table `proj` (B, h, w, D).

        `grid_hw` is the size of the full latent grid (default: the window itself) and
        `window` the (row, col) of `proj`'s top-left code in it. `skip_image` is a window
        of the LR input starting at `skip_window`, needed only by models with a global skip.
        """
        raise NotImplementedError

    def forward(self, inp: Tensor, coord: Tensor, cell: Tensor | None) -> Tensor:
        """Normalised LR (B, 3, H, W), coords and cells (B, Q, 2) -> normalised RGB (B, Q, 3)."""
        proj = self.latent_projection(self.encode(inp))
        return self.decode(proj, coord, cell, skip_image=inp)

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def build_model(config: ModelConfig) -> ImplicitModel:
    """The model a config describes (its decoder's registered class), freshly initialised."""
    check_model_config(config)
    return DECODERS.builder(config.decoder.name)(config)


# --- presets ----------------------------------------------------------------------

MODEL_PRESETS: dict[str, ModelConfig] = {}


def register_preset(name: str, config: ModelConfig) -> None:
    if name in MODEL_PRESETS:
        raise ValueError(f"model preset {name!r} is registered twice")
    MODEL_PRESETS[name] = config


def model_preset(name: str) -> ModelConfig:
    if name not in MODEL_PRESETS:
        raise ConfigError(f"unknown model preset {name!r} (choose one of: {', '.join(MODEL_PRESETS)})")
    return from_dict(ModelConfig, to_dict(MODEL_PRESETS[name]))  # a copy the caller may change
