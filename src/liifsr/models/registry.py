"""Registries of encoders, decoders and MLP activations, and their config base classes.

A model part joins liifsr in one module: a typed config (a dataclass subclass of
`EncoderConfig`, `DecoderConfig` or `ActivationConfig` with its own `name` default) and
a builder registered under that name:

    @dataclass
    class MyEncoderConfig(EncoderConfig):
        name: str = "my-encoder"
        width: int = 64

    @ENCODERS.register("my-encoder", MyEncoderConfig)
    class MyEncoder(nn.Module): ...

In YAML the `name` key picks the config class (`encoder: {name: my-encoder, width: 32}`),
so each config holds only its own architecture's fields (`liifsr.config.from_dict` reads
`variants` to dispatch). `liifsr.models` imports every module, so the registries are
complete whenever any model code runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from liifsr.config import ConfigError

B = TypeVar("B", bound=Callable[..., Any])


class Registry:
    """Names -> (config class, builder) for one kind of model part."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.configs: dict[str, type] = {}
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str, config_class: type) -> Callable[[B], B]:
        def add(builder: B) -> B:
            if name in self.configs:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self.configs[name], self._builders[name] = config_class, builder
            return builder

        return add

    def names(self) -> tuple[str, ...]:
        return tuple(self.configs)

    def builder(self, name: str) -> Callable[..., Any]:
        if name not in self._builders:
            raise ConfigError(f"unknown {self.kind} {name!r} (choose one of: {', '.join(self.names())})")
        return self._builders[name]

    def build(self, config: Any, *args: Any, **kwargs: Any) -> Any:
        return self.builder(config.name)(config, *args, **kwargs)


ENCODERS = Registry("encoder")
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


@dataclass
class EncoderConfig(PartConfig):
    variants: ClassVar[Registry] = ENCODERS

    @property
    def out_dim(self) -> int:
        """The channels of the feature map it gives the decoder (0: unknown)."""
        return 0


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
