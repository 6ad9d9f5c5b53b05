"""Running a model exported by `liifsr export` with onnxruntime, through `liifsr.inference`.

`OnnxModel` runs any exported decoder: it is a `models.window.Decoder` (with `config` and
`encoder.receptive_radius`), so `upscale_tensor`, `decode_region` and `decode_bands` run
an exported model with the same tiles and chunks as the PyTorch one.

The encoder graph already includes the latent projection. `encode_window` crops the
encoder's output to the features the projection reads and then crops the projection to
the codes the queries read; a 3x3 projection computed over the whole encoded window and
cropped once is the same (its inputs are the same features), so `encode` returns the
projection (laid out as a (1, D, H, W) feature map, so that the first crop applies)
and `latent_projection` only restores the (1, H, W, D) layout.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import Tensor, nn

from liifsr.checkpoint import CheckpointError, parse_model_config
from liifsr.config import brief
from liifsr.files import one_line
from liifsr.models import ModelConfig, build_model
from liifsr.models.window import Decoder, LatentWindow


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types: an unknown operator, a bad graph, an opset it lacks
        problem = one_line(error)[:300] or type(error).__name__
        raise CheckpointError(f"onnxruntime cannot run ONNX file '{path}': {problem} (export it again with `liifsr export`, "
                              "or update onnxruntime)") from None


class OnnxModel(Decoder, nn.Module):
    """A model exported by `liifsr export`, any encoder and decoder, run by onnxruntime on the CPU."""

    precisions = ("fp32",)  # the exported graphs are fp32
    auto_precisions = precisions

    def __init__(self, encoder_path: Path, decoder_path: Path, config: ModelConfig, receptive_radius: int,
                 threads: int | None = None) -> None:
        super().__init__()
        threads = threads or torch.get_num_threads()
        self.config = config
        with torch.device("meta"):  # what the tiled inference asks of a model, from its config
            model = build_model(config)
            # The encoder graph returns the projection: its width is what tiling keeps per LR pixel.
            proj_dim = model.latent_projection(torch.empty(1, model.encoder.out_dim, 3, 3)).shape[-1]
        self.local_ensemble, self.projection_radius = model.local_ensemble, model.projection_radius
        self.global_skip = model.global_skip
        self.encoder_path, self.decoder_path = encoder_path, decoder_path
        self.encoder = SimpleNamespace(receptive_radius=receptive_radius, out_dim=proj_dim)
        self._encoder = _session(encoder_path, threads)
        self._decoder = _session(decoder_path, threads)
        self._decoder_inputs = {i.name for i in self._decoder.get_inputs()}
        # inference reads the device from the model's parameters: onnxruntime works on CPU tensors.
        self.device_anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def encode(self, inp: Tensor) -> Tensor:
        proj = self._encoder.run(["proj"], {"inp": _numpy(inp)})[0]
        return torch.from_numpy(proj).permute(0, 3, 1, 2)

    def latent_projection(self, feat: Tensor) -> Tensor:
        return feat.permute(0, 2, 3, 1)

    def decode_window(self, window: LatentWindow, coord: Tensor, cell: Tensor | None) -> Tensor:
        tensors = {"proj": window.table, "coord": coord, "cell": cell, "skip": window.skip_image}
        corners = {"grid_hw": window.grid_hw, "window": window.corner, "skip_window": window.skip_corner}
        # Only the graph's inputs: tracing drops what a decoder does not read (the cell, the skip).
        feed = {name: _numpy(tensors[name]) for name in tensors if name in self._decoder_inputs}
        feed.update({name: np.asarray(corners[name], dtype=np.int64) for name in corners if name in self._decoder_inputs})
        return torch.from_numpy(self._decoder.run(["rgb"], feed)[0])


def _numpy(tensor: Tensor | None) -> np.ndarray:
    if tensor is None:
        raise ValueError("this ONNX decoder needs the LR image (the model has a global skip)")
    return np.ascontiguousarray(tensor.detach().to("cpu", torch.float32).numpy())


def load_onnx_model(path: str | Path, threads: int | None = None) -> OnnxModel:
    """An exported model from its encoder file (`out.onnx`) or its decoder file (`out.decoder.onnx`)."""
    try:
        import onnx
    except ImportError:
        raise CheckpointError("running .onnx models needs onnxruntime: pip install 'liifsr[onnx]'") from None
    path = Path(path)
    meta = _metadata(onnx, path)
    if meta.get("liifsr_role") == "decoder":
        encoder_path = path.with_name(path.name.removesuffix(".decoder.onnx") + ".onnx")
        meta = _metadata(onnx, encoder_path)
    else:
        encoder_path = path
    if meta.get("liifsr_role") != "encoder" or "liifsr_config" not in meta:
        raise CheckpointError(f"'{path}' is not an ONNX file written by `liifsr export` (export models with it)")
    config = parse_model_config(meta["liifsr_config"], f"'{encoder_path}'")
    decoder_path = encoder_path.with_name(_decoder_name(meta, encoder_path))
    if not decoder_path.is_file():
        raise CheckpointError(f"the decoder graph '{decoder_path}' of '{encoder_path}' is missing "
                              "(keep both files of `liifsr export` together)")
    return OnnxModel(encoder_path, decoder_path, config, _receptive_radius(meta, encoder_path, config), threads)


_EXPORT_AGAIN = "export the model again with `liifsr export`"


def _decoder_name(meta: dict[str, str], encoder_path: Path) -> str:
    """The decoder graph's file name from the encoder's metadata: a plain name beside it."""
    if "liifsr_decoder" not in meta:
        raise CheckpointError(f"'{encoder_path}' lacks the metadata entry liifsr_decoder, which names its decoder graph ({_EXPORT_AGAIN})")
    name = meta["liifsr_decoder"]
    if not name.endswith(".onnx") or name == ".onnx" or any(c in name for c in "/\\\0"):
        raise CheckpointError(f"'{encoder_path}' has an invalid liifsr_decoder {brief(name)} (a file name beside it, "
                              f"ending in .onnx; {_EXPORT_AGAIN})")
    return name


def _receptive_radius(meta: dict[str, str], encoder_path: Path, config: ModelConfig) -> int:
    """The encoder's receptive radius in LR pixels (how far tiles overlap), from the metadata;
    it must be the one the config's encoder has."""
    if "liifsr_receptive_radius" not in meta:
        raise CheckpointError(f"'{encoder_path}' lacks the metadata entry liifsr_receptive_radius ({_EXPORT_AGAIN})")
    text = meta["liifsr_receptive_radius"]
    with torch.device("meta"):
        expected = build_model(config).encoder.receptive_radius
    if not (text.isascii() and text.isdigit() and len(text) <= 9 and int(text) == expected):
        raise CheckpointError(f"'{encoder_path}' has an invalid liifsr_receptive_radius {brief(text)} (its config's encoder "
                              f"reads {expected} pixels around each; {_EXPORT_AGAIN})")
    return expected


def _metadata(onnx, path: Path) -> dict[str, str]:
    if not path.is_file():
        raise CheckpointError(f"ONNX file '{path}' does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf raises several types for corrupt files
        raise CheckpointError(f"cannot read ONNX file '{path}': {' '.join(str(error).split()) or type(error).__name__}") from None
    return {entry.key: entry.value for entry in model.metadata_props}
