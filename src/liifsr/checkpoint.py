"""Model files: our safetensors format and LIIF's official `.pth` (`liifsr.zoo` names them).

Ours: a safetensors file of the model's state dict, with the model config as JSON in
the metadata (`liifsr_config`), so a file is self-describing and loading never runs
code. LIIF's `.pth` files are read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from liifsr.config import ConfigError, brief, from_dict, to_dict
from liifsr.files import atomic_write
from liifsr.liif_pth import liif_args_to_config, liif_state_dict
from liifsr.models import ImplicitModel, ModelConfig, build_model, check_model_config
from liifsr.runtime import PRECISIONS

# liifsr/2: the config names its encoder and decoder (`liifsr.models`); liifsr/1 files
# (one flat encoder mapping, LIIF's flags at the top) still load, see ModelConfig.upgrade.
FORMAT = "liifsr/2"
# The most a `.pth` archive may unpack to: the weights of the largest model a config may
# declare (models.base.MAX_PARAMETERS in fp32) and room for the pickle. Checked on the zip's
# own directory before torch.load, so that a small file cannot unpack to gigabytes.
MAX_ARCHIVE_BYTES = 4 * 10**9 + 2**26
# torch.save stores its records uncompressed; a compressed record may expand this much.
MAX_COMPRESSION_RATIO = 100
# The metadata key that narrows what `--precision auto` picks for a file's model (`fp32` for a
# model whose PSNR bf16 moved by more than 0.01 dB: README, "Which precision"), so that the
# choice travels with the file, whatever name it is loaded by.
AUTO_PRECISIONS_KEY = "auto_precisions"


class CheckpointError(ValueError):
    """A model file that cannot be used; the message says why and what to do."""


def save_model(model: ImplicitModel, path: str | Path, dtype: torch.dtype = torch.float32, metadata: dict[str, str] | None = None) -> None:
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


def load_model_file(path: Path) -> ImplicitModel:
    """One of our `.safetensors` files or a LIIF `.pth`, on the CPU in eval mode.

    The file's kind is read from its first bytes, not its name (a LIIF checkpoint saved
    as `.ckpt` loads too). The config is checked against the tensors' shapes before the
    model is allocated, so a file cannot make liifsr allocate more than its own tensors.
    """
    meta: dict[str, str] = {}
    if _is_torch_file(path):
        config, state = _read_liif_pth(path)
    else:
        config, state, meta = _read_safetensors(path)
    check_finite(path, state)
    model = build_model(config)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
        raise CheckpointError(f"model file {str(path)!r} does not match its config: {first}") from None
    if AUTO_PRECISIONS_KEY in meta:
        model.auto_precisions = read_auto_precisions(meta, path)
    return model.eval()


def read_auto_precisions(meta: dict[str, str], path: Path) -> tuple[str, ...]:
    """The precisions `--precision auto` may pick for a file's model, from its metadata
    (comma-separated; a file whose PSNR bf16 moves by more than 0.01 dB says `fp32`)."""
    names = tuple(name.strip() for name in meta[AUTO_PRECISIONS_KEY].split(","))
    if not names or not set(names) <= set(PRECISIONS) or "fp32" not in names:
        raise CheckpointError(f"model file {str(path)!r} has a bad {AUTO_PRECISIONS_KEY!r} in its metadata: "
                              f"{meta[AUTO_PRECISIONS_KEY]!r} (a comma-separated subset of {', '.join(PRECISIONS)} with fp32)")
    return names


def check_finite(path: Path, state: dict[str, torch.Tensor]) -> None:
    """Refuse weights with NaN or infinity (a run that diverged): such a model gives a flat
    or NaN image, or fails on it under another name, and the fused kernels' ReLU would turn
    some NaNs into 0 so that the same file worked or failed by a switch."""
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            count = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"model file {str(path)!r} holds non-finite weights: tensor {key!r} has {count:,} NaN or "
                                  "infinite values (the training that wrote it diverged; use an earlier checkpoint)")


def check_archive(path: Path) -> None:
    """A `.pth` zip archive whose directory declares no more than MAX_ARCHIVE_BYTES unpacked
    and no record compressed beyond MAX_COMPRESSION_RATIO (a zip bomb), before torch.load
    unpacks anything. Legacy (non-zip) pickles unpack to their own size."""
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # not a zip archive (a legacy pickle), or a damaged one: torch.load says which
    total = sum(record.file_size for record in records)
    if total > MAX_ARCHIVE_BYTES:
        raise CheckpointError(f"cannot read LIIF checkpoint {str(path)!r}: its archive declares {total:,} bytes unpacked, "
                              f"more than any model liifsr loads ({MAX_ARCHIVE_BYTES:,})")
    for record in records:
        if record.file_size > MAX_COMPRESSION_RATIO * max(record.compress_size, 1) + 2**20:
            raise CheckpointError(f"cannot read LIIF checkpoint {str(path)!r}: its record {brief(record.filename)} expands "
                                  f"{record.compress_size:,} bytes to {record.file_size:,} (torch.save does not compress; "
                                  "is it a zip bomb?)")


def _is_torch_file(path: Path) -> bool:
    """True for a PyTorch pickle (zip or legacy), False for safetensors, by content;
    a file that is neither goes by its extension, for the clearer message."""
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) == 9 and head[8:9] == b"{":  # safetensors: 8-byte header length, then JSON
        return False
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):  # torch.save: zip, or a legacy pickle
        return True
    return path.suffix in (".pth", ".pt")


def _read_safetensors(path: Path) -> tuple[ModelConfig, dict[str, torch.Tensor], dict[str, str]]:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read model file {str(path)!r}: {error} (is it a complete .safetensors file?)") from None
    config = read_model_config(meta, path)
    check_shapes(path, config, shapes)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read model file {str(path)!r}: {error} (is it a complete .safetensors file?)") from None
    return config, state, meta


def read_model_config(meta: dict[str, str], path: Path) -> ModelConfig:
    """The model config in a model file's metadata (`liifsr_config`)."""
    if "liifsr_config" not in meta:
        raise CheckpointError(f"model file {str(path)!r} has no liifsr config (convert LIIF .pth files with `liifsr convert`)")
    return parse_model_config(meta["liifsr_config"], f"model file {str(path)!r}")


def parse_model_config(text: str, what: str) -> ModelConfig:
    """A model config from its JSON `text` (a file's metadata); CheckpointError naming `what`
    for invalid JSON, a number beyond Python's reading (a 5,001-digit integer), nesting deeper
    than it recurses, or a config the schema refuses."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ConfigError(f"expected a mapping, got {brief(data)}")
        return from_dict(ModelConfig, data)
    except RecursionError:
        raise CheckpointError(f"{what} has an invalid config: it is nested too deeply") from None
    except ValueError as error:  # ConfigError, json.JSONDecodeError, the integer digit limit
        raise CheckpointError(f"{what} has an invalid config: {' '.join(str(error).split())}") from None


def check_shapes(path: Path, config: ModelConfig, shapes: dict[str, tuple[int, ...]]) -> None:
    """The file's tensor names and shapes against those `config` builds, on the meta device
    (no memory), so a config that promises a huge model fails before allocating it."""
    try:
        check_model_config(config)
    except ConfigError as error:
        raise CheckpointError(f"model file {str(path)!r} has an invalid config: {error}") from None
    with torch.device("meta"):
        expected = {key: tuple(value.shape) for key, value in build_model(config).state_dict().items()}
    missing, unexpected = sorted(expected.keys() - shapes.keys()), sorted(shapes.keys() - expected.keys())
    wrong = sorted(key for key in expected.keys() & shapes.keys() if expected[key] != shapes[key])
    if missing or unexpected or wrong:
        key = (missing or unexpected or wrong)[0]
        problem = ("lacks" if missing else "has an unexpected" if unexpected else "has a wrongly shaped") + f" tensor {key!r}"
        if not missing and not unexpected:
            problem += f" of shape {list(shapes[key])} where the config needs {list(expected[key])}"
        problem += f" (its config: {config.describe()})"
        raise CheckpointError(f"model file {str(path)!r} does not match its config: it {problem}")


def _read_liif_pth(path: Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    not_liif = CheckpointError(f"{str(path)!r} is not a LIIF checkpoint (expected {{'model': {{'name', 'args', 'sd'}}}})")
    check_archive(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        spec = checkpoint["model"]
        args, state = spec["args"], spec["sd"]
    except (KeyError, TypeError, IndexError):
        raise not_liif from None
    except Exception as error:  # torch.load raises several types for corrupt files
        if "Weights only load failed" in str(error):
            raise CheckpointError(
                f"cannot read LIIF checkpoint {str(path)!r}: it holds code or Python objects besides tensors, "
                "which are not loaded, for safety (only tensors, numbers, strings and containers are read)"
            ) from None
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"cannot read LIIF checkpoint {str(path)!r}: {message}") from None
    if not isinstance(spec, dict) or not isinstance(args, dict) or not isinstance(state, dict):
        raise not_liif
    if spec.get("name") != "liif":
        raise CheckpointError(f"{str(path)!r} holds a {spec.get('name')!r} model; only 'liif' models are supported")
    try:
        config = liif_args_to_config(args)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError, OverflowError) as error:
        if isinstance(error, ConfigError):  # what liifsr lacks, or a value of the wrong type
            raise CheckpointError(f"LIIF checkpoint {str(path)!r}: {error}") from None
        detail = f"lacks {error}" if isinstance(error, KeyError) else f"has malformed arguments ({error})"
        raise CheckpointError(f"LIIF checkpoint {str(path)!r} {detail} in model.args") from None
    state = liif_state_dict(state)
    not_tensors = sorted(str(k) for k, v in state.items() if not torch.is_tensor(v))
    if not_tensors:
        raise CheckpointError(f"LIIF checkpoint {str(path)!r}: model.sd[{not_tensors[0]!r}] is not a tensor")
    check_shapes(path, config, {key: tuple(value.shape) for key, value in state.items()})
    return config, state


def convert_liif(source: str | Path, target: str | Path) -> ModelConfig:
    """Convert an official LIIF `.pth` into our safetensors format."""
    model = load_model_file(Path(source))
    save_model(model, target, metadata={"converted_from": Path(source).name})
    return model.config
