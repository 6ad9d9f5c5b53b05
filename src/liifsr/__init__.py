"""liifsr: arbitrary-scale super-resolution with local implicit image functions."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from liifsr.checkpoint import save_model
    from liifsr.checks import Fit
    from liifsr.inference import UpscaledFile, upscale, upscale_files
    from liifsr.models import LIIF, MODEL_PRESETS, ImplicitModel, ModelConfig, build_model, model_preset
    from liifsr.zoo import DEFAULT_MODEL, ModelCard, list_models, load_model

__all__ = ["DEFAULT_MODEL", "Fit", "ImplicitModel", "LIIF", "MODEL_PRESETS", "ModelCard", "ModelConfig", "UpscaledFile",
           "build_model", "list_models", "load_model", "model_preset", "save_model", "upscale", "upscale_files"]
__version__ = "0.1.0"
INTERRUPTED = "liifsr: interrupted"

# Every public name is loaded on first use, so that importing the command line (and
# `liifsr --help`) imports neither torch nor yaml.
_LAZY = {"DEFAULT_MODEL": "liifsr.zoo", "load_model": "liifsr.zoo", "list_models": "liifsr.zoo", "ModelCard": "liifsr.zoo",
         "save_model": "liifsr.checkpoint", "LIIF": "liifsr.models", "ImplicitModel": "liifsr.models",
         "MODEL_PRESETS": "liifsr.models", "ModelConfig": "liifsr.models", "build_model": "liifsr.models",
         "model_preset": "liifsr.models", "Fit": "liifsr.checks", "UpscaledFile": "liifsr.inference",
         "upscale": "liifsr.inference", "upscale_files": "liifsr.inference"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'liifsr' has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """The `liifsr` command: `liifsr.cli.main`, with Ctrl-C caught while it is imported."""
    try:
        from liifsr.cli import main as cli_main
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    return cli_main(argv)
