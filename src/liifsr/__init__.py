"""liifsr: arbitrary-scale super-resolution with local implicit image functions."""

from liifsr.checkpoint import DEFAULT_MODEL, load_model, save_model
from liifsr.config import MODEL_PRESETS, ModelConfig, model_preset
from liifsr.liif import LIIF

__all__ = ["DEFAULT_MODEL", "LIIF", "MODEL_PRESETS", "ModelConfig", "load_model", "model_preset", "save_model"]
__version__ = "0.1.0"
