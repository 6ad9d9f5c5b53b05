"""`liifsr export`: a model as two ONNX graphs, run by `liifsr.onnx_runtime` or any ONNX runtime.

`export_onnx(model, "out.onnx")` writes
- `out.onnx`, the encoder with the latent projection: normalised LR `inp` (1, 3, H, W)
  -> `proj` (1, H, W, hidden), the first Linear's latent term for every code (see
  `LIIF.latent_projection`); H and W are dynamic;
- `out.decoder.onnx`, LIIF's fast decoder (`LIIF.decode`) traced as is: `proj` (a window
  (1, h, w, hidden) of the projection), `coord` and `cell` (1, Q, 2), `grid_hw` (the
  full latent grid's size) and `window` (the window's top-left code), both int64 (2,),
  and for models with a global skip `skip` (the LR window (1, 3, h', w') starting at
  `skip_window`) -> `rgb` (1, Q, 3) in normalised space. The nearest codes are found by
  index arithmetic and gathered (Gather), not by grid_sample; Q, h, w are dynamic.

Both files carry the model config as JSON (`liifsr_config`) in their metadata, so
`liifsr upscale --model out.onnx` rebuilds the same tiling and chunking as PyTorch.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from liifsr import coords as C
from liifsr.zoo import DEFAULT_MODEL, load_model
from liifsr.config import to_dict
from liifsr.files import atomic_write
from liifsr.checks import UpscaleError
from liifsr.models import ImplicitModel

OPSET = 17
# The opsets whose graphs onnxruntime runs for every decoder: the decoders' in-place index
# writes export from 11, but at 11 onnxruntime refuses every decoder graph (the index
# arithmetic's Clip on int64, which Clip takes from opset 12), so 12; 20 is the TorchScript-based
# exporter's last (torch.onnx._constants). tests/test_onnx_export.py runs both ends.
OPSETS = range(12, 21)
# Example sizes for tracing: unequal and odd, so that no size is mistaken for another.
_EXAMPLE_LR = (13, 17)
_EXAMPLE_WINDOW = (2, 3, 9, 11)  # row, col, height, width of the latent window


class EncoderGraph(nn.Module):
    """Normalised LR -> projected latents (1, H, W, hidden)."""

    def __init__(self, model: ImplicitModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, inp: Tensor) -> Tensor:
        return self.model.latent_projection(self.model.encode(inp))


class DecoderGraph(nn.Module):
    """`LIIF.decode` with the grid size and window corners as tensors, so they stay dynamic."""

    def __init__(self, model: ImplicitModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, proj: Tensor, coord: Tensor, cell: Tensor, grid_hw: Tensor, window: Tensor, *skip: Tensor) -> Tensor:
        skip_image, skip_window = (skip[0], (skip[1][0], skip[1][1])) if skip else (None, (0, 0))
        return self.model.decode(
            proj, coord, cell, (grid_hw[0], grid_hw[1]), (window[0], window[1]), skip_image=skip_image, skip_window=skip_window
        )


def decoder_path(encoder_path: str | Path) -> Path:
    """`out.onnx` -> `out.decoder.onnx`, the decoder graph written beside it."""
    path = Path(encoder_path)
    return path.with_name(path.stem + ".decoder.onnx")


def export_onnx(model: ImplicitModel, path: str | Path, opset: int = OPSET) -> tuple[Path, Path]:
    """Write `path` (encoder + projection) and `decoder_path(path)`; returns both paths."""
    path = Path(path)
    check_opset(opset)
    if path.suffix != ".onnx":
        raise UpscaleError(f"output '{path}' must end in .onnx")
    if not path.parent.is_dir():
        raise UpscaleError(f"folder '{path.parent}' does not exist (create it first)")
    model = model.float().cpu().eval()
    config = json.dumps(to_dict(model.config))
    dec_path = decoder_path(path)
    lr = torch.rand(1, 3, *_EXAMPLE_LR) * 2 - 1
    row, col, height, width = _EXAMPLE_WINDOW
    with torch.no_grad():
        proj = EncoderGraph(model)(lr)
    # Queries near the window's middle codes, so that every code they read lies in the window.
    centres = C.make_coord(_EXAMPLE_LR).view(*_EXAMPLE_LR, 2)[row + 2 : row + height - 2, col + 2 : col + width - 2]
    jitter = (torch.rand_like(centres) - 0.5) * 0.8 * torch.tensor([2 / _EXAMPLE_LR[0], 2 / _EXAMPLE_LR[1]])
    coord = (centres + jitter).view(1, -1, 2)
    cell = C.cell_size((50, 60)).expand(1, coord.shape[1], 2)
    decoder_inputs = [proj[:, row : row + height, col : col + width].contiguous(), coord, cell, torch.tensor(_EXAMPLE_LR), torch.tensor([row, col])]
    names = ["proj", "coord", "cell", "grid_hw", "window"]
    axes = {"proj": {1: "h", 2: "w"}, "coord": {1: "queries"}, "cell": {1: "queries"}, "rgb": {1: "queries"}}
    if model.global_skip:
        decoder_inputs += [lr[:, :, row : row + height, col : col + width], torch.tensor([row, col])]
        names += ["skip", "skip_window"]
        axes["skip"] = {2: "skip_h", 3: "skip_w"}
    metadata = {"liifsr_config": config, "liifsr_receptive_radius": str(model.encoder.receptive_radius)}
    # Both files or neither: the decoder is renamed into place, then the encoder.
    with atomic_write(path) as encoder_tmp, atomic_write(dec_path) as decoder_tmp:
        _export(EncoderGraph(model), (lr,), encoder_tmp, ["inp"], ["proj"],
                {"inp": {2: "height", 3: "width"}, "proj": {1: "height", 2: "width"}},
                opset, {**metadata, "liifsr_role": "encoder", "liifsr_decoder": dec_path.name})
        _export(DecoderGraph(model), tuple(decoder_inputs), decoder_tmp, names, ["rgb"], axes, opset,
                {**metadata, "liifsr_role": "decoder"})
    return path, dec_path


def check_opset(opset: int) -> None:
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise UpscaleError(f"ONNX opset {opset!r} is not supported (choose {OPSETS.start} to {OPSETS.stop - 1}; default {OPSET})")


def _export(module: nn.Module, args: tuple, tmp: Path, inputs: list[str], outputs: list[str], axes: dict, opset: int,
            metadata: dict[str, str]) -> None:
    """Export `module` into the temporary file `tmp` of an atomic write."""
    import onnx

    with warnings.catch_warnings():
        # The TorchScript-based exporter traces LIIF.decode's index arithmetic as is; the
        # torch.export-based one would need it rewritten. Its deprecation notice is noise here.
        warnings.simplefilter("ignore", DeprecationWarning)
        with torch.no_grad():
            torch.onnx.export(module, args, str(tmp), input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
        graph = onnx.load(str(tmp))
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(tmp))


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
    encoder, decoder = export_onnx(load_model(args.model), args.output, args.opset)
    print(f"{args.model} -> {encoder} (encoder + latent projection), {decoder} (decoder)")
    return 0
