"""Typed configuration: dataclasses that map one-to-one onto YAML.

Every field of a dataclass is a key of the YAML mapping with the same name; nested
dataclasses are nested mappings. Unknown keys and wrongly typed values are errors, so
a typo in a config never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


# YAML 1.1 (PyYAML) reads `2e-4` and `1e5` as strings: it wants a dot and a signed
# exponent. Numbers written the way people write them are accepted as floats.
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass
class EncoderConfig:
    """EDSR fields (`n_resblocks`, `n_feats`, `res_scale`) or RDN fields (`G0`, `D`, `C`, `G`)."""

    name: str = "edsr"
    n_resblocks: int = 16
    n_feats: int = 64
    res_scale: float = 1.0
    G0: int = 64
    D: int = 16
    C: int = 8
    G: int = 64
    kernel_size: int = 3


@dataclass
class DecoderConfig:
    """The MLP f_theta. `activation` is 'relu' (LIIF) or 'sine' (SIREN)."""

    activation: str = "relu"
    hidden: list[int] = field(default_factory=lambda: [256, 256, 256, 256])
    out_dim: int = 3
    w0_first: float = 30.0
    w0_hidden: float = 30.0


@dataclass
class ModelConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    feature_unfold: bool = True
    local_ensemble: bool = True
    cell_decode: bool = True
    # Not in LIIF or the paper: adds a bilinear upsampling of the input to the output
    # (as LTE does), which speeds up early training. Only the `*-skip` presets use it.
    global_skip: bool = False


def _edsr(n_feats: int) -> EncoderConfig:
    return EncoderConfig(name="edsr", n_resblocks=16, n_feats=n_feats, res_scale=1.0)


def _decoder(activation: str, w0: float = 30.0) -> DecoderConfig:
    return DecoderConfig(activation=activation, w0_first=w0, w0_hidden=w0)


MODEL_PRESETS: dict[str, ModelConfig] = {
    "edsr-liif-relu": ModelConfig(_edsr(64), _decoder("relu")),
    "edsr-liif-siren30": ModelConfig(_edsr(64), _decoder("sine", 30.0)),
    # SIREN-15 with w0 = 15 in every sine layer (our reading of the paper) ...
    "edsr-liif-siren15": ModelConfig(_edsr(64), _decoder("sine", 15.0)),
    # ... and the other reading: w0 = 15 in the first layer only, 30 after it.
    "edsr-liif-siren15-first": ModelConfig(_edsr(64), DecoderConfig(activation="sine", w0_first=15.0, w0_hidden=30.0)),
    "edsrless-liif-relu": ModelConfig(_edsr(32), _decoder("relu")),
    "edsrless-liif-siren30": ModelConfig(_edsr(32), _decoder("sine", 30.0)),
    "rdn-liif-relu": ModelConfig(EncoderConfig(name="rdn"), _decoder("relu")),
    "edsr-liif-relu-skip": ModelConfig(_edsr(64), _decoder("relu"), global_skip=True),
}


ENCODERS = ("edsr", "rdn")
ACTIVATIONS = ("relu", "sine")


def check_model_config(config: ModelConfig, where: str = "model") -> None:
    """Refuse sizes and values no model can be built from (before anything is allocated)."""
    enc, dec = config.encoder, config.decoder
    if enc.name not in ENCODERS:
        raise ConfigError(f"{where}.encoder.name must be one of {ENCODERS}, got {enc.name!r}")
    sizes = {"n_feats": enc.n_feats} if enc.name == "edsr" else {
        "G0": enc.G0, "D": enc.D, "C": enc.C, "G": enc.G, "kernel_size": enc.kernel_size}
    for name, value in sizes.items():
        if value < 1:
            raise ConfigError(f"{where}.encoder.{name} must be a positive integer, got {value}")
    if enc.name == "rdn" and enc.kernel_size % 2 == 0:
        raise ConfigError(f"{where}.encoder.kernel_size must be odd, got {enc.kernel_size}")
    if enc.n_resblocks < 0 or not math.isfinite(enc.res_scale):
        raise ConfigError(f"{where}.encoder: n_resblocks must be >= 0 and res_scale finite")
    if dec.activation not in ACTIVATIONS:
        raise ConfigError(f"{where}.decoder.activation must be one of {ACTIVATIONS}, got {dec.activation!r}")
    if not dec.hidden or any(width < 1 for width in dec.hidden):
        raise ConfigError(f"{where}.decoder: hidden needs at least one positive width, got hidden={dec.hidden}")
    if dec.out_dim != 3:  # every image path (reading, tiling, alpha, writing) is RGB
        raise ConfigError(f"{where}.decoder.out_dim must be 3 (liifsr decodes RGB images), got {dec.out_dim}")
    if not all(math.isfinite(w0) and w0 > 0 for w0 in (dec.w0_first, dec.w0_hidden)):
        raise ConfigError(f"{where}.decoder: w0_first and w0_hidden must be positive, got {dec.w0_first}, {dec.w0_hidden}")


def model_preset(name: str) -> ModelConfig:
    if name not in MODEL_PRESETS:
        raise ConfigError(f"unknown model preset {name!r} (choose one of: {', '.join(MODEL_PRESETS)})")
    return from_dict(ModelConfig, to_dict(MODEL_PRESETS[name]))


# --- dataclass <-> plain data -------------------------------------------------------


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            if isinstance(value, dict) and dataclasses.is_dataclass(option):
                return _convert(value, option, where)  # a mapping is meant as this one: its own errors are the clear ones
            try:
                return _convert(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {' or '.join(_describe(o) for o in options)}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        return [_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _describe(annotation: Any) -> str:
    """A type as a config user reads it: 'a string', 'a mapping of ModelConfig fields'."""
    if dataclasses.is_dataclass(annotation):
        return f"a mapping of {annotation.__name__} fields"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    return names.get(annotation, "a list" if typing.get_origin(annotation) in (list, tuple) else str(annotation))


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (valid: {sorted(names)})")
    values = {key: _convert(value, hints[key], f"{where}.{key}") for key, value in data.items()}
    return cls(**values)


def load_yaml(cls: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """Read a YAML file into dataclass `cls`, then apply `key.sub=value` overrides."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist (check the path)") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping at the top level")
    for override in overrides or []:
        apply_override(data, override)
    return from_dict(cls, data, where=path.name)


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set `a.b.c=value` in nested plain data; the value is parsed as YAML (`3`, `[1,2]`, `true`)."""
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {override!r} must look like key.sub=value")
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part!r} is not a mapping")
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"override {override!r}: the value is not valid YAML ({' '.join(str(error).split())})") from None


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


# --- training ---------------------------------------------------------------------


@dataclass
class DataConfig:
    """Where training images come from and how LIIF's sampler turns them into batches.

    `train_dirs` are searched recursively for png/jpg/jpeg/bmp/webp images. Validation
    uses `val_dirs` when given (their first `val_count` images, 0 = all of them);
    otherwise `val_count` images of the training folders, picked evenly over the sorted
    list, are held out of training (0 = no validation). Paths are relative to the
    working directory.
    """

    train_dirs: list[str] = field(default_factory=list)
    val_dirs: list[str] = field(default_factory=list)
    val_count: int = 0
    # Validation HR images are centre-cropped to at most this many pixels per side
    # (0 = whole images); full-size validation on a CPU can take minutes.
    val_max_size: int = 0
    patch_size: int = 48  # LR patch side (LIIF's inp_size)
    scale_min: float = 1.0
    scale_max: float = 4.0
    sample_q: int = 2304  # HR pixels queried per patch, drawn without replacement
    repeat: int = 1  # an epoch visits every training image `repeat` times
    cache: bool = True  # keep decoded images in memory as uint8
    lr_resize: str = "pil"  # 'pil' (LIIF's resize_fn) or 'matlab' (antialiased imresize)
    augment: bool = True  # random flips and transpose, as LIIF's `augment: true`


@dataclass
class OptimConfig:
    """Adam with a per-epoch schedule: 'step' (MultiStepLR) or 'cosine' (to `min_lr`)."""

    lr: float = 1e-4
    schedule: str = "step"
    milestones: list[int] = field(default_factory=lambda: [200, 400, 600, 800])
    gamma: float = 0.5
    min_lr: float = 0.0


@dataclass
class TrainConfig:
    """A training run. `model` is a preset name (see MODEL_PRESETS) or a full ModelConfig.

    `batch_size` is the global batch: with N processes each takes batch_size / N.
    """

    model: str | ModelConfig = "edsr-liif-relu"
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 1000
    batch_size: int = 16
    val_every: int = 1  # validate every N epochs (and after the last one)
    val_scales: list[int] = field(default_factory=lambda: [2, 4])
    val_chunk: int = 0  # queries per decoder call in validation; 0 = 1024 on CPU, 65536 on GPU
    save_every: int = 1  # write last.* every N epochs (and after the last one)
    seed: int = 0
    num_workers: int = 1
    precision: str = "fp32"  # 'fp32' or 'bf16' (autocast)
    compile: bool = False
    device: str = "auto"  # 'auto', 'cpu', 'cuda' or 'cuda:N'
    # CPU threads of each training process (0 = PyTorch's default, one per core). On a
    # shared machine, set it to the number of idle cores: oversubscribed threads make
    # training many times slower.
    threads: int = 0
