"""`liifsr export MODEL OUT.onnx`: a model as two ONNX graphs for onnxruntime (`liifsr.onnx_export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from liifsr.checks import UpscaleError
from liifsr.models import ImplicitModel
from liifsr.onnx_export import OPSET, OPSETS, check_opset, export_onnx
from liifsr.zoo import DEFAULT_MODEL, load_model


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=f"bundled model name (e.g. {DEFAULT_MODEL}) or model file (.safetensors, LIIF .pth)")
    parser.add_argument("output", type=Path, help="encoder file OUT.onnx; the decoder goes to OUT.decoder.onnx beside it")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset, {OPSETS.start} to {OPSETS.stop - 1} (default: {OPSET})")


def run(args: argparse.Namespace) -> int:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UpscaleError("`liifsr export` needs the onnx package: pip install 'liifsr[onnx]'") from None
    check_opset(args.opset)  # before the model loads
    model = load_model(args.model)
    if not isinstance(model, ImplicitModel):
        raise UpscaleError(f"'{args.model}' is an ONNX export already: export the model file it came from")
    encoder, decoder = export_onnx(model, args.output, args.opset)
    print(f"{args.model} -> {encoder} (encoder + latent projection), {decoder} (decoder)")
    return 0
