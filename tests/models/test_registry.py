"""The model registries and their configs: names pick typed configs in YAML, older layouts
still read, and a new part joins the package's registries with nothing else to edit."""

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from torch import nn

import liifsr.models
from liifsr.config import ConfigError, from_dict, to_dict
from liifsr.models import ACTIVATIONS, DECODERS, ENCODERS, MODEL_PRESETS, Encoder, ModelConfig, build_model, model_preset
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIFConfig
from liifsr.models.rdn import RDNConfig
from liifsr.models.registry import DecoderConfig, EncoderConfig
from liifsr.models.siren import SineConfig

MODELS = Path(liifsr.models.__file__).parent
REGISTRIES = {"ENCODERS": ENCODERS, "DECODERS": DECODERS, "ACTIVATIONS": ACTIVATIONS}

# A ModelConfig as liifsr 0.1 wrote it into model files (edsr-liif-siren15's).
LEGACY_SIREN15 = {
    "encoder": {"name": "edsr", "n_resblocks": 16, "n_feats": 64, "res_scale": 1.0, "G0": 64, "D": 16, "C": 8, "G": 64,
                "kernel_size": 3},
    "decoder": {"activation": "sine", "hidden": [256, 256, 256, 256], "out_dim": 3, "w0_first": 15.0, "w0_hidden": 15.0},
    "feature_unfold": True, "local_ensemble": True, "cell_decode": True, "global_skip": False,
}


def registrations(path: Path) -> list[tuple[str, str]]:
    """(registry, name) of every `@REGISTRY.register("name", ...)` written in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "register"
                and isinstance(node.func.value, ast.Name) and node.func.value.id in REGISTRIES):
            found.append((node.func.value.id, node.args[0].value))
    return found


def test_every_part_module_is_registered():
    """Whatever the modules of liifsr.models register is in the package's registries."""
    written = [entry for path in sorted(MODELS.glob("*.py")) for entry in registrations(path)]
    assert {"ENCODERS", "DECODERS", "ACTIVATIONS"} == {registry for registry, _ in written}
    for registry, name in written:
        assert name in REGISTRIES[registry].names(), (registry, name)
    assert len(written) == sum(len(registry.names()) for registry in REGISTRIES.values())


def test_every_decoder_has_a_preset():
    assert {config.decoder.name for config in MODEL_PRESETS.values()} == set(DECODERS.names())


def imported_modules(path: Path) -> set[str]:
    """The modules `path` imports anywhere in its code (`from a import b` counts `a.b` too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_only_the_presets_module_imports_both_encoders_and_decoders():
    """A part's module defines the part; models/presets.py puts parts together."""
    encoders = {config.__module__ for config in ENCODERS.configs.values()}
    decoders = {config.__module__ for config in DECODERS.configs.values()}
    package = MODELS.parent
    both = sorted(str(path.relative_to(package)) for path in package.rglob("*.py")
                  if imported_modules(path) & encoders and imported_modules(path) & decoders)
    assert both == ["models/presets.py"], both


def test_names_pick_the_typed_config():
    config = from_dict(ModelConfig, {"encoder": {"name": "rdn", "G0": 16}, "decoder": {"name": "liif", "activation": "sine"}})
    assert config.encoder == RDNConfig(G0=16) and config.decoder.activation == SineConfig()
    with pytest.raises(ConfigError, match="n_feats"):  # an EDSR field is not an RDN one
        from_dict(ModelConfig, {"encoder": {"name": "rdn", "n_feats": 16}})
    with pytest.raises(ConfigError, match=r"encoder.name must be one of " + re.escape(str(ENCODERS.names()))):
        from_dict(ModelConfig, {"encoder": {"name": "swinir"}})
    with pytest.raises(ConfigError, match="activation.name"):
        from_dict(ModelConfig, {"decoder": {"name": "liif", "activation": "tanh"}})


def test_configs_round_trip_through_plain_data():
    for name in MODEL_PRESETS:
        config = model_preset(name)
        assert from_dict(ModelConfig, to_dict(config)) == config, name


def test_the_older_layout_still_reads():
    assert from_dict(ModelConfig, LEGACY_SIREN15) == model_preset("edsr-liif-siren15")
    relu = {**LEGACY_SIREN15, "decoder": {**LEGACY_SIREN15["decoder"], "activation": "relu"}, "global_skip": True}
    assert from_dict(ModelConfig, relu) == model_preset("edsr-liif-relu-skip")
    rdn = {**LEGACY_SIREN15, "encoder": {"name": "rdn", "n_resblocks": 16, "n_feats": 64, "res_scale": 1.0, "G0": 64, "D": 16,
                                         "C": 8, "G": 64, "kernel_size": 3}}
    assert from_dict(ModelConfig, rdn).encoder == RDNConfig()
    # Hand-written older configs: a decoder without a name is LIIF's.
    tiny = from_dict(ModelConfig, {"encoder": {"n_feats": 8}, "decoder": {"activation": "relu", "hidden": [16]}})
    assert tiny == ModelConfig(EDSRConfig(n_feats=8), LIIFConfig(hidden=[16]))
    with pytest.raises(ConfigError, match="w0_first"):  # a w0 beside ReLU is a mistake, not a leftover
        from_dict(ModelConfig, {"decoder": {"activation": "relu", "w0_first": 15.0}})


@dataclass
class WideConfig(EncoderConfig):
    name: str = "wide"
    width: int = 4

    @property
    def out_dim(self) -> int:
        return self.width


class Wide(Encoder):
    """One 3x3 convolution."""

    def __init__(self, config: WideConfig, in_channels: int = 3) -> None:
        super().__init__(out_dim=config.width, receptive_radius=1)
        self.conv = nn.Conv2d(in_channels, config.width, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


@pytest.fixture
def registries(monkeypatch):
    """The package's registries, as they were again after the test."""
    for registry in REGISTRIES.values():
        monkeypatch.setattr(registry, "configs", dict(registry.configs))
        monkeypatch.setattr(registry, "_builders", dict(registry._builders))


@pytest.mark.usefixtures("registries")
def test_a_new_part_joins_in_one_registration():
    ENCODERS.register("wide", WideConfig)(Wide)
    config = from_dict(ModelConfig, {"encoder": {"name": "wide", "width": 7}, "decoder": {"name": "liif", "hidden": [8]}})
    assert config.encoder == WideConfig(width=7)
    model = build_model(config)
    assert isinstance(model.encoder, Wide) and model.encoder.out_dim == 7
    assert from_dict(ModelConfig, to_dict(config)) == config
    with pytest.raises(ValueError, match="twice"):
        ENCODERS.register("wide", WideConfig)(Wide)
    with pytest.raises(ConfigError, match="unknown encoder 'narrow'"):
        ENCODERS.builder("narrow")


@pytest.mark.usefixtures("registries")
def test_registration_refuses_a_part_it_could_not_name_or_use():
    with pytest.raises(TypeError, match=r"'narrow'.*must default `name` to 'narrow', not 'wide'"):
        ENCODERS.register("narrow", WideConfig)(Wide)
    with pytest.raises(TypeError, match=r"subclassing the encoder's config class \(EncoderConfig\)"):
        ENCODERS.register("wide", LIIFConfig)(Wide)

    class Bare(nn.Module):  # declares neither out_dim nor receptive_radius
        pass

    with pytest.raises(TypeError, match=r"'Bare' must subclass liifsr.models.encoder.Encoder"):
        ENCODERS.register("wide", WideConfig)(Bare)

    @dataclass
    class Unnamed(DecoderConfig):
        pass

    with pytest.raises(TypeError, match=r"must default `name` to 'unnamed'"):
        DECODERS.register("unnamed", Unnamed)(Bare)
    assert "wide" not in ENCODERS.names() and "unnamed" not in DECODERS.names()


def test_build_model_checks_the_config_first():
    with pytest.raises(ConfigError, match="n_feats"):
        build_model(ModelConfig(EDSRConfig(n_feats=0)))
