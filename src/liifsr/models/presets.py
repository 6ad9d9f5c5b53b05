"""The presets: named model configs, for `liifsr train` (`model: edsr-lte`) and `liifsr models`.

The one module that imports both encoders and decoders: a part's module defines the part,
this one puts parts together. Besides the named presets, every registered decoder that
none of them uses has a preset of its own, `edsr-NAME`: its defaults on EDSR-baseline, so
that a new decoder module can be trained by name with nothing else to edit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from liifsr.config import ConfigError, from_dict, to_dict
from liifsr.models.base import ModelConfig
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIFConfig
from liifsr.models.lte import LTEConfig
from liifsr.models.rdn import RDNConfig
from liifsr.models.registry import DECODERS, ActivationConfig
from liifsr.models.relu import ReLUConfig
from liifsr.models.siren import SineConfig
from liifsr.models.thermal import ThermalConfig


def _edsr_liif(n_feats: int, activation: ActivationConfig, global_skip: bool = False) -> ModelConfig:
    return ModelConfig(EDSRConfig(n_feats=n_feats), LIIFConfig(activation=activation, global_skip=global_skip))


NAMED_PRESETS: dict[str, ModelConfig] = {
    # The paper's models (Chen et al. 2021): EDSR-baseline and EDSR-LESS (32 features), RDN.
    "edsr-liif-relu": _edsr_liif(64, ReLUConfig()),
    "edsr-liif-siren30": _edsr_liif(64, SineConfig(w0_first=30.0, w0_hidden=30.0)),
    # SIREN-15 with w0 = 15 in every sine layer (our reading of the paper) ...
    "edsr-liif-siren15": _edsr_liif(64, SineConfig(w0_first=15.0, w0_hidden=15.0)),
    # ... and the other reading: w0 = 15 in the first layer only, 30 after it.
    "edsr-liif-siren15-first": _edsr_liif(64, SineConfig(w0_first=15.0, w0_hidden=30.0)),
    "edsrless-liif-relu": _edsr_liif(32, ReLUConfig()),
    "edsrless-liif-siren30": _edsr_liif(32, SineConfig(w0_first=30.0, w0_hidden=30.0)),
    "rdn-liif-relu": ModelConfig(RDNConfig(), LIIFConfig()),
    "edsr-liif-relu-skip": _edsr_liif(64, ReLUConfig(), global_skip=True),
    # Decoders beyond the paper.
    "edsr-lte": ModelConfig(EDSRConfig(), LTEConfig()),
    "edsr-thermal": ModelConfig(EDSRConfig(), ThermalConfig()),
}


def presets() -> dict[str, ModelConfig]:
    """The named presets, then `edsr-NAME` for each registered decoder that none of them uses."""
    table = dict(NAMED_PRESETS)
    used = {config.decoder.name for config in NAMED_PRESETS.values()}
    for name, config_class in DECODERS.configs.items():
        if name not in used:
            table.setdefault(f"edsr-{name}", ModelConfig(EDSRConfig(), config_class()))
    return table


class _Presets(Mapping[str, ModelConfig]):
    """`presets()` as a mapping read afresh each time, so that it follows the registry."""

    def __getitem__(self, name: str) -> ModelConfig:
        return presets()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(presets())

    def __len__(self) -> int:
        return len(presets())


MODEL_PRESETS: Mapping[str, ModelConfig] = _Presets()


def model_preset(name: str) -> ModelConfig:
    """A preset's config, a copy the caller may change."""
    table = presets()
    if name not in table:
        raise ConfigError(f"unknown model preset {name!r} (choose one of: {', '.join(table)})")
    return from_dict(ModelConfig, to_dict(table[name]))
