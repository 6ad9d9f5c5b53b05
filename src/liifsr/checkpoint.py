"""Model files: our safetensors format, LIIF's official `.pth`, and bundled models.

Ours: a safetensors file of the model's state dict, with the model config as JSON in
the metadata (`liifsr_config`), so a file is self-describing and loading never runs
code. LIIF's `.pth` files are read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from liifsr.config import ConfigError, DecoderConfig, EncoderConfig, ModelConfig, from_dict, to_dict
from liifsr.files import atomic_write
from liifsr.liif import LIIF

FORMAT = "liifsr/1"
DEFAULT_MODEL = "edsr-liif-relu-skip-shared"
# LIIF's EDSR keeps two mean-shift convs that its forward pass never applies.
_LIIF_UNUSED_PREFIXES = ("encoder.sub_mean.", "encoder.add_mean.")
# LIIF's `make_rdn` configurations: D residual dense blocks of C layers, growth G.
_RDN_CONFIGS = {"A": (20, 6, 32), "B": (16, 8, 64)}


class CheckpointError(ValueError):
    """A model file that cannot be used; the message says why and what to do."""


def bundled_models() -> dict[str, Path]:
    """Names and paths of the models shipped inside the package."""
    folder = resources.files("liifsr") / "weights"
    if not folder.is_dir():
        return {}
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".safetensors")}


def save_model(model: LIIF, path: str | Path, dtype: torch.dtype = torch.float32, metadata: dict[str, str] | None = None) -> None:
    """Write `model` as safetensors (weights cast to `dtype`) with its config, atomically."""
    path = Path(path)
    tensors = {key: value.detach().to("cpu", dtype).contiguous() for key, value in model.state_dict().items()}
    meta = {"format": FORMAT, "liifsr_config": json.dumps(to_dict(model.config)), **(metadata or {})}
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}


def load_model(name_or_path: str | Path | None = None, device: str | torch.device = "cpu") -> LIIF:
    """A bundled model name, one of our `.safetensors` files or a LIIF `.pth`, in eval mode
    (or an `.onnx` file from `liifsr export`, as a `liifsr.onnx_runtime.OnnxLIIF`).

    With no argument, the default bundled model.
    """
    source = DEFAULT_MODEL if name_or_path is None else name_or_path
    bundled = bundled_models()
    if isinstance(source, str) and source in bundled:
        path = bundled[source]
    else:
        path = Path(source)
        if not path.exists():
            names = ", ".join(sorted(bundled)) or "none"
            raise CheckpointError(f"unknown model {str(source)!r}: not a bundled model ({names}) nor an existing file")
        if path.is_dir():
            raise CheckpointError(f"model path {str(path)!r} is a directory (give a .safetensors or .pth file)")
    if path.suffix == ".onnx":  # `liifsr export` output, run by onnxruntime on the CPU
        from liifsr.onnx_runtime import load_onnx_model

        return load_onnx_model(path)
    if path.suffix in (".pth", ".pt"):
        config, state = _read_liif_pth(path)
    else:
        config, state = _read_safetensors(path)
    model = LIIF(config)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
        raise CheckpointError(f"model file {str(path)!r} does not match its config: {first}") from None
    return model.to(device).eval()


def _read_safetensors(path: Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    try:
        meta = read_metadata(path)
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read model file {str(path)!r}: {error} (is it a complete .safetensors file?)") from None
    if "liifsr_config" not in meta:
        raise CheckpointError(f"model file {str(path)!r} has no liifsr config (convert LIIF .pth files with `liifsr convert`)")
    try:
        config = from_dict(ModelConfig, json.loads(meta["liifsr_config"]))
    except (ConfigError, json.JSONDecodeError) as error:
        raise CheckpointError(f"model file {str(path)!r} has an invalid config: {error}") from None
    return config, state


def _read_liif_pth(path: Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        spec = checkpoint["model"]
        args, state = spec["args"], spec["sd"]
    except (KeyError, TypeError):
        raise CheckpointError(f"{str(path)!r} is not a LIIF checkpoint (expected {{'model': {{'args', 'sd'}}}})") from None
    except Exception as error:  # torch.load raises several types for corrupt files
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"cannot read LIIF checkpoint {str(path)!r}: {message}") from None
    if spec.get("name") != "liif":
        raise CheckpointError(f"{str(path)!r} holds a {spec.get('name')!r} model; only 'liif' models are supported")
    config = liif_args_to_config(args)
    state = {k: v for k, v in state.items() if not k.startswith(_LIIF_UNUSED_PREFIXES)}
    return config, state


def liif_args_to_config(args: dict[str, Any]) -> ModelConfig:
    """Translate LIIF's `model.args` (encoder_spec, imnet_spec, flags) into a ModelConfig."""
    encoder_spec, imnet_spec = args["encoder_spec"], args.get("imnet_spec")
    name, enc = encoder_spec["name"], encoder_spec.get("args", {})
    if name == "edsr-baseline":
        encoder = EncoderConfig("edsr", enc.get("n_resblocks", 16), enc.get("n_feats", 64), float(enc.get("res_scale", 1)))
    elif name == "edsr":
        encoder = EncoderConfig("edsr", enc.get("n_resblocks", 32), enc.get("n_feats", 256), float(enc.get("res_scale", 0.1)))
    elif name == "rdn":
        D, C, G = _RDN_CONFIGS[enc.get("RDNconfig", "B")]
        encoder = EncoderConfig("rdn", G0=enc.get("G0", 64), D=D, C=C, G=G, kernel_size=enc.get("RDNkSize", 3))
    else:
        raise CheckpointError(f"unsupported LIIF encoder {name!r} (supported: edsr-baseline, edsr, rdn)")
    if imnet_spec is None or imnet_spec.get("name") != "mlp":
        raise CheckpointError("only LIIF checkpoints with an 'mlp' imnet are supported")
    mlp = imnet_spec["args"]
    decoder = DecoderConfig("relu", list(mlp["hidden_list"]), mlp.get("out_dim", 3))
    return ModelConfig(
        encoder=encoder,
        decoder=decoder,
        feature_unfold=args.get("feat_unfold", True),
        local_ensemble=args.get("local_ensemble", True),
        cell_decode=args.get("cell_decode", True),
    )


def convert_liif(source: str | Path, target: str | Path) -> ModelConfig:
    """Convert an official LIIF `.pth` into our safetensors format."""
    model = load_model(Path(source))
    save_model(model, target, metadata={"converted_from": Path(source).name})
    return model.config
