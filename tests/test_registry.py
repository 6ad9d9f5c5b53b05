"""The model registries and their configs: names pick typed configs in YAML, older layouts
still read, and a new part joins with nothing else to edit."""

from dataclasses import dataclass

import pytest

from liifsr.config import ConfigError, from_dict, to_dict
from liifsr.models import ACTIVATIONS, DECODERS, ENCODERS, MODEL_PRESETS, ModelConfig, build_model, model_preset
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIFConfig
from liifsr.models.rdn import RDNConfig
from liifsr.models.registry import EncoderConfig, Registry
from liifsr.models.siren import SineConfig

# A ModelConfig as liifsr 0.1 wrote it into model files (edsr-liif-siren15's).
LEGACY_SIREN15 = {
    "encoder": {"name": "edsr", "n_resblocks": 16, "n_feats": 64, "res_scale": 1.0, "G0": 64, "D": 16, "C": 8, "G": 64,
                "kernel_size": 3},
    "decoder": {"activation": "sine", "hidden": [256, 256, 256, 256], "out_dim": 3, "w0_first": 15.0, "w0_hidden": 15.0},
    "feature_unfold": True, "local_ensemble": True, "cell_decode": True, "global_skip": False,
}


def test_every_part_module_is_registered():
    assert ENCODERS.names() == ("edsr", "rdn")
    assert set(DECODERS.names()) == {"liif", "lte", "thermal"}
    assert ACTIVATIONS.names() == ("relu", "sine")
    assert {"edsr-lte", "edsr-thermal", "edsr-liif-siren30", "rdn-liif-relu"} <= set(MODEL_PRESETS)


def test_names_pick_the_typed_config():
    config = from_dict(ModelConfig, {"encoder": {"name": "rdn", "G0": 16}, "decoder": {"name": "liif", "activation": "sine"}})
    assert config.encoder == RDNConfig(G0=16) and config.decoder.activation == SineConfig()
    with pytest.raises(ConfigError, match="n_feats"):  # an EDSR field is not an RDN one
        from_dict(ModelConfig, {"encoder": {"name": "rdn", "n_feats": 16}})
    with pytest.raises(ConfigError, match=r"encoder.name must be one of \('edsr', 'rdn'\)"):
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


def test_a_new_part_joins_in_one_registration():
    registry = Registry("encoder")

    @dataclass
    class WideConfig(EncoderConfig):
        name: str = "wide"
        width: int = 4

    @registry.register("wide", WideConfig)
    def wide(config):
        return ("built", config.width)

    assert registry.build(WideConfig(width=7)) == ("built", 7)
    with pytest.raises(ValueError, match="twice"):
        registry.register("wide", WideConfig)(wide)
    with pytest.raises(ConfigError, match="unknown encoder 'narrow'"):
        registry.builder("narrow")


def test_build_model_checks_the_config_first():
    with pytest.raises(ConfigError, match="n_feats"):
        build_model(ModelConfig(EDSRConfig(n_feats=0)))
