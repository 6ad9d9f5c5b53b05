"""The models: registered encoders, decoders and MLP activations, and presets.

    registry.py   the three registries and their config base classes
    base.py       ModelConfig, the ImplicitModel interface every decoder offers, presets
    edsr.py, rdn.py               encoders
    mlp.py                        the decoder MLP and its cache-blocked fast path
    relu.py, siren.py             MLP activations (LIIF's ReLU, SIREN's sine)
    liif.py                       LIIF's decoder and the paper's presets
    lte.py, thermal.py            LTE's decoder; a heat-field decoder after Thera Air

A new part is one module here: every module of this package is imported below, so its
`@register` and `register_preset` calls take effect with nothing else to edit.
"""

from __future__ import annotations

import importlib
import pkgutil

from liifsr.models.base import MODEL_PRESETS, ImplicitModel, ModelConfig, build_model, check_model_config, model_preset
from liifsr.models.registry import ACTIVATIONS, DECODERS, ENCODERS

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda module: module.name):
    importlib.import_module(f"{__name__}.{_module.name}")

from liifsr.models.liif import LIIF  # noqa: E402  (after the registrations it relies on)

__all__ = ["ACTIVATIONS", "DECODERS", "ENCODERS", "LIIF", "MODEL_PRESETS", "ImplicitModel", "ModelConfig", "build_model",
           "check_model_config", "model_preset"]
