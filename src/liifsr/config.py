"""Typed configuration: dataclasses that map one-to-one onto YAML.

Every field of a dataclass is a key of the YAML mapping with the same name; nested
dataclasses are nested mappings. Unknown keys and wrongly typed values are errors, so
a typo in a config never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


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
    "edsr-liif-siren15": ModelConfig(_edsr(64), _decoder("sine", 15.0)),
    "edsrless-liif-relu": ModelConfig(_edsr(32), _decoder("relu")),
    "edsrless-liif-siren30": ModelConfig(_edsr(32), _decoder("sine", 30.0)),
    "rdn-liif-relu": ModelConfig(EncoderConfig(name="rdn"), _decoder("relu")),
    "edsr-liif-relu-skip": ModelConfig(_edsr(64), _decoder("relu"), global_skip=True),
}


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
            try:
                return _convert(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} does not fit {annotation}")
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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


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
    node[leaf] = yaml.safe_load(raw)


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)
