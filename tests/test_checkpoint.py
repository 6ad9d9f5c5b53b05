import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES, shared_path
from safetensors import safe_open

from liifsr.checkpoint import FORMAT, CheckpointError, convert_liif, read_metadata, save_model
from liifsr.config import to_dict
from liifsr.liif_pth import liif_args_to_config
from liifsr.models import MODEL_PRESETS, ModelConfig, model_preset
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIF, LIIFConfig
from liifsr.models.rdn import RDNConfig
from liifsr.models.relu import ReLUConfig
from liifsr.models.siren import SineConfig
from liifsr.reference import literal_query
from liifsr.zoo import BUNDLED_PRESETS, DEFAULT_MODEL, bundled_models, bundled_preset, list_models, load_model


def small_model(activation="sine") -> LIIF:
    torch.manual_seed(0)
    activation_config = ReLUConfig() if activation == "relu" else SineConfig(w0_first=15.0)
    config = ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16], activation=activation_config))
    return LIIF(config)


def test_round_trip_keeps_weights_and_config(tmp_path):
    model = small_model()
    save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.config == model.config
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert json.loads(read_metadata(tmp_path / "m.safetensors")["liifsr_config"]) == to_dict(model.config)


def test_a_files_auto_precisions_travel_with_it_whatever_its_name(tmp_path):
    """The metadata key narrows what `--precision auto` picks for the file's model, and a
    value that is not a set of precisions with fp32 is refused in one line."""
    save_model(small_model(), tmp_path / "kept.safetensors", metadata={"auto_precisions": "fp32"})
    save_model(small_model(), tmp_path / "plain.safetensors")
    assert load_model(tmp_path / "kept.safetensors").auto_precisions == ("fp32",)
    assert load_model(tmp_path / "plain.safetensors").auto_precisions == ("fp32", "bf16", "fp16")
    assert load_model(bundled_models()["edsrless-liif-relu"]).auto_precisions == ("fp32",)  # by its path too
    for bad in ("bf16", "fp32,fp64", ""):
        save_model(small_model(), tmp_path / "bad.safetensors", metadata={"auto_precisions": bad})
        with pytest.raises(CheckpointError, match="bad 'auto_precisions'"):
            load_model(tmp_path / "bad.safetensors")


def test_fp16_file_is_half_the_size_and_loads_as_float32(tmp_path):
    model = LIIF(model_preset("edsr-liif-relu"))
    save_model(model, tmp_path / "half.safetensors", dtype=torch.float16)
    size = (tmp_path / "half.safetensors").stat().st_size
    assert size < 4_000_000 and size > 2 * model.num_parameters()
    loaded = load_model(tmp_path / "half.safetensors")
    assert next(loaded.parameters()).dtype == torch.float32


def test_convert_official_checkpoint_matches_direct_load(tmp_path, cases):
    convert_liif(FIXTURES / "tiny-full.pth", tmp_path / "tiny.safetensors")
    inp, coord, cell = (torch.from_numpy(cases[k]) for k in ("inp", "coord", "cell"))
    with torch.no_grad():
        a = load_model(FIXTURES / "tiny-full.pth")(inp, coord, cell)
        b = load_model(tmp_path / "tiny.safetensors")(inp, coord, cell)
    assert torch.equal(a, b)
    assert (a - torch.from_numpy(cases["tiny-full/pred"])).abs().max() <= 1e-5


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="unknown model"):
        load_model(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="unknown model 'no-such-name'"):
        load_model("no-such-name")
    corrupt = tmp_path / "corrupt.safetensors"
    save_model(small_model(), corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_model(corrupt)
    bad_pth = tmp_path / "bad.pth"
    bad_pth.write_bytes((FIXTURES / "tiny-full.pth").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="cannot read LIIF checkpoint"):
        load_model(bad_pth)


def test_weights_that_do_not_fit_the_config_are_rejected(tmp_path):
    from safetensors.torch import save_file

    model = small_model()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["imnet.layers.0.weight"] = state["imnet.layers.0.weight"][:, :10].contiguous()
    save_file(state, str(tmp_path / "m.safetensors"), metadata={"liifsr_config": json.dumps(to_dict(model.config))})
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_model(tmp_path / "m.safetensors")


class LeavesMark:
    """Unpickling this calls open(mark, 'w'): the mark file exists if and only if code ran."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self):
        return (open, (str(self.mark), "w"))


def test_pth_loading_never_unpickles_code(tmp_path):
    mark = tmp_path / "executed"
    torch.save({"model": {"name": "liif", "args": LeavesMark(mark), "sd": {}}}, tmp_path / "evil.pth")
    assert not mark.exists()
    try:
        load_model(tmp_path / "evil.pth")
        message = "loaded without an error"
    except Exception as error:  # any outcome: the mark decides first
        message = f"{type(error).__name__}: {error}"
    assert not mark.exists(), "loading a .pth ran pickled code"
    assert message.startswith("CheckpointError: cannot read LIIF checkpoint") and "evil.pth" in message, message


def test_bundled_default_model_is_the_documented_fp16_preset():
    assert DEFAULT_MODEL in bundled_models(), "no bundled default model in src/liifsr/weights"
    model = load_model()
    assert model.config == model_preset("edsr-liif-relu-skip")
    assert model.num_parameters() == 1_567_299 and not model.training
    with safe_open(str(bundled_models()[DEFAULT_MODEL]), framework="pt") as handle:
        stored = {key: handle.get_tensor(key) for key in handle.keys()}
    assert {tensor.dtype for tensor in stored.values()} == {torch.float16}
    # Loading upcasts: every fp32 weight is exactly the stored fp16 value.
    loaded = model.state_dict()
    assert stored.keys() == loaded.keys()
    for key, value in stored.items():
        assert loaded[key].dtype == torch.float32 and torch.equal(loaded[key], value.float()), key


def test_bundled_models_and_presets_share_one_namespace():
    """A bundled model named as a preset is that preset; the others name theirs, and every
    name BUNDLED_PRESETS gives is a bundled model's and every preset it names exists."""
    bundled = bundled_models()
    assert set(BUNDLED_PRESETS) <= set(bundled) and set(BUNDLED_PRESETS.values()) <= set(MODEL_PRESETS)
    assert not set(BUNDLED_PRESETS) & set(MODEL_PRESETS)
    assert bundled_preset(DEFAULT_MODEL) == "edsr-liif-relu-skip"
    cards = {card.name: card for card in list_models()}
    for name in bundled:
        assert cards[name].preset == bundled_preset(name) and f"preset: {bundled_preset(name)}" in cards[name].lines()


def test_bundled_models_are_their_presets_in_fp16_with_their_facts():
    """Each bundled model loads as its preset (its own name, or the one it names), is stored
    in fp16 under 4 MB, and says how it was trained and how it scores."""
    for name, path in bundled_models().items():
        meta = read_metadata(path)
        assert {"training", "trained_on", "val_psnr", "set5_x4_psnr"} <= set(meta), name
        assert path.stat().st_size < 4 * 2**20, name
        with safe_open(str(path), framework="pt") as handle:
            assert {handle.get_tensor(key).dtype for key in handle.keys()} == {torch.float16}, name
        assert load_model(name).config == model_preset(bundled_preset(name)), name
        if name not in BUNDLED_PRESETS:  # the experiment's models
            assert meta["training"].startswith(f"configs/experiment/{name}.yaml, seed 0: 3,600 iterations"), name


def test_the_default_is_the_best_bundled_model_by_held_out_validation():
    """Chosen on the held-out training images (never on a benchmark): every bundled model's
    val_psnr is measured on the same 10 images, at x2 and x4."""
    scores = {name: float(read_metadata(path)["val_psnr"]) for name, path in bundled_models().items()}
    assert max(scores, key=scores.get) == DEFAULT_MODEL, scores
    details = {read_metadata(path).get("val_detail", "") for path in bundled_models().values()}
    assert all("10 held-out images" in detail and "centre 256 px crops" in detail for detail in details), details


# --- converting LIIF's full-size checkpoints ---------------------------------------------


def test_convert_full_size_edsr_reproduces_official_outputs(tmp_path, cases):
    source = shared_path("fixtures", "liif-reference", "edsr-baseline-liif.pth")
    target = tmp_path / "edsr.safetensors"
    assert convert_liif(source, target) == model_preset("edsr-liif-relu")
    assert read_metadata(target)["converted_from"] == "edsr-baseline-liif.pth"
    model = load_model(target)
    assert model.num_parameters() == 1_567_323 - 24  # the paper's count less the two unused mean-shift convs
    with torch.no_grad():
        for prefix in ("", "batch_"):
            inp, coord, cell = (torch.from_numpy(cases[prefix + key]) for key in ("inp", "coord", "cell"))
            expected = torch.from_numpy(cases[f"edsr-baseline-liif/{prefix}pred"])
            assert (model(inp, coord, cell) - expected).abs().max() <= 1e-5


# LIIF's `make_rdn` configurations, from its rdn.py: D blocks of C layers, growth G.
LIIF_RDN_CONFIGS = {"A": (20, 6, 32), "B": (16, 8, 64)}


def liif_rdn_checkpoint(path: Path, encoder_args: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A LIIF `.pth` of an RDN-LIIF (MLP [256] x 4) with key names and shapes written from LIIF's
    rdn.py and mlp.py; seeded weights, biases in U(-0.05, 0.05)."""
    state: dict[str, torch.Tensor] = {}

    def layer(name: str, shape: tuple[int, ...]) -> None:
        fan_in = math.prod(shape[1:])
        state[f"{name}.weight"] = (torch.rand(shape, generator=generator) * 2 - 1) * math.sqrt(3 / fan_in)
        state[f"{name}.bias"] = (torch.rand(shape[0], generator=generator) * 2 - 1) * 0.05

    G0 = encoder_args.get("G0", 64)
    D, C, G = LIIF_RDN_CONFIGS[encoder_args.get("RDNconfig", "B")]
    layer("encoder.SFENet1", (G0, 3, 3, 3))
    layer("encoder.SFENet2", (G0, G0, 3, 3))
    for d in range(D):
        for c in range(C):
            layer(f"encoder.RDBs.{d}.convs.{c}.conv.0", (G, G0 + c * G, 3, 3))
        layer(f"encoder.RDBs.{d}.LFF", (G0, G0 + C * G, 1, 1))
    layer("encoder.GFF.0", (G0, D * G0, 1, 1))
    layer("encoder.GFF.1", (G0, G0, 3, 3))
    widths = [G0 * 9 + 4, 256, 256, 256, 256, 3]
    for i, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
        layer(f"imnet.layers.{2 * i}", (fan_out, fan_in))
    args = {
        "encoder_spec": {"name": "rdn", "args": {**encoder_args, "no_upsampling": True}},
        "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [256, 256, 256, 256]}},
    }
    torch.save({"model": {"name": "liif", "args": args, "sd": state}, "epoch": 1}, path)
    return state


def literal_rdn(state: dict[str, torch.Tensor], x: torch.Tensor, blocks: int, layers: int) -> torch.Tensor:
    """LIIF's RDN forward (no upsampler), step by step from the state dict."""

    def conv(name: str, t: torch.Tensor) -> torch.Tensor:
        weight = state[f"encoder.{name}.weight"]
        return F.conv2d(t, weight, state[f"encoder.{name}.bias"], padding=weight.shape[-1] // 2)

    f1 = conv("SFENet1", x)
    x = conv("SFENet2", f1)
    block_outputs = []
    for d in range(blocks):
        dense = x
        for c in range(layers):
            dense = torch.cat([dense, F.relu(conv(f"RDBs.{d}.convs.{c}.conv.0", dense))], dim=1)
        x = conv(f"RDBs.{d}.LFF", dense) + x
        block_outputs.append(x)
    return conv("GFF.1", conv("GFF.0", torch.cat(block_outputs, dim=1))) + f1


def test_convert_liif_rdn_checkpoint_reproduces_its_outputs(tmp_path, cases):
    # Configuration A with 16 base features keeps the test fast; B (the default) is checked below.
    encoder_args = {"G0": 16, "RDNconfig": "A"}
    state = liif_rdn_checkpoint(tmp_path / "rdn.pth", encoder_args, torch.Generator().manual_seed(0))
    config = convert_liif(tmp_path / "rdn.pth", tmp_path / "rdn.safetensors")
    assert config.encoder == RDNConfig(G0=16, D=20, C=6, G=32)
    converted, direct = load_model(tmp_path / "rdn.safetensors"), load_model(tmp_path / "rdn.pth")
    assert converted.num_parameters() == sum(value.numel() for value in state.values())
    inp, coord, cell = (torch.from_numpy(cases["batch_" + key]) for key in ("inp", "coord", "cell"))
    with torch.no_grad():
        out = converted(inp, coord, cell)
        assert torch.equal(out, direct(inp, coord, cell))
        expected = literal_query(converted, inp, coord, cell, feat=literal_rdn(state, inp, 20, 6))
    assert out.std() > 0.01 and (out - expected).abs().max() <= 1e-5


def test_liif_default_rdn_args_are_the_rdn_preset():
    """LIIF's train_rdn-liif.yaml gives only `no_upsampling`: configuration B, G0 64."""
    imnet = {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [256, 256, 256, 256]}}
    config = liif_args_to_config({"encoder_spec": {"name": "rdn", "args": {"no_upsampling": True}}, "imnet_spec": imnet})
    assert config == model_preset("rdn-liif-relu")
    assert LIIF(config).num_parameters() == 22_320_835


def test_liif_full_edsr_args_map_to_its_defaults():
    """LIIF's `edsr` (not `edsr-baseline`): 32 blocks of 256 features, res_scale 0.1 unless given."""
    imnet = {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [256, 256, 256, 256]}}
    config = liif_args_to_config({"encoder_spec": {"name": "edsr", "args": {"no_upsampling": True}}, "imnet_spec": imnet})
    assert config.encoder == EDSRConfig(n_resblocks=32, n_feats=256, res_scale=0.1)
    assert config.decoder == LIIFConfig(hidden=[256, 256, 256, 256])


def test_a_model_file_whose_output_is_not_rgb_is_refused_when_loaded(tmp_path):
    """A valid liifsr file with out_dim 4: every command would fail later, deep in the
    pipeline; load_model refuses it up front, saying why."""
    import dataclasses
    import json

    from safetensors.torch import save_file

    config = model_preset("edsrless-liif-relu")
    config = dataclasses.replace(config, decoder=dataclasses.replace(config.decoder, out_dim=4))
    with torch.device("meta"):
        shapes = {key: value.shape for key, value in LIIF(model_preset("edsrless-liif-relu")).state_dict().items()}
    tensors = {key: torch.zeros(shape) for key, shape in shapes.items()}
    last = max(key for key in tensors if key.startswith("imnet.layers."))  # the output layer's bias
    tensors[last] = torch.zeros(4)
    tensors[last.replace("bias", "weight")] = torch.zeros(4, 256)
    path = tmp_path / "four.safetensors"
    save_file(tensors, str(path), metadata={"format": FORMAT, "liifsr_config": json.dumps(to_dict(config))})
    with pytest.raises(CheckpointError, match=r"decoder.out_dim must be 3 \(liifsr decodes RGB images\), got 4"):
        load_model(path)


def test_loading_the_bundled_models_does_not_import_torch_dynamo():
    """Loading checks a file's shapes against a model built on the meta device; arithmetic
    there (a decoder's initialisation) would run PyTorch's reference kernels, whose first
    use imports torch._dynamo: over a second of every command's start-up."""
    import subprocess
    import sys

    script = ("import sys\nfrom liifsr.zoo import bundled_models, load_model\n"
              "for name in bundled_models():\n    load_model(name)\n"
              "    assert 'torch._dynamo' not in sys.modules, name\n"
              "print(sorted(bundled_models()))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "edsr-thermal" in done.stdout and "edsr-thermal-clean" in done.stdout
