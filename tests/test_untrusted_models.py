"""Model files and configs are checked at the cost of what they are, not of what they declare:
a config's size is counted before anything is built, a `.pth` archive's before it is
unpacked, and a file's weights must be finite. Every refusal is one short line."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from liifsr.checkpoint import CheckpointError, save_model
from liifsr.cli import main
from liifsr.config import ConfigError, from_dict, load_yaml, to_dict
from liifsr.models import MODEL_PRESETS, ModelConfig, build_model, check_model_config, model_preset
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIF, LIIFConfig
from liifsr.models.lte import LTEConfig
from liifsr.models.rdn import RDNConfig
from liifsr.models.thermal import ThermalConfig
from liifsr.training.config import TrainConfig
from liifsr.zoo import load_model


def tiny() -> LIIF:
    torch.manual_seed(0)
    return LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=4), LIIFConfig(hidden=[8])))


def model_file(path: Path, config_json: str) -> Path:
    """A safetensors model file of tiny()'s tensors whose metadata holds `config_json`."""
    state = {key: value.contiguous() for key, value in tiny().state_dict().items()}
    save_file(state, str(path), metadata={"format": "liifsr/2", "liifsr_config": config_json})
    return path


def with_change(part: str, **values) -> str:
    config = to_dict(tiny().config)
    config[part].update(values)
    return json.dumps(config)


# --- what a config may declare ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODEL_PRESETS))
def test_the_size_counted_from_a_config_is_the_built_models(name):
    """`PartConfig.size` is the bound's arithmetic: it must count what the model builds."""
    configs = [model_preset(name)]
    if name == "edsr-liif-relu":  # the other encoder under every decoder, odd sizes, flags off
        rdn = RDNConfig(G0=7, D=3, C=5, G=4, kernel_size=5)
        configs += [ModelConfig(rdn, LIIFConfig(hidden=[5, 6], feature_unfold=False, cell_decode=False)),
                    ModelConfig(rdn, LTEConfig(channels=10, hidden=[3])), ModelConfig(rdn, ThermalConfig(components=5)),
                    ModelConfig(rdn, ThermalConfig(components=5, context=6))]
    for config in configs:
        with torch.device("meta"):
            model = build_model(config)
        (encoder, encoder_layers), (decoder, decoder_layers) = config.encoder.size(3), config.decoder.size(config.encoder.out_dim)
        assert encoder + decoder == model.num_parameters(trainable_only=False), config.describe()
        layers = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in model.modules())
        assert encoder_layers + decoder_layers == layers, config.describe()


@pytest.mark.parametrize("part, values, message", [
    ("encoder", {"n_resblocks": 1_000_000}, "2,000,004 weight layers"),
    ("decoder", {"hidden": [4] * 200_000}, "200,005 weight layers"),
    ("encoder", {"n_feats": 2**62}, "out of range"),
    ("encoder", {"n_feats": 60_000}, "parameters, more than"),
    ("decoder", {"hidden": [2**31 - 1, 2**31 - 1]}, "parameters, more than"),
])
def test_a_hostile_config_is_refused_at_once_in_one_short_line(tmp_path, part, values, message):
    """Before the bound, a 16 KB file declaring a million blocks was built (2.8 GB, 77 s) and one of
    200,000 layers gave an 800 KB error line."""
    path = model_file(tmp_path / "hostile.safetensors", with_change(part, **values))
    started = time.process_time()  # CPU time: the machine may be busy with other work
    with pytest.raises(CheckpointError, match=message) as caught:
        load_model(path)
    assert time.process_time() - started < 5
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 600


@pytest.mark.parametrize("config_json, message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"encoder": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}", "nested too deeply"),
    (with_change("encoder", n_feats=0).replace('"n_feats": 0', '"n_feats": ' + "9" * 5001), "digits"),
    (with_change("encoder", n_feats=0).replace('"n_feats": 0', '"n_feats": ' + "9" * 4000), "out of range"),
    (with_change("encoder", res_scale=0).replace('"res_scale": 0', '"res_scale": 1e400'), "finite number"),
    ("[1, 2]", "expected a mapping"),
])
def test_unreadable_configs_in_model_files_are_one_line(tmp_path, config_json, message):
    path = model_file(tmp_path / "odd.safetensors", config_json)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_model(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value) and len(str(caught.value)) < 600


def test_config_numbers_are_bounded_and_finite(tmp_path):
    with pytest.raises(ConfigError, match="out of range"):
        from_dict(EDSRConfig, {"n_feats": 2**62})
    with pytest.raises(ConfigError, match="finite"):
        from_dict(EDSRConfig, {"res_scale": float("nan")})
    with pytest.raises(ConfigError, match="out of range") as caught:  # str() of this int would itself fail
        from_dict(EDSRConfig, {"n_feats": 10**5000})
    assert len(str(caught.value)) < 300
    config = tmp_path / "c.yaml"
    for text, message in [("epochs: " + "9" * 5001, "digits"), ("data: {scale_max: 1e400}", "finite number"),
                          ("data: {patch_size: 4611686018427387904}", "out of range"),
                          ("model: " + "[" * 20_000 + "]" * 20_000, "nested too deeply")]:
        config.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_yaml(TrainConfig, config)
    with pytest.raises(ConfigError, match="finite number"):
        load_yaml(TrainConfig, _empty(tmp_path), ["data.scale_max=1e400"])


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.yaml"
    path.write_text("{}\n")
    return path


def test_the_cli_refuses_overflowing_config_values_in_one_line(tmp_path, capsys):
    for override in ("data.scale_max=1e400", "data.patch_size=4611686018427387904", "seed=-1"):
        assert main(["train", str(_empty(tmp_path)), "--out", str(tmp_path / "run"), "--set", override]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("liifsr: error: ") and "Traceback" not in err, err
        assert not (tmp_path / "run").exists()


def test_a_heat_field_with_a_nan_initialisation_is_refused():
    config = model_preset("edsr-thermal")
    config.decoder.init_scale = float("nan")
    with pytest.raises(ConfigError, match="init_scale"):
        check_model_config(config)


# --- archives and weights ---------------------------------------------------------------


def test_a_zip_bomb_pth_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    """A 40 KB `.pth` whose record unpacks to 40 MB: refused from
    the zip's directory, without unpacking it."""
    plain, bomb = tmp_path / "plain.pth", tmp_path / "bomb.pth"
    torch.save({"model": {"name": "liif", "args": {}, "sd": {"x": torch.zeros(10_000_000)}}}, plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target:
        for record in source.infolist():
            target.writestr(record.filename, source.read(record.filename))
    plain.unlink()
    assert bomb.stat().st_size < 1_000_000

    def refuse_to_unpack(*args, **kwargs):
        raise AssertionError("torch.load ran")

    monkeypatch.setattr(torch, "load", refuse_to_unpack)
    with pytest.raises(CheckpointError, match=r"expands [\d,]+ bytes to 40,000,\d+ \(torch.save does not compress; is it a zip bomb"):
        load_model(bomb)


def test_a_model_file_with_nan_weights_is_refused_naming_the_file_and_tensor(tmp_path, capsys):
    """Loaded, it gave a flat image with status 0, or an error blaming the image."""
    model = tiny()
    with torch.no_grad():
        model.encoder.head[0].weight[0, 0, 0, 0] = float("nan")
        model.imnet.layers[0].bias[1] = float("inf")
    path = tmp_path / "diverged.safetensors"
    save_model(model, path)
    with pytest.raises(CheckpointError, match="non-finite") as caught:
        load_model(path)
    assert str(path) in str(caught.value) and "'encoder.head.0.weight'" in str(caught.value)
    image = Path(__file__).parent.parent / "src" / "liifsr" / "assets" / "astronaut.png"
    out = tmp_path / "out.png"
    assert main(["upscale", str(image), "--size", "8x8", "-o", str(out), "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "encoder.head.0.weight" in err and not out.exists()
    finite = tiny()
    save_model(finite, path)
    assert torch.equal(load_model(path).encoder.head[0].weight, finite.encoder.head[0].weight)
