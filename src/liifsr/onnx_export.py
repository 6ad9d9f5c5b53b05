"""A model as two ONNX graphs (`liifsr export`), run by `liifsr.onnx_runtime` or any ONNX runtime.

`export_onnx(model, "out.onnx")` writes
- `out.onnx`, the encoder with the latent projection: normalised LR `inp` (1, 3, H, W)
  -> `proj` (1, H, W, D), the decoder's latent table (for LIIF, the first Linear's latent
  term for every code: `LIIF.latent_projection`); H and W are dynamic;
- `out.decoder.onnx`, the model's fast decoder (`decode_window`) traced as is, with the
  `models.window.LatentWindow` as its inputs: `proj` (a window (1, h, w, D) of the
  table), `coord` and `cell` (1, Q, 2), `grid_hw` (the full latent grid's size) and
  `window` (the window's top-left code), both int64 (2,), and for models with a global
  skip `skip` (the LR window (1, 3, h', w') starting at `skip_window`) -> `rgb` (1, Q, 3)
  in normalised space. The nearest codes are found by index arithmetic and gathered
  (Gather), not by grid_sample; Q, h, w are dynamic.

Both files carry the model config as JSON (`liifsr_config`) in their metadata, so
`liifsr upscale --model out.onnx` rebuilds the same tiling and chunking as PyTorch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from liifsr import coords as C
from liifsr.checks import UpscaleError
from liifsr.config import to_dict
from liifsr.files import atomic_write
from liifsr.models import ImplicitModel
from liifsr.models.window import LatentWindow

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
    """`decode_window` with the window's grid size and corners as tensors, so they stay dynamic."""

    def __init__(self, model: ImplicitModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, proj: Tensor, coord: Tensor, cell: Tensor, grid_hw: Tensor, window: Tensor, *skip: Tensor) -> Tensor:
        # 0-d tensors where the window has ints: traced as inputs, so they stay dynamic.
        skip_image, skip_corner = (skip[0], (skip[1][0], skip[1][1])) if skip else (None, (0, 0))
        latent = LatentWindow(proj, (grid_hw[0], grid_hw[1]), (window[0], window[1]), skip_image, skip_corner)  # type: ignore[arg-type]
        return self.model.decode_window(latent, coord, cell)


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
    window = proj[:, row : row + height, col : col + width].contiguous()
    decoder_inputs = [window, coord, cell, torch.tensor(_EXAMPLE_LR), torch.tensor([row, col])]
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
