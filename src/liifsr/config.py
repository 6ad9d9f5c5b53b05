"""Typed configuration: dataclasses that map one-to-one onto YAML.

Every field of a dataclass is a key of the YAML mapping with the same name; nested
dataclasses are nested mappings. Unknown keys and wrongly typed values are errors, so
a typo in a config never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import re
import reprlib
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


# YAML 1.1 (PyYAML) reads `2e-4` and `1e5` as strings: it wants a dot and a signed
# exponent. Numbers written the way people write them are accepted as floats.
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
# Every integer of a config is a size, a count, an epoch or a seed: beyond this one it is
# a typo or an attack (a size of 2**62 overflows the arithmetic of whatever uses it).
MAX_INT = 2**31 - 1
_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxlist, _BRIEF.maxdict, _BRIEF.maxstring, _BRIEF.maxother = 2, 6, 6, 60, 60
_BRIEF.maxlong = 40


def brief(value: Any) -> str:
    """`repr(value)` cut to a few dozen characters, for messages: a value from a hostile
    file (a list of 200,000 widths, a 5,001-digit integer, nesting 100,000 deep) must not
    make the message itself huge or fail."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {len(str(abs(value))) if value.bit_length() < 14000 else 'over 4,000'} digits"
    try:
        return _BRIEF.repr(value)
    except (RecursionError, ValueError):
        return f"a {type(value).__name__}"


# --- dataclass <-> plain data -------------------------------------------------------


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation) and hasattr(annotation, "variants"):
        return _convert_variant(value, annotation, where)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {brief(value)}")
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
        raise ConfigError(f"{where}: expected {' or '.join(_describe(o) for o in options)}, got {brief(value)}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {brief(value)}")
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        return [_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {brief(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {brief(value)}")
        if abs(value) > MAX_INT:
            raise ConfigError(f"{where}: {brief(value)} is out of range (config integers are at most {MAX_INT:,})")
        return value
    if annotation is float:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)  # '1e400' reads as infinity, refused below
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {brief(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, got {brief(value)}")
        return number
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {brief(value)}")
        return value
    return value


def _convert_variant(value: Any, annotation: Any, where: str) -> Any:
    """A registered model part (see `liifsr.models.registry`): `name` picks its config
    class; a bare string is a name with every other field at its default."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping with a name, got {brief(value)}")
    variants = annotation.variants.configs
    name = value.get("name")
    if name not in variants:
        raise ConfigError(f"{where}.name must be one of {tuple(variants)}, got {brief(name)}")
    return from_dict(variants[name], value, where)


def _describe(annotation: Any) -> str:
    """A type as a config user reads it: 'a string', 'a mapping of ModelConfig fields'."""
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return f"a mapping of {annotation.__name__} fields"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    return names.get(annotation, "a list" if typing.get_origin(annotation) in (list, tuple) else str(annotation))


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and wrong types.

    A class with an `upgrade` static method first passes the mapping through it (how
    older layouts of a config are still read)."""
    upgrade = getattr(cls, "upgrade", None)
    if upgrade is not None and isinstance(data, dict):
        data = upgrade(data)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {brief(sorted(map(str, unknown)))} (valid: {sorted(names)})")
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
    except (ValueError, RecursionError) as error:  # a 5,001-digit integer; nesting deeper than Python recurses
        raise ConfigError(f"config file {str(path)!r} cannot be read: {_unreadable(error)}") from None
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
        raise ConfigError(f"override {brief(override)}: the value is not valid YAML ({' '.join(str(error).split())})") from None
    except (ValueError, RecursionError) as error:
        raise ConfigError(f"override {brief(override)}: {_unreadable(error)}") from None


def _unreadable(error: BaseException) -> str:
    """Why a YAML or JSON text could not be read, beyond its syntax."""
    if isinstance(error, RecursionError):
        return "it is nested too deeply"
    return " ".join(str(error).split()[:12]) or type(error).__name__


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)
