"""liifsr: arbitrary-scale super-resolution with local implicit image functions."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from liifsr.config import MODEL_PRESETS, ModelConfig, model_preset

if TYPE_CHECKING:
    from liifsr.checkpoint import DEFAULT_MODEL, load_model, save_model
    from liifsr.liif import LIIF

__all__ = ["DEFAULT_MODEL", "LIIF", "MODEL_PRESETS", "ModelConfig", "load_model", "model_preset", "save_model"]
__version__ = "0.1.0"

# Names whose modules import torch: loaded on first use, so that `liifsr --help` stays fast.
_LAZY = {"DEFAULT_MODEL": "liifsr.checkpoint", "load_model": "liifsr.checkpoint", "save_model": "liifsr.checkpoint",
         "LIIF": "liifsr.liif"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'liifsr' has no attribute {name!r}")
