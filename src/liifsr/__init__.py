"""liifsr: arbitrary-scale super-resolution with local implicit image functions."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from liifsr.checkpoint import DEFAULT_MODEL, load_model, save_model
    from liifsr.config import MODEL_PRESETS, ModelConfig, model_preset
    from liifsr.inference import Fit, UpscaledFile, upscale_files
    from liifsr.liif import LIIF

__all__ = ["DEFAULT_MODEL", "Fit", "LIIF", "MODEL_PRESETS", "ModelConfig", "UpscaledFile", "load_model", "model_preset",
           "save_model", "upscale_files"]
__version__ = "0.1.0"
INTERRUPTED = "liifsr: interrupted"

# Every public name is loaded on first use, so that importing the command line (and
# `liifsr --help`) imports neither torch nor yaml.
_LAZY = {"DEFAULT_MODEL": "liifsr.checkpoint", "load_model": "liifsr.checkpoint", "save_model": "liifsr.checkpoint",
         "LIIF": "liifsr.liif", "MODEL_PRESETS": "liifsr.config", "ModelConfig": "liifsr.config",
         "model_preset": "liifsr.config", "Fit": "liifsr.inference", "UpscaledFile": "liifsr.inference",
         "upscale_files": "liifsr.inference"}


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
