"""Registries of encoders, decoders and MLP activations, and their config base classes.

A model part joins liifsr in one module: a typed config (a dataclass subclass of
`EncoderConfig`, `DecoderConfig` or `ActivationConfig` with its own `name` default) and
a builder registered under that name:

    @dataclass
    class MyEncoderConfig(EncoderConfig):
        name: str = "my-encoder"
        width: int = 64

    @ENCODERS.register("my-encoder", MyEncoderConfig)
    class MyEncoder(Encoder): ...

In YAML the `name` key picks the config class (`encoder: {name: my-encoder, width: 32}`),
so each config holds only its own architecture's fields (`liifsr.config.from_dict` reads
`variants` to dispatch). Registration checks what it can before anything is built: the
config class belongs to this kind of part and defaults `name` to the registered name, and
an encoder is an `Encoder` (which declares `out_dim` and `receptive_radius`).
`liifsr.models` imports every module, so the registries are complete whenever any model
code runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from liifsr.config import ConfigError
from liifsr.models.encoder import Encoder

B = TypeVar("B", bound=Callable[..., Any])


class Registry:
    """Names -> (config class, builder) for one kind of model part; `builds`, where given,
    is the class every builder must subclass."""

    def __init__(self, kind: str, builds: type | None = None) -> None:
        self.kind = kind
        self.builds = builds
        self.configs: dict[str, type] = {}
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str, config_class: type) -> Callable[[B], B]:
        def add(builder: B) -> B:
            if name in self.configs:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self.check(name, config_class, builder)
            self.configs[name], self._builders[name] = config_class, builder
            return builder

        return add

    def check(self, name: str, config_class: type, builder: Callable[..., Any]) -> None:
        """Refuse a part that YAML could not name or that lacks what the rest of liifsr reads of it."""
        if getattr(config_class, "variants", None) is not self or not dataclasses.is_dataclass(config_class):
            raise TypeError(f"{self.kind} {name!r}: its config {config_class.__name__} must be a dataclass "
                            f"subclassing the {self.kind}'s config class ({self.kind.capitalize()}Config)")
        default = {field.name: field.default for field in dataclasses.fields(config_class)}.get("name")
        if default != name:
            raise TypeError(f"{self.kind} {name!r}: its config {config_class.__name__} must default `name` to {name!r}, "
                            f"not {default!r} (the name its files are read back by)")
        if self.builds is not None and not (isinstance(builder, type) and issubclass(builder, self.builds)):
            raise TypeError(f"{self.kind} {name!r}: {getattr(builder, '__name__', builder)!r} must subclass "
                            f"{self.builds.__module__}.{self.builds.__name__}")

    def names(self) -> tuple[str, ...]:
        return tuple(self.configs)

    def builder(self, name: str) -> Callable[..., Any]:
        if name not in self._builders:
            raise ConfigError(f"unknown {self.kind} {name!r} (choose one of: {', '.join(self.names())})")
        return self._builders[name]

    def build(self, config: Any, *args: Any, **kwargs: Any) -> Any:
        return self.builder(config.name)(config, *args, **kwargs)


ENCODERS = Registry("encoder", builds=Encoder)
DECODERS = Registry("decoder")
ACTIVATIONS = Registry("activation")


@dataclass
class PartConfig:
    """A registered part's config: `name` picks the registered class in YAML."""

    name: str
    variants: ClassVar[Registry]

    def check(self, where: str) -> None:
        """Raise ConfigError for values no model can be built from (before allocating anything)."""

    def size(self, features: int) -> tuple[int, int]:
        """(parameters, weight layers) of the part, from its config alone, without building
        it; `features` are its input channels (3 for an encoder, the encoder's `out_dim` for
        a decoder). `check_model_config` bounds both before anything is built. (0, 0): unknown."""
        return 0, 0

    def describe(self) -> str:
        """The part in a few words, for `liifsr models` and messages."""
        return self.name


# liifsr/1 wrote one flat encoder mapping holding every architecture's fields.
LEGACY_ENCODER_FIELDS = frozenset({"name", "n_resblocks", "n_feats", "res_scale", "G0", "D", "C", "G", "kernel_size"})


@dataclass
class EncoderConfig(PartConfig):
    variants: ClassVar[Registry] = ENCODERS

    @property
    def out_dim(self) -> int:
        """The channels of the feature map it gives the decoder (0: unknown)."""
        return 0

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Read liifsr/1's flat encoder mapping too: this architecture's fields of it."""
        if set(data) != LEGACY_ENCODER_FIELDS:
            return data
        own = {field.name for field in dataclasses.fields(cls)}
        return {key: value for key, value in data.items() if key in own}


@dataclass
class DecoderConfig(PartConfig):
    variants: ClassVar[Registry] = DECODERS


@dataclass
class ActivationConfig(PartConfig):
    variants: ClassVar[Registry] = ACTIVATIONS


def check_positive(where: str, **sizes: int) -> None:
    for name, value in sizes.items():
        if value < 1:
            raise ConfigError(f"{where}.{name} must be a positive integer, got {value}")


def check_widths(where: str, hidden: list[int]) -> None:
    """An MLP's hidden widths: at least one, each positive (the message stays short for a
    list of any length)."""
    if not hidden:
        raise ConfigError(f"{where}: hidden needs at least one positive width, got hidden=[]")
    bad = next((index for index, width in enumerate(hidden) if width < 1), None)
    if bad is not None:
        raise ConfigError(f"{where}: hidden needs positive widths, got hidden[{bad}] = {hidden[bad]}")


def linear_size(widths: list[int]) -> tuple[int, int]:
    """(parameters, layers) of Linear layers of widths[0] -> widths[1] -> ... (weights and biases)."""
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:])), len(widths) - 1


def conv_size(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    """The parameters of one Conv2d."""
    return in_channels * out_channels * kernel_size * kernel_size + (out_channels if bias else 0)
