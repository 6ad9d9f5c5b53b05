"""The models: registered encoders, decoders and MLP activations, and presets.

    registry.py   the three registries and their config base classes
    encoder.py    Encoder, what every encoder declares (out_dim, receptive_radius)
    window.py     the decoding contract: LatentWindow, encode_window, Decoder
    base.py       ModelConfig, ImplicitModel (lookup, local ensemble, skip), build_model
    edsr.py, rdn.py               encoders
    mlp.py                        the decoder MLP and its cache-blocked fast path
    relu.py, siren.py             MLP activations (LIIF's ReLU, SIREN's sine)
    liif.py, lte.py, thermal.py   decoders: LIIF's, LTE's, a heat field after Thera Air
    presets.py                    the named presets (the one module that imports both
                                  encoders and decoders)

A new part is one module here: every module of this package is imported below, so its
`@register` call takes effect with nothing else to edit (and a new decoder has a preset,
`edsr-NAME`).
"""

from __future__ import annotations

import importlib
import pkgutil

from liifsr.models.base import ImplicitModel, ModelConfig, build_model, check_model_config
from liifsr.models.encoder import Encoder
from liifsr.models.registry import ACTIVATIONS, DECODERS, ENCODERS

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda module: module.name):
    importlib.import_module(f"{__name__}.{_module.name}")

from liifsr.models.liif import LIIF  # noqa: E402  (after the registrations it relies on)
from liifsr.models.presets import MODEL_PRESETS, model_preset  # noqa: E402

__all__ = ["ACTIVATIONS", "DECODERS", "ENCODERS", "LIIF", "MODEL_PRESETS", "Encoder", "ImplicitModel", "ModelConfig",
           "build_model", "check_model_config", "model_preset"]
